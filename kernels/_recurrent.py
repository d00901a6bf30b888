"""Shared pieces of the recurrent kernels (LSTM / RNN, unidirectional sequence and plain): weight
matrices that are float32 or hybrid int8, the LSTM and RNN cell steps, and persistent state.

Float and hybrid follow LiteRT's lstm_eval / kernel_utils step by step:

* a gate starts at its bias (at zero with layer normalization), then accumulates
  ``W_input * x`` (+ ``W_aux * aux``) + ``W_recurrent * h`` (+ peephole ``w .* c``); with layer
  normalization it is normalized per row (mean / standard deviation, epsilon 1e-8), scaled by
  the coefficients and the bias added; then its activation (sigmoid; the cell gate uses the
  op's activation, usually tanh).
* ``c = f .* c + i .* g`` (CIFG: ``i = 1 - f``), clipped to ``cell_clip`` when > 0;
  ``o`` takes the peephole of the *new* cell state; ``h = o .* act(c)``, projected
  (``W_proj h + b_proj``, clipped to ``proj_clip``) when there are projection weights.
* hybrid: each source vector (input, output state, projection input) is quantized once per
  step and row, symmetric or asymmetric (``asymmetric_quantize_inputs``), exactly as in
  :mod:`._hybrid`, and multiplies int8 weights with ``float(acc) * (row_scale *
  weight_scale)``; an all-zero source is skipped, as LiteRT does.

State tensors (LSTM output/cell state, RNN hidden state) are *variable* inputs: LiteRT updates
them in place, so they carry over to the next invoke until ``reset_all_variables``. We update
the interpreter's array in place when it has one, and keep our own copy otherwise.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import TensorType

from ._hybrid import (
    constant_values,
    float_activation,
    int_matmul,
    quantize_asymmetric,
    quantize_symmetric,
)

F32 = np.float32


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(F32)


class Source:
    """One step's source vectors ``[B, N]``: float, and quantized once for hybrid weights."""

    def __init__(self, x: np.ndarray, asymmetric: bool):
        self.x = np.asarray(x, F32)
        self.asymmetric = asymmetric
        self.all_zero = not np.any(self.x)
        self._q = None

    def quantized(self):
        if self._q is None:
            if self.asymmetric:
                self._q = quantize_asymmetric(self.x)
            else:
                q, sf = quantize_symmetric(self.x)
                self._q = (q, sf, None)
        return self._q


class Weight:
    """A constant weight matrix ``[rows, cols]`` of a recurrent op: float32, or int8 / uint8
    with one scale (hybrid). ``add_to(gate, source)`` accumulates ``W @ source`` into
    ``gate [B, rows]`` as LiteRT's MatrixBatchVectorMultiplyAccumulate does."""

    def __init__(self, node, index: int, what: str):
        t = node.inputs[index]
        self.what = what
        value = constant_values(node, t)
        if value is None:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{what} computed at run time (only constants)")
        tt = int(t.tensor.dtype)
        self.shape = value.shape
        if tt == TensorType.FLOAT32:
            self.hybrid = False
            self.w = np.asarray(value, F32)
            self.w_t = np.ascontiguousarray(self.w.T) if self.w.ndim == 2 else None
            return
        if tt not in (TensorType.INT8, TensorType.UINT8):
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{t.tensor.type_name} {what} (float32 or int8 only)")
        q = t.quantization
        if q is None or q.scale.size == 0:
            raise node.fail(f"int8 {what} without a quantization scale")
        if q.scale.size != 1:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"per-channel {what} (LiteRT's hybrid recurrent kernels "
                                     "take one scale)")
        w = value.view(np.int8) if value.dtype == np.uint8 else np.asarray(value, np.int8)
        self.hybrid = True
        self.scale = F32(q.scale[0])
        self.w = w
        self.w_t = np.ascontiguousarray(w.T, np.float64) if w.ndim == 2 else None
        self.row_sums = w.astype(np.int64).sum(axis=-1) if w.ndim == 2 else None
        #: Dequantized values for elementwise uses (peephole): scale * int8 in float32.
        self.dequantized = (self.scale * w.astype(F32)).astype(F32)

    def add_to(self, gate: np.ndarray, src: Source) -> np.ndarray:
        if not self.hybrid:
            return (gate + (src.x @ self.w_t).astype(F32)).astype(F32)
        if src.all_zero:
            return gate
        q, sf, zp = src.quantized()
        acc = int_matmul(q, self.w_t)
        if zp is not None:
            corr = (self.row_sums.astype(F32)[None, :] * zp.astype(F32)[:, None]).astype(F32)
            acc = np.trunc((acc.astype(F32) - corr).astype(F32))
        scale = (sf * self.scale).astype(F32)[:, None]
        return (gate + (acc.astype(F32) * scale).astype(F32)).astype(F32)

    def elementwise(self) -> np.ndarray:
        """The float values of a vector weight (peephole, diagonal recurrent)."""
        return self.dequantized if self.hybrid else self.w


def optional_weight(node, index: int, what: str) -> Weight | None:
    if index >= len(node.inputs) or node.inputs[index] is None:
        return None
    return Weight(node, index, what)


def optional_vector(node, index: int, n: int, what: str) -> np.ndarray | None:
    """A float32 constant vector (bias, layer-norm coefficients) of length ``n``, or None."""
    if index >= len(node.inputs) or node.inputs[index] is None:
        return None
    t = node.inputs[index]
    v = constant_values(node, t)
    if v is None:
        raise UnsupportedOpError(node.op.name, node.path, f"{what} computed at run time")
    if int(t.tensor.dtype) != TensorType.FLOAT32:
        if t.quantization is not None and t.quantization.scale.size == 1:
            v = (F32(t.quantization.scale[0]) * np.asarray(v, F32)).astype(F32)
        else:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{t.tensor.type_name} {what}")
    v = np.asarray(v, F32).reshape(-1)
    if v.size != n:
        raise node.fail(f"{what} has {v.size} values, expected {n}")
    return v


def mean_stddev_normalization(x: np.ndarray) -> np.ndarray:
    """LiteRT's MeanStddevNormalization per row (float32 sums; epsilon 1e-8)."""
    n = x.shape[-1]
    s = x.sum(axis=-1, dtype=F32, keepdims=True)
    sq = (x * x).sum(axis=-1, dtype=F32, keepdims=True)
    mean = (s / F32(n)).astype(F32)
    var = (sq / F32(n) - mean * mean).astype(F32)
    safe = np.where(var == 0, F32(1), var).astype(F32)
    inv = np.where(var == 0, F32(1) / np.sqrt(F32(1e-8)), F32(1) / np.sqrt(safe))
    return ((x - mean) * inv.astype(F32)).astype(F32)


class State:
    """A variable state input of a recurrent op (updated in place, carried across invokes),
    read and kept as ``dtype`` (float32; int16 for integer SVDF)."""

    def __init__(self, node, index: int, shape, dtype=F32):
        self.node, self.index, self.shape = node, index, tuple(shape)
        self.dtype = np.dtype(dtype)
        t = node.inputs[index]
        if t is None:
            raise node.fail(f"missing state input {index}")
        if not t.tensor.is_variable:
            # LiteRT requires a variable tensor here; a constant would be read-only.
            raise node.fail(f"state input {index} ({t.name!r}) is not a variable tensor")
        if tuple(t.shape) != self.shape:
            raise node.fail(f"state input {index} has shape {list(t.shape)}, expected "
                            f"{list(self.shape)}")

    def read(self, inputs) -> np.ndarray:
        given = inputs[self.index]
        held = self.node.state.get(("state", self.index))
        if given is not None and given.flags.writeable:
            return np.asarray(given, self.dtype).reshape(self.shape)
        if held is not None and held[0] is given:
            return held[1]
        value = np.zeros(self.shape, self.dtype) if given is None else \
            np.array(given, self.dtype).reshape(self.shape)
        return value

    def write(self, inputs, value: np.ndarray) -> None:
        given = inputs[self.index]
        if given is not None and given.flags.writeable and given.shape == self.shape:
            np.copyto(given, value.astype(given.dtype))
            return
        held = self.node.state.get(("state", self.index))
        if held is not None and held[0] is given:
            np.copyto(held[1], value)
        else:
            held = self.node.state[("state", self.index)] = (given, np.array(value, self.dtype))
        # The tensor's value as the interpreter shows it: LiteRT updates it in place even when
        # it is a read-only value here (a float16 model's states are DEQUANTIZE outputs of
        # constant zeros, marked variable), so the interpreter publishes our copy.
        self.node.state.setdefault("mutated_inputs", {})[self.node.inputs[self.index].index] = \
            held[1]


# -- LSTM -----------------------------------------------------------------------------------------

class LSTMCell:
    """The 20 (+ 4 layer-norm) LSTM tensors of a node, starting at input index ``base``:
    the layout of LSTM / UNIDIRECTIONAL_SEQUENCE_LSTM (base 1). ``aux`` are the optional
    auxiliary-input weights (bidirectional LSTM)."""

    def __init__(self, node, idx: dict, n_input: int, options, *, diagonal=False):
        self.node = node
        def get(name):
            return optional_weight(node, idx[name], name) if name in idx else None

        self.w_xi, self.w_xf, self.w_xc, self.w_xo = (get(k) for k in ("xi", "xf", "xc", "xo"))
        self.w_hi, self.w_hf, self.w_hc, self.w_ho = (get(k) for k in ("hi", "hf", "hc", "ho"))
        self.a_i, self.a_f, self.a_c, self.a_o = (get(k) for k in ("ai", "af", "ac", "ao"))
        self.p_i, self.p_f, self.p_o = (get(k) for k in ("pi", "pf", "po"))
        self.w_proj = get("proj")
        for name, w in (("input_to_forget_weights", self.w_xf),
                        ("input_to_cell_weights", self.w_xc),
                        ("input_to_output_weights", self.w_xo),
                        ("recurrent_to_forget_weights", self.w_hf),
                        ("recurrent_to_cell_weights", self.w_hc),
                        ("recurrent_to_output_weights", self.w_ho)):
            if w is None:
                raise node.fail(f"missing {name}")
        self.cifg = self.w_xi is None
        if (self.w_xi is None) != (self.w_hi is None):
            raise node.fail("input gate weights must be both present or both absent (CIFG)")
        n_cell = self.w_xf.shape[0]
        if self.w_xf.shape[1] != n_input:
            raise node.fail(f"input_to_forget_weights {list(self.w_xf.shape)} do not take "
                            f"{n_input} inputs")
        self.diagonal = diagonal
        n_output = self.w_proj.shape[0] if self.w_proj is not None else n_cell
        if not diagonal and self.w_hf.shape != (n_cell, n_output):
            raise node.fail(f"recurrent weights {list(self.w_hf.shape)} are not "
                            f"[{n_cell}, {n_output}]")
        self.n_cell, self.n_output = n_cell, n_output
        def vec(name, n=n_cell):
            return optional_vector(node, idx[name], n, name) if name in idx else None

        self.b_i, self.b_f, self.b_c, self.b_o = (vec(k) for k in ("bi", "bf", "bc", "bo"))
        self.b_proj = vec("proj_b", n_output)
        self.ln_i, self.ln_f, self.ln_c, self.ln_o = (vec(k) for k in ("li", "lf", "lc", "lo"))
        self.layer_norm = self.ln_f is not None
        for name, b in (("forget_gate_bias", self.b_f), ("cell_gate_bias", self.b_c),
                        ("output_gate_bias", self.b_o)):
            if b is None:
                raise node.fail(f"missing {name}")
        if not self.cifg and self.b_i is None:
            raise node.fail("missing input_gate_bias")
        self.act = int(options.fused_activation_function)
        self.cell_clip = float(options.cell_clip or 0.0)
        self.proj_clip = float(options.proj_clip or 0.0)
        self.asym = bool(getattr(options, "asymmetric_quantize_inputs", False))
        weights = [w for w in (self.w_xi, self.w_xf, self.w_xc, self.w_xo, self.w_hi, self.w_hf,
                               self.w_hc, self.w_ho, self.w_proj) if w is not None]
        self.hybrid = any(w.hybrid for w in weights)

    def _gate(self, b, w_x, w_a, w_h, peep, ln, bias, xs, as_, hs, c, act, gx=None):
        """One gate; ``gx``: its start (bias or 0, plus ``W_x x``) computed beforehand for a
        whole sequence (:meth:`run`), else computed here from ``xs``."""
        if gx is not None:
            gate = gx
        else:
            gate = self._start(b, ln, bias)
            gate = w_x.add_to(gate, xs)
        if w_a is not None and as_ is not None:
            gate = w_a.add_to(gate, as_)
        if self.diagonal:
            gate = (gate + (w_h.elementwise() * hs.x).astype(F32)).astype(F32)
        else:
            gate = w_h.add_to(gate, hs)
        if peep is not None:
            gate = (gate + (peep.elementwise() * c).astype(F32)).astype(F32)
        if ln is not None:
            gate = (mean_stddev_normalization(gate) * ln).astype(F32)
            gate = (gate + bias).astype(F32)
        if act == "sigmoid":
            return sigmoid(gate)
        return float_activation(gate, act)

    def _start(self, b, ln, bias):
        if ln is not None:
            return np.zeros((b, self.n_cell), F32)
        return np.broadcast_to(bias, (b, self.n_cell)).astype(F32)

    def run(self, xs: np.ndarray, h: np.ndarray, c: np.ndarray):
        """A sequence ``xs [T, B, I]`` from states ``h``, ``c``: (outputs ``[T, B,
        n_output]``, new output state, new cell state). The input's part of every gate (bias +
        ``W_x x``, or ``W_x x`` with layer normalization) is computed for all steps at once,
        one GEMM per gate instead of one per step: per row the same operations (hybrid: each
        row quantized on its own, as per step), so the same values; LiteRT skipping an
        all-zero step's input adds nothing either way."""
        t_steps, b = xs.shape[0], xs.shape[1]
        src = Source(np.asarray(xs, F32).reshape(t_steps * b, xs.shape[2]), self.asym)
        parts = {}
        for name, w, ln, bias in (("i", self.w_xi, self.ln_i, self.b_i),
                                  ("f", self.w_xf, self.ln_f, self.b_f),
                                  ("c", self.w_xc, self.ln_c, self.b_c),
                                  ("o", self.w_xo, self.ln_o, self.b_o)):
            if w is not None:
                g = w.add_to(self._start(t_steps * b, ln, bias), src)
                parts[name] = np.asarray(g, F32).reshape(t_steps, b, self.n_cell)
        out = np.empty((t_steps, b, self.n_output), F32)
        for t in range(t_steps):
            h, c = self.step(None, h, c, gx={k: v[t] for k, v in parts.items()})
            out[t] = h
        return out, h, c

    def step(self, x: np.ndarray | None, h: np.ndarray, c: np.ndarray,
             aux: np.ndarray | None = None, gx: dict | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """One time step for a batch: ``x [B, I]``, ``h [B, n_output]``, ``c [B, n_cell]`` ->
        (new output state, new cell state). ``gx``: the gates' input parts, precomputed by
        :meth:`run` (then ``x`` is not used)."""
        b = h.shape[0]
        xs = Source(x, self.asym) if gx is None else None
        hs = Source(h, self.asym)
        as_ = Source(aux, self.asym) if aux is not None else None
        gx = gx or {}
        i = None
        if not self.cifg:
            i = self._gate(b, self.w_xi, self.a_i, self.w_hi, self.p_i, self.ln_i, self.b_i,
                           xs, as_, hs, c, "sigmoid", gx.get("i"))
        f = self._gate(b, self.w_xf, self.a_f, self.w_hf, self.p_f, self.ln_f, self.b_f,
                       xs, as_, hs, c, "sigmoid", gx.get("f"))
        g = self._gate(b, self.w_xc, self.a_c, self.w_hc, None, self.ln_c, self.b_c,
                       xs, as_, hs, c, self.act, gx.get("c"))
        c_new = (f * c).astype(F32)
        i_eff = (F32(1) - f).astype(F32) if self.cifg else i
        c_new = (c_new + (g * i_eff).astype(F32)).astype(F32)
        if self.cell_clip > 0:
            c_new = np.clip(c_new, -F32(self.cell_clip), F32(self.cell_clip)).astype(F32)
        o = self._gate(b, self.w_xo, self.a_o, self.w_ho, self.p_o, self.ln_o, self.b_o,
                       xs, as_, hs, c_new, "sigmoid", gx.get("o"))
        hid = (o * float_activation(c_new.copy(), self.act)).astype(F32)
        if self.w_proj is not None:
            out = np.zeros((b, self.n_output), F32) if self.b_proj is None else \
                np.broadcast_to(self.b_proj, (b, self.n_output)).astype(F32)
            out = self.w_proj.add_to(out, Source(hid, self.asym))
            if self.proj_clip > 0:
                out = np.clip(out, -F32(self.proj_clip), F32(self.proj_clip)).astype(F32)
        else:
            out = hid
        return out, c_new


#: Input positions of the LSTM tensors in LSTM / UNIDIRECTIONAL_SEQUENCE_LSTM.
LSTM_INPUTS = {"xi": 1, "xf": 2, "xc": 3, "xo": 4, "hi": 5, "hf": 6, "hc": 7, "ho": 8,
               "pi": 9, "pf": 10, "po": 11, "bi": 12, "bf": 13, "bc": 14, "bo": 15,
               "proj": 16, "proj_b": 17, "li": 20, "lf": 21, "lc": 22, "lo": 23}
LSTM_OUTPUT_STATE, LSTM_CELL_STATE = 18, 19


def lstm_cell_and_states(node, x, batch: int, options):
    """The cell and the (output, cell) state of an LSTM / UNIDIRECTIONAL_SEQUENCE_LSTM node:
    float32 / hybrid (:class:`LSTMCell`) for a float32 input, fully integer
    (:class:`._integer_lstm.IntegerLSTMCell`: int8 output state, int16 cell state) for int8."""
    n_input = x.shape[-1]
    if x.dtype == np.int8:
        from ._integer_lstm import IntegerLSTMCell

        cell = IntegerLSTMCell(node, n_input, options,
                               layer_norm_inputs=len(node.inputs) == 24)
        h_dtype, c_dtype = np.int8, np.int16
    else:
        cell = LSTMCell(node, LSTM_INPUTS, n_input, options,
                        diagonal=bool(getattr(options, "diagonal_recurrent_tensors", False)))
        h_dtype = c_dtype = F32
    return (cell, State(node, LSTM_OUTPUT_STATE, (batch, cell.n_output), h_dtype),
            State(node, LSTM_CELL_STATE, (batch, cell.n_cell), c_dtype))


# -- RNN ------------------------------------------------------------------------------------------

class RNNCell:
    """``h = act(W x (+ W_aux aux) + W_h h + b)`` (LiteRT's RnnBatchStep), float or hybrid."""

    def __init__(self, node, i_w: int, i_r: int, i_b: int, options, i_aw: int | None = None):
        self.w = Weight(node, i_w, "input_weights")
        self.r = Weight(node, i_r, "recurrent_weights")
        self.aw = optional_weight(node, i_aw, "aux_input_weights") if i_aw is not None \
            else None
        units = self.w.shape[0]
        if self.w.w.ndim != 2 or self.r.shape != (units, units):
            raise node.fail(f"weights {list(self.w.shape)} / recurrent weights "
                            f"{list(self.r.shape)} do not describe {units} units")
        self.units, self.n_input = units, self.w.shape[1]
        self.bias = optional_vector(node, i_b, units, "bias")
        if self.bias is None:
            raise node.fail("missing bias")
        self.act = int(options.fused_activation_function)
        self.asym = bool(getattr(options, "asymmetric_quantize_inputs", False))
        self.hybrid = self.w.hybrid or self.r.hybrid

    def step(self, x: np.ndarray, h: np.ndarray, aux: np.ndarray | None = None) -> np.ndarray:
        b = x.shape[0]
        out = np.broadcast_to(self.bias, (b, self.units)).astype(F32)
        out = self.w.add_to(out, Source(x, self.asym))
        if self.aw is not None and aux is not None:
            out = self.aw.add_to(out, Source(aux, self.asym))
        out = self.r.add_to(out, Source(h, self.asym))
        return float_activation(out, self.act)


def activation_code(act) -> int:
    return int(act if act is not None else Act.NONE)
