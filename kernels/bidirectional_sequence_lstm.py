"""BIDIRECTIONAL_SEQUENCE_LSTM: a forward and a backward LSTM over the same sequence, float32
or hybrid. Inputs: 0 input; 1-17 forward LSTM tensors and 18-34 backward ones (same order as
LSTM's 1-17: input weights, recurrent weights, peepholes, biases, projection); 35-38 forward /
backward output and cell states (variables); 39 auxiliary input and 40-47 forward / backward
auxiliary input weights (optional). With an auxiliary input but no auxiliary weights, the
backward LSTM reads the auxiliary input instead of the input (stacked bidirectional layers), as
in LiteRT. Outputs: forward and backward outputs, or one output with both concatenated on the
last axis (``merge_outputs``); the backward LSTM runs from the last step to the first."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._recurrent import LSTMCell, State
from .registry import register

_FW = {"xi": 1, "xf": 2, "xc": 3, "xo": 4, "hi": 5, "hf": 6, "hc": 7, "ho": 8, "pi": 9,
       "pf": 10, "po": 11, "bi": 12, "bf": 13, "bc": 14, "bo": 15, "proj": 16, "proj_b": 17,
       "ai": 40, "af": 41, "ac": 42, "ao": 43}
_BW = {k: (v + 17 if v <= 17 else v + 4) for k, v in _FW.items()}
_AUX = 39


def _present(node, i):
    return i < len(node.inputs) and node.inputs[i] is not None


@register(Op.BIDIRECTIONAL_SEQUENCE_LSTM)
class BidirectionalSequenceLSTM(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 48:
            raise node.fail(f"expects 48 inputs, got {len(node.inputs)}")
        x = node.inputs[0]
        if x is None or x.dtype != np.float32 or len(x.shape) != 3:
            raise node.fail("input must be float32 and 3-D")
        o = node.options
        self.time_major = bool(o.time_major)
        self.merge = bool(o.merge_outputs)
        t, b = (x.shape[0], x.shape[1]) if self.time_major else (x.shape[1], x.shape[0])
        has_aux = _present(node, _AUX)
        self.use_aux_weights = _present(node, _FW["af"])
        # Stacked layers: with an aux input and no aux weights, bw reads the aux input.
        self.bw_reads_aux = has_aux and not self.use_aux_weights
        fw_idx = dict(_FW) if self.use_aux_weights else \
            {k: v for k, v in _FW.items() if not k.startswith("a")}
        bw_idx = dict(_BW) if self.use_aux_weights else \
            {k: v for k, v in _BW.items() if not k.startswith("a")}
        n_in = x.shape[2]
        bw_in = node.inputs[_AUX].shape[2] if self.bw_reads_aux else n_in
        self.fw = LSTMCell(node, fw_idx, n_in, o)
        self.bw = LSTMCell(node, bw_idx, bw_in, o)
        self.states = [State(node, 35, (b, self.fw.n_output)),
                       State(node, 36, (b, self.fw.n_cell)),
                       State(node, 37, (b, self.bw.n_output)),
                       State(node, 38, (b, self.bw.n_cell))]
        fo, bo = self.fw.n_output, self.bw.n_output

        def shape(n):
            return (t, b, n) if self.time_major else (b, t, n)
        shapes = [shape(fo + bo)] if self.merge else [shape(fo), shape(bo)]
        if len(node.outputs) != len(shapes):
            raise node.fail(f"expects {len(shapes)} outputs with merge_outputs="
                            f"{self.merge}, got {len(node.outputs)}")
        return shapes

    def _seq(self, v):
        v = np.asarray(v, np.float32)
        return v if self.time_major else np.swapaxes(v, 0, 1)

    def eval(self, inputs):
        x = self._seq(inputs[0])
        aux = self._seq(inputs[_AUX]) if inputs[_AUX] is not None else None
        fw_aux = aux if self.use_aux_weights else None
        bw_x = aux if self.bw_reads_aux else x
        bw_aux = None if self.bw_reads_aux else fw_aux
        t_len = x.shape[0]
        outs = []
        for cell, (sh, sc), xs, ax, order in (
                (self.fw, self.states[0:2], x, fw_aux, range(t_len)),
                (self.bw, self.states[2:4], bw_x, bw_aux, range(t_len - 1, -1, -1))):
            h, c = sh.read(inputs), sc.read(inputs)
            out = np.empty((t_len, x.shape[1], cell.n_output), np.float32)
            for t in order:
                h, c = cell.step(xs[t], h, c, None if ax is None else ax[t])
                out[t] = h
            sh.write(inputs, h)
            sc.write(inputs, c)
            outs.append(out)
        if self.merge:
            outs = [np.concatenate(outs, axis=-1)]
        if not self.time_major:
            outs = [np.ascontiguousarray(np.swapaxes(v, 0, 1)) for v in outs]
        return outs
