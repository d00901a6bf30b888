"""LSTM (the full kernel): one LSTM step for a batch, float32, hybrid or fully integer. Inputs as
UNIDIRECTIONAL_SEQUENCE_LSTM with input ``[B, I]``; one output ``[B, n_output]``; output and
cell state (inputs 18, 19) are variables updated in place. The BASIC kernel type (5 inputs,
a fused weight matrix) is not supported."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import lstm_cell_and_states
from .registry import register


@register(Op.LSTM)
class LSTM(Kernel):
    def prepare(self):
        node = self.node
        o = node.options
        if o is not None and int(getattr(o, "kernel_type", 0)) != 0:
            raise UnsupportedOpError(node.op.name, node.path, "the BASIC LSTM kernel type")
        if len(node.inputs) not in (20, 24):
            raise node.fail(f"expects 20 or 24 inputs, got {len(node.inputs)}")
        if len(node.outputs) != 1:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{len(node.outputs)} outputs (only the 1-output form)")
        x = node.inputs[0]
        if x is None or x.dtype not in (np.float32, np.int8) or len(x.shape) != 2:
            raise node.fail("input must be float32 or int8 [batch, input]")
        b = x.shape[0]
        self.cell, self.h, self.c = lstm_cell_and_states(node, x, b, o)
        return [(b, self.cell.n_output)]

    def eval(self, inputs):
        h, c = self.cell.step(np.asarray(inputs[0]), self.h.read(inputs), self.c.read(inputs))
        self.h.write(inputs, h)
        self.c.write(inputs, c)
        return [h.copy()]
