"""Compiled inner loops (numba) of the hottest kernels: depthwise convolution, the integer
requantization of GEMM accumulators, the float bias + activation pass, and the byte-pair
table gather of 8-bit binary ops.

Each loop computes exactly what the kernel's numpy form computes (tests compare the two on
the same inputs, value for value), in one pass over the output instead of one numpy pass per
operation: the tap sum, bias, clamp or requantization of an output pixel happen while its
channels are in registers. Only :mod:`._jit` imports this module (numba is imported lazily,
and a missing numba or ``WORKBENCH_JIT=0`` leaves the numpy forms in charge).

Conventions shared by every loop:

- Float tap sums start from 0 and add ``x * w`` tap by tap in row-major ``(i, j)`` order, a
  float32 multiply and a float32 add each (numba does not contract them into a fused
  multiply-add without ``fastmath``), then the bias, then the clamp: the numpy form's order.
  Taps that fall on padding are skipped, as LiteRT's kernels skip them (the numpy form adds
  ``0 * w``, the same value unless a weight is infinite or NaN).
- Integer tap sums are exact in the accumulator dtype the kernel chose (prepare proved the
  bound), so their order does not matter.
- :func:`requantize_value` is ``Requantizer._call_int`` for one value: the same int64
  operations, per-channel parameters expanded to vectors (``Requantizer.loop_params``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_OPTS = dict(cache=True, nogil=True, boundscheck=False)

_TWO31 = 2147483648


@nb.njit(inline="always", **_OPTS)
def _wrap32(a):
    return ((a + _TWO31) & 0xFFFFFFFF) - _TWO31


@nb.njit(inline="always", **_OPTS)
def _clamp(v, lo, hi):
    """``min(max(v, lo), hi)`` as TFLite's activation clamp computes it (NaN kept)."""
    if v < lo:
        v = lo
    if v > hi:
        v = hi
    return v


@nb.njit(inline="always", **_OPTS)
def requantize_value(a, off, left, mul, fix, add, total, flags, zp, lo, hi):
    """``a`` (int64) of one channel through that channel's requantizer parameters (scalars:
    numba would count references on every access to a tuple of arrays in an inner loop):
    offset, wrap, left shift, rounding high multiply, the GEMMLOWP tie fix, shift, zero point
    and clamp. ``flags``: bit 0 wrap_acc (C++'s int32 accumulator), bit 1 a left shift (then
    wrap as int32), bit 2 wrap_out (the C++ cast of a result beyond int32)."""
    a = a + off
    if flags & 1:
        a = _wrap32(a)
    if flags & 2:
        a = _wrap32(a << left)
    a = a * mul
    if fix and a < -1073741824:
        a -= _TWO31
    a = (a + add) >> total
    if flags & 4:
        a = _wrap32(a)
    a += zp
    a = _clamp(a, lo, hi)
    return a


@nb.njit(inline="always", **_OPTS)
def requantize_value_float(t, a, b, thr, step, span, lo):
    """``Requantizer._call_float`` for one accumulator ``t`` (float64, an exact integer) of one
    channel: ``t * a + b`` (exact: prepare bounded the numerator below 2**52), minus ``step``
    below ``thr`` (GEMMLOWP's ties; ``thr`` is -inf otherwise), clamped to ``[0, span]``,
    truncated (the floor of a non-negative value), plus ``lo``."""
    t = t * a
    t = t + b
    if t < thr:
        t -= step
    if t < 0.0:
        t = 0.0
    if t > span:
        t = span
    return np.int64(t) + lo


@nb.njit(**_OPTS)
def requantize_rows_float(acc, fq, out):
    """:func:`requantize_rows` by the float64 form (``Requantizer.loop_params_float``): ~1.4x
    faster than the int64 one where prepare proved it exact."""
    a, b, thr, step, span, lo = fq
    rows, ch = acc.shape
    for m in range(rows):
        for c in range(ch):
            out[m, c] = requantize_value_float(np.float64(acc[m, c]), a[c], b[c], thr[c],
                                               step[c], span, lo)


@nb.njit(**_OPTS)
def requantize_rows(acc, rq, out):
    """``out[m, c] = requantize(acc[m, c])`` for a 2-D ``acc`` of exact integers (float32,
    float64 or int64) with channels along the last axis; ``rq``:
    ``Requantizer.loop_params``."""
    off, left, mul, fix, add, total, flags, zp, lo, hi = rq
    rows, ch = acc.shape
    for m in range(rows):
        for c in range(ch):
            out[m, c] = requantize_value(np.int64(acc[m, c]), off[c], left[c], mul[c], fix[c],
                                         add[c], total[c], flags, zp, lo, hi)


@nb.njit(**_OPTS)
def bias_clamp_rows(out, bias, has_bias, lo, hi):
    """In place: ``out[m, c] = clamp(out[m, c] + bias[c], lo, hi)`` (float32; the clamp as
    ``max`` then ``min``, NaN kept)."""
    rows, ch = out.shape
    for m in range(rows):
        for c in range(ch):
            v = out[m, c]
            if has_bias:
                v = v + bias[c]
            v = _clamp(v, lo, hi)
            out[m, c] = v


# -- depthwise convolution --------------------------------------------------------------------
# (Arrays are indexed element by element in the loops: a sliced row would be a new array
# whose reference count numba updates on every pixel.)
@nb.njit(inline="always", **_OPTS)
def _dw_pixel_sums(x, zx, w, n, y0, x0, dh, dw, mult, zero, acc):
    """The tap sums ``(x - zx) * w`` of one output pixel into ``acc[0:OC]``, padding skipped,
    taps in row-major order, in the dtype of ``zero`` / ``zx`` / ``w`` (float32 with ``zx`` 0
    for float kernels: ``x - 0`` is ``x``, so the same values as ``x * w``)."""
    _, h, wd, _ = x.shape
    kh, kw, oc = w.shape
    for c in range(oc):
        acc[c] = zero
    for i in range(kh):
        iy = y0 + i * dh
        if iy < 0 or iy >= h:
            continue
        for j in range(kw):
            ix = x0 + j * dw
            if ix < 0 or ix >= wd:
                continue
            if mult == 1:
                for c in range(oc):
                    acc[c] += (x[n, iy, ix, c] - zx) * w[i, j, c]
            else:  # output channel c reads input channel c // mult
                for c in range(oc):
                    acc[c] += (x[n, iy, ix, c // mult] - zx) * w[i, j, c]


@nb.njit(**_OPTS)
def depthwise_float(x, w, bias, has_bias, sh, sw, dh, dw, pt, pl, mult, lo, hi, out):
    """DEPTHWISE_CONV_2D, float32: ``x [N, H, W, C]`` (unpadded), ``w [KH, KW, OC]``,
    ``out [N, OH, OW, OC]``; pads ``pt`` / ``pl`` before the first row / column; the bias (if
    ``has_bias``) then the clamp to ``[lo, hi]`` (the fused activation's range)."""
    acc = np.empty(out.shape[3], np.float32)
    n_, h, wd, _ = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[0], w.shape[1]
    three = kh == 3 and kw == 3 and mult == 1
    for n in range(n_):
        for y in range(oh):
            y0 = y * sh - pt
            y1, y2 = y0 + dh, y0 + 2 * dh
            rows_in = y0 >= 0 and y0 + (kh - 1) * dh < h
            xo = 0
            while xo < ow:
                x0 = xo * sw - pl
                x1, x2 = x0 + dw, x0 + 2 * dw
                if three and rows_in and x0 >= 0 and x2 < wd:
                    # 3x3 fully inside: the sums of a channel kept in registers, two output
                    # pixels at a time when the next one is inside too (each weight loaded
                    # once for both)
                    if xo + 1 < ow and x2 + sw < wd:
                        u0, u1, u2 = x0 + sw, x1 + sw, x2 + sw
                        for c in range(oc):
                            v0, v1, v2 = w[0, 0, c], w[0, 1, c], w[0, 2, c]
                            v3, v4, v5 = w[1, 0, c], w[1, 1, c], w[1, 2, c]
                            v6, v7, v8 = w[2, 0, c], w[2, 1, c], w[2, 2, c]
                            s = np.float32(0) + x[n, y0, x0, c] * v0
                            t = np.float32(0) + x[n, y0, u0, c] * v0
                            s += x[n, y0, x1, c] * v1
                            t += x[n, y0, u1, c] * v1
                            s += x[n, y0, x2, c] * v2
                            t += x[n, y0, u2, c] * v2
                            s += x[n, y1, x0, c] * v3
                            t += x[n, y1, u0, c] * v3
                            s += x[n, y1, x1, c] * v4
                            t += x[n, y1, u1, c] * v4
                            s += x[n, y1, x2, c] * v5
                            t += x[n, y1, u2, c] * v5
                            s += x[n, y2, x0, c] * v6
                            t += x[n, y2, u0, c] * v6
                            s += x[n, y2, x1, c] * v7
                            t += x[n, y2, u1, c] * v7
                            s += x[n, y2, x2, c] * v8
                            t += x[n, y2, u2, c] * v8
                            if has_bias:
                                s += bias[c]
                                t += bias[c]
                            s = _clamp(s, lo, hi)
                            t = _clamp(t, lo, hi)
                            out[n, y, xo, c] = s
                            out[n, y, xo + 1, c] = t
                        xo += 2
                        continue
                    for c in range(oc):
                        s = np.float32(0) + x[n, y0, x0, c] * w[0, 0, c]
                        s += x[n, y0, x1, c] * w[0, 1, c]
                        s += x[n, y0, x2, c] * w[0, 2, c]
                        s += x[n, y1, x0, c] * w[1, 0, c]
                        s += x[n, y1, x1, c] * w[1, 1, c]
                        s += x[n, y1, x2, c] * w[1, 2, c]
                        s += x[n, y2, x0, c] * w[2, 0, c]
                        s += x[n, y2, x1, c] * w[2, 1, c]
                        s += x[n, y2, x2, c] * w[2, 2, c]
                        if has_bias:
                            s += bias[c]
                        s = _clamp(s, lo, hi)
                        out[n, y, xo, c] = s
                else:
                    _dw_pixel_sums(x, np.float32(0), w, n, y0, x0, dh, dw, mult,
                                   np.float32(0), acc)
                    for c in range(oc):
                        s = acc[c]
                        if has_bias:
                            s += bias[c]
                        s = _clamp(s, lo, hi)
                        out[n, y, xo, c] = s
                xo += 1


@nb.njit(inline="always", **_OPTS)
def _dw_quant_3x3(x, n, ya, yb, yc, xa, xb, xc, zxa, w, acc, base, oc):
    """Integer 3x3 tap sums of one interior pixel (rows ya..yc, columns xa..xc) into
    ``acc[base:base + oc]``."""
    for c in range(oc):
        acc[base + c] = ((x[n, ya, xa, c] - zxa) * w[0, 0, c]
                         + (x[n, ya, xb, c] - zxa) * w[0, 1, c]
                         + (x[n, ya, xc, c] - zxa) * w[0, 2, c]
                         + (x[n, yb, xa, c] - zxa) * w[1, 0, c]
                         + (x[n, yb, xb, c] - zxa) * w[1, 1, c]
                         + (x[n, yb, xc, c] - zxa) * w[1, 2, c]
                         + (x[n, yc, xa, c] - zxa) * w[2, 0, c]
                         + (x[n, yc, xb, c] - zxa) * w[2, 1, c]
                         + (x[n, yc, xc, c] - zxa) * w[2, 2, c])


@nb.njit(**_OPTS)
def depthwise_quant(x, zx, w, bias, has_bias, sh, sw, dh, dw, pt, pl, mult, acc, rq, fq,
                    use_float, out):
    """Integer DEPTHWISE_CONV_2D: ``x [N, H, W, C]`` raw integers, ``w [KH, KW, OC]`` (filter
    zero point already subtracted) and ``zx`` in the accumulator dtype, ``acc [2 * OC]`` a
    scratch of that dtype (float32 when prepare proved every tap sum an integer below 2**24,
    exact in any order and 16 lanes wide, else int32 or int64), ``bias`` int64 (run-time bias; a
    constant one is in ``rq``'s offset). Each pixel's sums are requantized into ``out`` (by
    the float64 form ``fq`` when ``use_float``); 3x3 interior pixels go two at a time."""
    off, left, mul, fix, add, total, flags, zp, lo, hi = rq
    fa, fb, fthr, fstep, fspan, flo = fq
    n_, h, wd, _ = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[0], w.shape[1]
    zxa = zx  # the zero point, given in the accumulator dtype
    zero = zx - zx  # 0 in that dtype (not from the scratch: it may hold NaN bits)
    three = kh == 3 and kw == 3 and mult == 1
    for n in range(n_):
        for y in range(oh):
            y0 = y * sh - pt
            y1, y2 = y0 + dh, y0 + 2 * dh
            rows_in = y0 >= 0 and y0 + (kh - 1) * dh < h
            xo = 0
            while xo < ow:
                x0 = xo * sw - pl
                x1, x2 = x0 + dw, x0 + 2 * dw
                pixels = 1
                if three and rows_in and x0 >= 0 and x2 < wd:
                    _dw_quant_3x3(x, n, y0, y1, y2, x0, x1, x2, zxa, w, acc, 0, oc)
                    if xo + 1 < ow and x2 + sw < wd:
                        _dw_quant_3x3(x, n, y0, y1, y2, x0 + sw, x1 + sw, x2 + sw, zxa, w, acc,
                                      oc, oc)
                        pixels = 2
                else:
                    _dw_pixel_sums(x, zxa, w, n, y0, x0, dh, dw, mult, zero, acc)
                for p in range(pixels):
                    if use_float:
                        for c in range(oc):
                            out[n, y, xo + p, c] = requantize_value_float(
                                np.float64(acc[p * oc + c]), fa[c], fb[c], fthr[c], fstep[c],
                                fspan, flo)
                        continue
                    for c in range(oc):
                        a = np.int64(acc[p * oc + c])
                        if has_bias:
                            a += bias[c]
                        out[n, y, xo + p, c] = requantize_value(a, off[c], left[c], mul[c],
                                                                fix[c], add[c], total[c],
                                                                flags, zp, lo, hi)
                xo += pixels


# -- 8-bit binary ops ------------------------------------------------------------------------------
@nb.njit(**_OPTS)
def gather_byte_pairs(x, y, table, n_vec, vec_offset, out):
    """``out[i] = table[block + (x byte << 8 | y byte)]`` over flat same-size 8-bit ``x`` and
    ``y`` (viewed as uint8): the first ``n_vec`` elements read the 64K block at
    ``vec_offset`` (a vector loop's results), the rest the block at 0 (the scalar path), as
    ``_qelementwise.binary_fn``'s gather does in three numpy passes."""
    for i in range(x.size):
        idx = (np.int64(x[i]) << 8) | np.int64(y[i])
        if i < n_vec:
            idx += vec_offset
        out[i] = table[idx]


# -- 8-bit SOFTMAX ---------------------------------------------------------------------------------
@nb.njit(**_OPTS)
def softmax_8bit(x, table, so, zo, uint8_out, lo, hi, out):
    """``_qelementwise.prepare_softmax_8bit`` over the rows of the 2-D 8-bit ``x`` into the
    2-D ``out``: per row the float32 entries ``e = table[255 - max + x]`` summed in order in
    float32, ``inv = 1 / (sum * so)`` and ``p = e * inv`` in float32, then ``p + 0.5``
    truncated (``uint8_out``) or ``p`` rounded half away from zero plus ``zo``, as C++'s
    int32 cast gives it (saturating; NaN -> INT32_MIN), clamped to ``[lo, hi]``."""
    rows, n = x.shape
    half = np.float32(0.5)
    for r in range(rows):
        mx = np.int64(x[r, 0])
        for i in range(1, n):
            mx = max(mx, np.int64(x[r, i]))
        total = np.float32(0.0)
        for i in range(n):
            total += table[255 - mx + np.int64(x[r, i])]
        inv = np.float32(1.0) / (total * so)
        for i in range(n):
            p = table[255 - mx + np.int64(x[r, i])] * inv
            if uint8_out:
                t = np.trunc(p + half)
                add = 0
            else:
                t = np.trunc(p)
                if abs(p - t) >= half:
                    t += np.float32(1.0) if p > 0 else np.float32(-1.0)
                add = zo
            if np.isnan(t):
                q = np.int64(-_TWO31)
            elif t >= np.float32(2147483647.0):
                q = np.int64(_TWO31 - 1)
            elif t <= np.float32(-2147483648.0):
                q = np.int64(-_TWO31)
            else:
                q = np.int64(t)
            q += add
            out[r, i] = min(max(q, lo), hi)


# -- integer sums over the middle axis ------------------------------------------------------------
@nb.njit(**_OPTS)
def middle_sums(v, out):
    """``out[a, c] = sum_b v[a, b, c]`` for an 8-bit ``v [A, B, C]`` into int32 (the caller
    bounds ``B * 256`` below 2**31): exact, channels in the inner loop (vectorized)."""
    na, nb_, nc = v.shape
    for a in range(na):
        for c in range(nc):
            out[a, c] = 0
        for b in range(nb_):
            for c in range(nc):
                out[a, c] += np.int32(v[a, b, c])
