"""UNIDIRECTIONAL_SEQUENCE_LSTM: an LSTM over a sequence, float32, hybrid (int8 weights,
float32 activations) or fully integer (int8 input and output state, int16 cell state: see
``_integer_lstm``). Inputs as TFLite's LSTM: 0 input ``[T, B, I]`` (``time_major``) or
``[B, T, I]``; 1-4 input-to-gate weights (input gate optional: CIFG); 5-8 recurrent weights
(or diagonal vectors with ``diagonal_recurrent_tensors``); 9-11 peephole weights (optional);
12-15 gate biases; 16-17 projection weights and bias (optional); 18-19 output and cell state
(variables, updated in place and kept across invokes); 20-23 layer-norm coefficients
(optional). Output ``[T, B, n_output]`` (or batch-major). See ``_recurrent`` for the step."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import lstm_cell_and_states
from .registry import register


@register(Op.UNIDIRECTIONAL_SEQUENCE_LSTM)
class UnidirectionalSequenceLSTM(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) not in (20, 24):
            raise node.fail(f"expects 20 or 24 inputs, got {len(node.inputs)}")
        x = node.inputs[0]
        if x is None or x.dtype not in (np.float32, np.int8):
            raise node.fail("input must be float32 or int8")
        if len(x.shape) != 3:
            raise node.fail(f"input {list(x.shape)} must be 3-D")
        o = node.options
        self.time_major = bool(o.time_major)
        t, b = (x.shape[0], x.shape[1]) if self.time_major else (x.shape[1], x.shape[0])
        self.cell, self.h, self.c = lstm_cell_and_states(node, x, b, o)
        return [(t, b, self.cell.n_output) if self.time_major else (b, t, self.cell.n_output)]

    def eval(self, inputs):
        x = np.asarray(inputs[0])
        if not self.time_major:
            x = np.swapaxes(x, 0, 1)
        h, c = self.h.read(inputs), self.c.read(inputs)
        out, h, c = self.cell.run(x, h, c)  # the input's matmuls for all steps at once
        self.h.write(inputs, h)
        self.c.write(inputs, c)
        if not self.time_major:
            out = np.ascontiguousarray(np.swapaxes(out, 0, 1))
        return [out]
