"""BIDIRECTIONAL_SEQUENCE_RNN: a forward and a backward RNN over the same sequence, float32 or
hybrid. Inputs: 0 input; 1-4 forward weights, recurrent weights, bias, hidden state
(variable); 5-8 the backward ones; 9 auxiliary input, 10-11 forward / backward auxiliary
weights (optional; with an auxiliary input but no auxiliary weights the backward RNN reads the
auxiliary input, as in LiteRT). Outputs: forward and backward outputs, or both concatenated on
the last axis (``merge_outputs``); the backward RNN runs from the last step to the first."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import RNNCell, State
from .registry import register


def _present(node, i):
    return i < len(node.inputs) and node.inputs[i] is not None


@register(Op.BIDIRECTIONAL_SEQUENCE_RNN)
class BidirectionalSequenceRNN(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 12:
            raise node.fail(f"expects 12 inputs, got {len(node.inputs)}")
        x = node.inputs[0]
        if x is None or x.dtype != np.float32 or len(x.shape) != 3:
            raise node.fail("input must be float32 and 3-D")
        o = node.options
        self.time_major = bool(o.time_major)
        self.merge = bool(o.merge_outputs)
        t, b = (x.shape[0], x.shape[1]) if self.time_major else (x.shape[1], x.shape[0])
        has_aux = _present(node, 9)
        self.use_aux_weights = _present(node, 10)
        self.bw_reads_aux = has_aux and not self.use_aux_weights
        aw = (10, 11) if self.use_aux_weights else (None, None)
        self.fw = RNNCell(node, 1, 2, 3, o, aw[0])
        self.bw = RNNCell(node, 5, 6, 7, o, aw[1])
        self.states = [State(node, 4, (b, self.fw.units)), State(node, 8, (b, self.bw.units))]

        def shape(n):
            return (t, b, n) if self.time_major else (b, t, n)
        shapes = [shape(self.fw.units + self.bw.units)] if self.merge else \
            [shape(self.fw.units), shape(self.bw.units)]
        if len(node.outputs) != len(shapes):
            raise node.fail(f"expects {len(shapes)} outputs with merge_outputs="
                            f"{self.merge}, got {len(node.outputs)}")
        return shapes

    def _seq(self, v):
        v = np.asarray(v, np.float32)
        return v if self.time_major else np.swapaxes(v, 0, 1)

    def eval(self, inputs):
        x = self._seq(inputs[0])
        aux = self._seq(inputs[9]) if inputs[9] is not None else None
        fw_aux = aux if self.use_aux_weights else None
        bw_x = aux if self.bw_reads_aux else x
        bw_aux = None if self.bw_reads_aux else fw_aux
        t_len = x.shape[0]
        outs = []
        for cell, st, xs, ax, order in (
                (self.fw, self.states[0], x, fw_aux, range(t_len)),
                (self.bw, self.states[1], bw_x, bw_aux, range(t_len - 1, -1, -1))):
            h = st.read(inputs)
            out = np.empty((t_len, x.shape[1], cell.units), np.float32)
            for t in order:
                h = cell.step(xs[t], h, None if ax is None else ax[t])
                out[t] = h
            st.write(inputs, h)
            outs.append(out)
        if self.merge:
            outs = [np.concatenate(outs, axis=-1)]
        if not self.time_major:
            outs = [np.ascontiguousarray(np.swapaxes(v, 0, 1)) for v in outs]
        return outs
