"""UNIDIRECTIONAL_SEQUENCE_RNN: ``h_t = act(W x_t + W_h h_{t-1} + b)`` over a sequence, float32
or hybrid (int8 weights). Inputs: input ``[T, B, I]`` (``time_major``) or ``[B, T, I]``,
weights ``[U, I]``, recurrent weights ``[U, U]``, bias ``[U]``, hidden state ``[B, U]`` (a
variable, updated in place). Output: every step's ``h``."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import RNNCell, State
from .registry import register


@register(Op.UNIDIRECTIONAL_SEQUENCE_RNN)
class UnidirectionalSequenceRNN(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 5:
            raise node.fail(f"expects 5 inputs, got {len(node.inputs)}")
        x = node.inputs[0]
        if x is None or x.dtype != np.float32 or len(x.shape) != 3:
            raise node.fail("input must be float32 and 3-D")
        self.time_major = bool(node.options.time_major)
        t, b = (x.shape[0], x.shape[1]) if self.time_major else (x.shape[1], x.shape[0])
        self.cell = RNNCell(node, 1, 2, 3, node.options)
        if self.cell.n_input != x.shape[2]:
            raise node.fail(f"weights take {self.cell.n_input} inputs, input has {x.shape[2]}")
        self.h = State(node, 4, (b, self.cell.units))
        u = self.cell.units
        return [(t, b, u) if self.time_major else (b, t, u)]

    def eval(self, inputs):
        x = np.asarray(inputs[0], np.float32)
        if not self.time_major:
            x = np.swapaxes(x, 0, 1)
        h = self.h.read(inputs)
        out = np.empty((x.shape[0], x.shape[1], self.cell.units), np.float32)
        for t in range(x.shape[0]):
            h = self.cell.step(x[t], h)
            out[t] = h
        self.h.write(inputs, h)
        if not self.time_major:
            out = np.ascontiguousarray(np.swapaxes(out, 0, 1))
        return [out]
