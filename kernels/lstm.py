"""LSTM (the full kernel): one LSTM step for a batch, float32 or hybrid. Inputs as
UNIDIRECTIONAL_SEQUENCE_LSTM with input ``[B, I]``; one output ``[B, n_output]``; output and
cell state (inputs 18, 19) are variables updated in place. The BASIC kernel type (5 inputs,
a fused weight matrix) is not supported."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import LSTM_CELL_STATE, LSTM_INPUTS, LSTM_OUTPUT_STATE, LSTMCell, State
from .registry import register


@register(Op.LSTM)
class LSTM(Kernel):
    def prepare(self):
        node = self.node
        o = node.options
        if o is not None and int(getattr(o, "kernel_type", 0)) != 0:
            raise UnsupportedOpError(node.op.name, node.path, "the BASIC LSTM kernel type")
        if len(node.inputs) < 20:
            raise node.fail(f"expects 20 or 24 inputs, got {len(node.inputs)}")
        if len(node.outputs) != 1:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{len(node.outputs)} outputs (only the 1-output form)")
        x = node.inputs[0]
        if x is None or x.dtype != np.float32 or len(x.shape) != 2:
            raise node.fail("input must be float32 [batch, input]")
        b = x.shape[0]
        self.cell = LSTMCell(node, LSTM_INPUTS, x.shape[1], o)
        self.h = State(node, LSTM_OUTPUT_STATE, (b, self.cell.n_output))
        self.c = State(node, LSTM_CELL_STATE, (b, self.cell.n_cell))
        return [(b, self.cell.n_output)]

    def eval(self, inputs):
        h, c = self.cell.step(np.asarray(inputs[0], np.float32), self.h.read(inputs),
                              self.c.read(inputs))
        self.h.write(inputs, h)
        self.c.write(inputs, c)
        return [h.copy()]
