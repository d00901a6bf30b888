"""RNN: one step ``h = act(W x + W_h h + b)`` for a batch, float32 or hybrid (int8 weights).
Inputs: input ``[B, I]``, weights ``[U, I]``, recurrent weights ``[U, U]``, bias ``[U]``, hidden
state ``[B, U]`` (a variable, updated in place); output ``[B, U]``."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import RNNCell, State
from .registry import register


@register(Op.RNN)
class RNN(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 5:
            raise node.fail(f"expects 5 inputs, got {len(node.inputs)}")
        x = node.inputs[0]
        if x is None or x.dtype != np.float32 or len(x.shape) != 2:
            raise node.fail("input must be float32 [batch, input]")
        self.cell = RNNCell(node, 1, 2, 3, node.options)
        if self.cell.n_input != x.shape[1]:
            raise node.fail(f"weights take {self.cell.n_input} inputs, input has {x.shape[1]}")
        self.h = State(node, 4, (x.shape[0], self.cell.units))
        return [(x.shape[0], self.cell.units)]

    def eval(self, inputs):
        h = self.cell.step(np.asarray(inputs[0], np.float32), self.h.read(inputs))
        self.h.write(inputs, h)
        return [h.copy()]
