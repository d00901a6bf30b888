"""The fully integer LSTM step (LiteRT's "8x8_16" kernel): int8 input and output state, int16
cell state, int8 weights, int32 biases, int16 gates. What TF's converter emits for an LSTM
quantized to int8 with a representative dataset (a Keras 2 / ``tf_keras`` LSTM layer; Keras 3
layers lower to WHILE loops instead). Used by LSTM and UNIDIRECTIONAL_SEQUENCE_LSTM.

The arithmetic follows LiteRT's ``lstm_eval`` / ``portable_tensor_utils``, step by step:

* prepare: per gate, the input and recurrent matmul scales ``w_scale * in_scale / gate_scale``
  (float32, then QuantizeMultiplier) and *effective biases*, ``bias - zp * row_sum(W)`` folded
  in per row (the gate bias goes with the input matmul; with layer normalization it is kept
  for the normalization instead). Gates are Q3.12 (scale 2**-12) unless layer normalization
  gives them the scales of the op's intermediates 0-3; intermediate 4 is the hidden state's.
  The cell state's scale must be a power of two, 2**cell_scale.
* a gate: 0, plus ``requant(W_x x + bias_x)`` clamped to int16, plus ``requant(W_h h +
  bias_h)`` clamped again, plus the peephole ``requant(w_c * c)`` (clamped), then the integer
  layer normalization (mean and variance in int64, gemmlowp's inverse square root) and
  gemmlowp's 16-bit fixed-point sigmoid (or tanh for the cell gate) of the Q3.12 value.
* the cell: ``c = rdbp(f * c, 15) + rdbp(i * g, 30 + cell_scale)`` (CIFG: ``i = 32767 - f``),
  saturated to int16, clipped to the quantized ``cell_clip``.
* the output: ``tanh(c)`` with ``15 + cell_scale`` integer bits, times ``o``, requantized to
  int8 with the hidden scale and zero point (intermediate 4). With projection weights,
  ``requant(W_p hidden + bias_p - hidden_zp * row_sum(W_p)) + output_zp`` clamped to int8
  and to the quantized ``proj_clip``; without, the hidden values are the new output state.
  LiteRT's integer tanh exists for 0-6 integer bits only (cell scales 2**-15 to 2**-9); for
  other cell scales, which TF's converter does choose for small cell states, it leaves its
  output buffer as it was, and that buffer holds the step's input gate: so ``o * i`` stands
  in for ``o * tanh(c)``, reproduced as measured (with CIFG the buffer was never written:
  refused).

Every integer operation wraps or saturates as LiteRT's C++ does. Batch rows are independent,
so the whole batch goes through each step at once.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.quantize import fixed_point as fp

from . import _qelementwise as q
from ._hybrid import constant_values

F32 = np.float32
_INT16 = (-32768, 32767)
_INT8 = (-128, 127)


def _scale(node, t, what: str) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor quantized tensor."""
    qp = t.quantization if t is not None else None
    if qp is None or qp.scale.size == 0:
        raise node.fail(f"{what} has no quantization parameters (integer LSTM)")
    if qp.scale.size != 1:
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"per-channel {what} (LiteRT's integer LSTM takes one scale)")
    return float(qp.scale[0]), int(qp.zero_point[0]) if qp.zero_point.size else 0


def _matmul_accumulate(x, w_t, bias, mult, shift, out, lo, hi, zp=0):
    """LiteRT's integer MatrixBatchVectorMultiplyAccumulate: ``int32(bias + x @ W.T)``
    requantized, plus ``zp`` and the current output, saturated to ``[lo, hi]``. ``x`` may
    have leading batch axes; ``mult``/``shift`` may be per output column."""
    acc = x.astype(np.float64) @ w_t  # exact: |sum| < K * 2**15 * 2**7 for any real K
    acc = q.wrap(acc.astype(np.int64) + bias, 32)
    r = fp.multiply_by_quantized_multiplier(acc, mult, shift) + zp + out
    return np.clip(r, lo, hi)


class _Gate:
    """One gate's constants: weights (int8, transposed), multipliers, effective biases,
    optional peephole and layer normalization. The cell stacks the gates' matmul constants."""

    def __init__(self, cell, w_x, w_h, bias, peep, ln, gate_scale):
        """``w_x``, ``w_h``: (int8 weights, scale); ``peep``, ``ln``: (int16 values, scale) or
        None; ``gate_scale``: the scale of the gate's int16 values."""
        (w_x, s_wx), (w_h, s_wh) = w_x, w_h
        self.w_x, self.w_h = w_x.T, w_h.T
        self.bias_x = zp_times_rows(-cell.in_zp, w_x, None if ln is not None else bias)
        self.bias_h = zp_times_rows(-cell.h_zp, w_h, None)
        # float32 arithmetic as LiteRT's prepare, then QuantizeMultiplier
        gs = F32(gate_scale)
        self.m_x = fp.quantize_multiplier(F32(F32(s_wx) * F32(cell.in_scale)) / gs)
        self.m_h = fp.quantize_multiplier(F32(F32(s_wh) * F32(cell.h_scale)) / gs)
        self.peep = None
        if peep is not None:
            pw, pscale = peep
            # std::pow(2, int) is a double: this product and quotient are in double
            self.peep = (pw.astype(np.int64), fp.quantize_multiplier(
                F32(2.0 ** cell.cell_scale * float(F32(pscale)) / float(gs))))
        self.ln = None
        if ln is not None:
            ln_w, ln_scale = ln
            guard = max(1, _f32_to_int32(F32(10000.0) * F32(ln_scale)))
            self.ln = (ln_w.astype(np.int64), np.asarray(bias, np.int64),
                       fp.quantize_multiplier(F32(ln_scale)), guard)

    def finish(self, g, c, cell, activation):
        """The gate from its matmul part ``g`` (int16 values as int64): peephole with cell
        state ``c``, layer normalization, then the activation table."""
        if self.peep is not None:
            g = cell.peephole(g, c, *self.peep)
        if self.ln is not None:
            g = layer_norm(g, *self.ln)
        return activation[g + 32768]


@functools.cache
def _sigmoid_table() -> np.ndarray:
    """gemmlowp's 16-bit logistic of every Q3.12 value (index ``value + 32768``)."""
    return q.gemmlowp_logistic16(np.arange(-32768, 32768)).astype(np.int64)


@functools.cache
def _tanh_table(integer_bits: int) -> np.ndarray:
    """gemmlowp's 16-bit tanh of every int16 value with ``integer_bits`` integer bits."""
    return q.gemmlowp_tanh16(np.arange(-32768, 32768), integer_bits).astype(np.int64)


def _f32_to_int32(v) -> int:
    """C's ``static_cast<int32_t>`` of a float on x86: truncation, and INT32_MIN for NaN or a
    value out of range (what ``cvttss2si`` gives)."""
    v = float(v)
    if not math.isfinite(v) or not -2.0**31 <= v < 2.0**31:
        return -(2**31)
    return int(v)


def _quantized_clip(clip: float, scale: float, bits: int) -> int:
    """LiteRT's quantized clip: ``clip / scale`` in float32, clamped with ``std::max`` /
    ``std::min`` to the type's range (a NaN passes through them), cast as C does on x86;
    0 (no clipping) when ``clip`` is not positive."""
    if not clip > 0:
        return 0
    with np.errstate(all="ignore"):
        v = F32(clip) / F32(scale)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    v = hi if v > hi else (lo if v < lo else v)
    return int(q.wrap(_f32_to_int32(v), bits))


def zp_times_rows(zp: int, w, bias) -> np.ndarray:
    """LiteRT's PrecomputeZeroPointTimesWeightWithBias: ``bias + zp * row_sum(W)`` (int32
    arithmetic)."""
    rows = w.astype(np.int64).sum(axis=1)
    base = np.zeros(w.shape[0], np.int64) if bias is None else bias.astype(np.int64)
    return q.wrap(base + q.wrap(rows * zp, 32), 32)


def layer_norm(x, w, bias, scale, guard) -> np.ndarray:
    """LiteRT's integer ApplyLayerNorm on int16 rows ``x [B, N]`` (as int64): mean and
    variance in integers (the variance floored at ``guard``), gemmlowp's inverse square root
    per row, the coefficients and bias in 2**-10 steps, then the layer-norm scale."""
    n = x.shape[-1]
    mean = q.wrap(_div_trunc(x.sum(axis=-1, keepdims=True) * 1024, n), 32)
    sq = (x * x).sum(axis=-1, keepdims=True)
    variance = q.wrap(_div_trunc(sq * ((1 << 20) // n) - mean * mean, 1 << 20), 32)
    variance = np.where(variance < 1, guard, variance)
    inv_a, inv_b = q.inv_sqrt_multiplier_array(variance)
    rescaled = fp.multiply_by_quantized_multiplier(q.wrap(1024 * x - mean, 32), inv_a, inv_b)
    val3 = q.wrap(q.wrap(rescaled * w, 32) + bias, 32)
    val4 = q.wrap(_div_trunc(np.where(val3 > 0, val3 + 512, val3 - 512), 1024), 32)
    val5 = fp.multiply_by_quantized_multiplier(val4, scale[0], scale[1] + 12)
    return np.clip(val5, *_INT16)


def _div_trunc(a, b):
    """C integer division (truncation toward zero) of int64 arrays by a positive int."""
    a = np.asarray(a, np.int64)
    return np.where(a >= 0, a // b, -((-a) // b))


class IntegerLSTMCell:
    """The constants of an integer LSTM node (inputs laid out as LSTM's, base index 1) and its
    step. ``x`` and ``h`` are int8 ``[B, n_input]`` / ``[B, n_output]``, ``c`` int16."""

    def __init__(self, node, n_input: int, options, *, layer_norm_inputs: bool):
        self.node = node
        ins = node.inputs

        def get(i):
            return ins[i] if i < len(ins) else None

        x = ins[0]
        self.in_scale, self.in_zp = _scale(node, x, "input")
        h_t, c_t = get(18), get(19)
        if h_t is None or c_t is None:
            raise node.fail("missing output or cell state")
        if h_t.dtype != np.int8 or c_t.dtype != np.int16:
            raise node.fail(f"integer LSTM states must be int8 (output) and int16 (cell), got "
                            f"{h_t.tensor.type_name} and {c_t.tensor.type_name}")
        self.h_scale, self.h_zp = _scale(node, h_t, "output state")
        c_scale, _ = _scale(node, c_t, "cell state")
        cell_scale = q.checked_log2(c_scale)
        if cell_scale is None:
            raise node.fail(f"cell state scale {c_scale} is not a power of two")
        self.cell_scale = cell_scale
        #: LiteRT's integer tanh exists for 0-6 integer bits (cell scales 2**-15 to 2**-9);
        #: for other scales it leaves its output buffer as it was (see :meth:`step`).
        self.tanh_bits = 15 + cell_scale if 0 <= 15 + cell_scale <= 6 else None
        inter = node.op.intermediates
        if len(inter) != 5:
            raise UnsupportedOpError(
                node.op.name, node.path,
                f"{len(inter)} intermediate tensors: only the 8x8_16 integer LSTM (5) is "
                "supported" + (" (12 is LiteRT's experimental 8x8_8 form)"
                               if len(inter) == 12 else ""))

        def weight(i, what, dtype=np.int8, optional=False):
            t = get(i)
            if t is None:
                if optional:
                    return None
                raise node.fail(f"missing {what}")
            v = constant_values(node, t)
            if v is None:
                raise UnsupportedOpError(node.op.name, node.path,
                                         f"{what} computed at run time (only constants)")
            if v.dtype != dtype:
                raise node.fail(f"{what} must be {np.dtype(dtype).name} in an integer LSTM, "
                                f"got {t.tensor.type_name}")
            return v

        w_x = [weight(i, n, optional=(i == 1)) for i, n in (
            (1, "input_to_input_weights"), (2, "input_to_forget_weights"),
            (3, "input_to_cell_weights"), (4, "input_to_output_weights"))]
        w_h = [weight(i, n, optional=(i == 5)) for i, n in (
            (5, "recurrent_to_input_weights"), (6, "recurrent_to_forget_weights"),
            (7, "recurrent_to_cell_weights"), (8, "recurrent_to_output_weights"))]
        self.cifg = w_x[0] is None
        if (w_x[0] is None) != (w_h[0] is None):
            raise node.fail("input gate weights must be both present or both absent (CIFG)")
        if self.cifg and self.tanh_bits is None:
            raise UnsupportedOpError(
                node.op.name, node.path,
                f"cell state scale 2**{cell_scale} with CIFG: LiteRT's integer tanh takes "
                "cell scales 2**-15 to 2**-9 and otherwise leaves a buffer that a CIFG LSTM "
                "never writes (uninitialized memory)")
        n_cell = w_x[3].shape[0] if w_x[3].ndim == 2 else -1
        proj = weight(16, "projection_weights", optional=True)
        n_output = w_h[3].shape[1] if w_h[3].ndim == 2 else -1
        for name, w, cols in (("input", w_x, n_input), ("recurrent", w_h, n_output)):
            for k, m in enumerate(w):
                if m is not None and (m.ndim != 2 or m.shape != (n_cell, cols)):
                    raise node.fail(f"{name} weights {k} have shape {list(m.shape)}, expected "
                                    f"[{n_cell}, {cols}]")
        if proj is not None and proj.shape != (n_output, n_cell):
            raise node.fail(f"projection_weights {list(proj.shape)} are not "
                            f"[{n_output}, {n_cell}]")
        if proj is None and n_output != n_cell:
            raise node.fail(f"{n_output} outputs but {n_cell} cells and no projection")
        if n_cell <= 0:
            raise node.fail("an integer LSTM needs at least one cell")
        self.n_cell, self.n_output = n_cell, n_output

        def vector(i, what, dtype, optional=True):
            v = weight(i, what, dtype, optional=optional)
            if v is not None and v.reshape(-1).size != n_cell:
                raise node.fail(f"{what} has {v.size} values, expected {n_cell}")
            return None if v is None else v.reshape(-1)

        biases = [vector(i, n, np.int32, optional=(i == 12)) for i, n in (
            (12, "input_gate_bias"), (13, "forget_gate_bias"), (14, "cell_gate_bias"),
            (15, "output_gate_bias"))]
        if not self.cifg and biases[0] is None:
            raise node.fail("missing input_gate_bias")
        peeps = [vector(i, n, np.int16) for i, n in (
            (9, "cell_to_input_weights"), (10, "cell_to_forget_weights"),
            (11, "cell_to_output_weights"))]
        self.use_peephole = peeps[2] is not None
        if self.use_peephole and n_output > n_cell:
            # LiteRT applies the peephole over n_output values per row (it assumes no
            # projection there) and would read past the cell state.
            raise UnsupportedOpError(node.op.name, node.path,
                                     "peephole weights with more outputs than cells")
        lns = [vector(i, n, np.int16) if layer_norm_inputs else None for i, n in (
            (20, "input_layer_norm_coefficients"), (21, "forget_layer_norm_coefficients"),
            (22, "cell_layer_norm_coefficients"), (23, "output_layer_norm_coefficients"))]
        self.layer_norm = lns[1] is not None

        # Gate scales: Q3.12, or the intermediates' with layer normalization.
        gate_scales = [_scale(node, inter[k], f"intermediate {k}")[0] if self.layer_norm
                       else 2.0 ** -12 for k in range(4)]
        hidden_scale, self.hidden_zp = _scale(node, inter[4], "intermediate 4 (hidden)")

        def scale_of(i):
            return _scale(node, ins[i], f"input {i}")[0]

        def with_scale(values, i):
            return None if values is None else (values, scale_of(i))

        self.gates = {}
        for k, name in enumerate(("i", "f", "c", "o")):
            if k == 0 and self.cifg:
                continue
            p = {0: 0, 1: 1, 3: 2}.get(k)  # cell_to_input / _forget / _output weights
            peep = with_scale(peeps[p], 9 + p) if self.use_peephole and p is not None else None
            ln = with_scale(lns[k], 20 + k) if self.layer_norm else None
            self.gates[name] = _Gate(self, with_scale(w_x[k], 1 + k), with_scale(w_h[k], 5 + k),
                                     biases[k], peep, ln, gate_scales[k])
        # The gates' matmuls stacked side by side: one GEMM per source (the input's for the
        # whole sequence at once) with per-column multipliers; each column's arithmetic is
        # its gate's own.
        gl = list(self.gates.values())

        def stack(attr):
            return np.concatenate([getattr(g, attr) for g in gl], axis=-1)

        def stack_weights(attr):  # float64 for exact BLAS products
            return stack(attr).astype(np.float64)

        def per_column(attr):
            return tuple(np.repeat([getattr(g, attr)[j] for g in gl], n_cell).astype(np.int64)
                         for j in (0, 1))

        self.w_x, self.bias_x, self.m_x = stack_weights("w_x"), stack("bias_x"), per_column("m_x")
        self.w_h, self.bias_h, self.m_h = stack_weights("w_h"), stack("bias_h"), per_column("m_h")
        self.sigmoid = _sigmoid_table()
        self.tanh3 = _tanh_table(3)
        self.tanh_out = _tanh_table(self.tanh_bits) if self.tanh_bits is not None else None

        self.hidden_m = fp.quantize_multiplier(  # in double, stored as a float
            F32(2.0 ** -15 / float(F32(hidden_scale)) * 2.0 ** -15))
        out_t = node.outputs[0]
        out_scale = _scale(node, out_t, "output")[0] if out_t is not None else 1.0
        self.proj = None
        if proj is not None:
            pb = weight(17, "projection_bias", np.int32, optional=True)
            self.proj = (proj.astype(np.float64).T.copy(),
                         zp_times_rows(-self.hidden_zp, proj,
                                       None if pb is None else pb.reshape(-1)),
                         fp.quantize_multiplier(F32(F32(scale_of(16)) * F32(hidden_scale))
                                                / F32(self.h_scale)))
        cell_clip = float(options.cell_clip or 0.0)
        proj_clip = float(options.proj_clip or 0.0)
        self.cell_clip = _quantized_clip(cell_clip, c_scale, 16)
        self.proj_clip = _quantized_clip(proj_clip, out_scale, 8)

    def peephole(self, g, c, w, m):
        """VectorBatchVectorCwiseProductAccumulate as LiteRT calls it: over ``n_output`` values
        of each row of the flattened cell state and gate."""
        b = g.shape[0]
        n = self.n_output
        flat_c = c.reshape(-1)[:b * n].reshape(b, n)
        prod = fp.multiply_by_quantized_multiplier(w[:n] * flat_c, *m)
        flat_g = g.reshape(-1).copy()
        flat_g[:b * n] = np.clip(prod.reshape(-1) + flat_g[:b * n], *_INT16)
        return flat_g.reshape(g.shape)

    def run(self, xs, h, c):
        """A sequence ``xs [T, B, n_input]`` (int8) from states ``h`` (int8) and ``c``
        (int16): (outputs ``[T, B, n_output]`` int8, new output state, new cell state)."""
        xs = np.asarray(xs, np.int64)
        h = np.asarray(h, np.int64)
        c = np.asarray(c, np.int64)
        t_steps, b = xs.shape[0], xs.shape[1]
        n = self.n_cell
        # the input matmuls of every step, then each step's recurrent matmuls on top
        gx = _matmul_accumulate(xs, self.w_x, self.bias_x, *self.m_x, 0, *_INT16)
        out = np.empty((t_steps, b, self.n_output), np.int8)
        gates = self.gates
        names = list(gates)
        sig = self.sigmoid
        for t in range(t_steps):
            g_all = _matmul_accumulate(h, self.w_h, self.bias_h, *self.m_h, gx[t], *_INT16)
            pre = {name: g_all[:, k * n:(k + 1) * n] for k, name in enumerate(names)}
            f = gates["f"].finish(pre["f"], c, self, sig)
            g = gates["c"].finish(pre["c"], c, self, self.tanh3)
            i = q.wrap(32767 - f, 16) if self.cifg else gates["i"].finish(pre["i"], c, self, sig)
            c = np.clip(q.wrap(q.rdbp(f * c, 15), 16)
                        + q.wrap(q.rdbp(i * g, 30 + self.cell_scale), 16), *_INT16)
            if self.cell_clip > 0:
                c = np.clip(c, -self.cell_clip, self.cell_clip)
            o = gates["o"].finish(pre["o"], c, self, sig)  # its peephole reads the new cell
            # LiteRT's ApplyTanh writes nothing for cell scales outside 2**-15..2**-9: its
            # output buffer is the input gate's, which still holds this step's input gate.
            tc = self.tanh_out[c + 32768] if self.tanh_out is not None else i
            hidden = np.clip(fp.multiply_by_quantized_multiplier(o * tc, *self.hidden_m)
                             + self.hidden_zp, *_INT8)
            if self.proj is not None:
                w_t, bias, m = self.proj
                h = _matmul_accumulate(hidden, w_t, bias, *m, 0, *_INT8, zp=self.h_zp)
                if self.proj_clip > 0:
                    h = np.clip(h, -self.proj_clip, self.proj_clip)
            else:
                h = hidden
            out[t] = h
        return out, h.astype(np.int8), c.astype(np.int16)

    def step(self, x, h, c):
        """One time step: (new output state int8, new cell state int16)."""
        _, h, c = self.run(np.asarray(x)[None], h, c)
        return h, c
