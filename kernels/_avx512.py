"""An exact int8 GEMM on AVX-512 VNNI (``vpdpbusd``), with the requantization fused: the
integer CONV_2D / FULLY_CONNECTED path on CPUs that have it.

``vpdpbusd`` multiplies 64 unsigned bytes by 64 signed bytes and adds each group of four
products to one of 16 int32 lanes, exactly (no saturation): 64 multiply-adds per instruction,
four times what a float32 FMA does. Its unsigned operand is the activation with its sign bit
flipped (``x ^ 0x80 == x + 128`` as uint8), the signed one the int8 weight, so each lane
accumulates ``sum((x + 128) * w)``; the fused loop subtracts ``128 * sum(w)`` per channel
before the kernel's own requantization (zero point, bias, multiplier, clamp). Integer sums
are exact in any order, so results are bit-identical to the BLAS path and to LiteRT whenever
prepare proved the accumulator fits in int32 (``|acc| <= 255 * max_n sum_k |w[n, k]|``).

Layout. The weights ``w [N, K]`` are packed once, at prepare, into panels of up to 64 output
channels (``nv`` vectors of 16): for every group of four ``k``, ``nv`` 64-byte vectors whose
lane ``j`` holds ``w[n0 + 16 v + j, 4 kk : 4 kk + 4]`` (zero beyond ``K`` or ``N``). The
micro-kernel computes 6 rows x ``16 nv`` channels in ``6 nv`` zmm accumulators: per group of
four ``k``, ``nv`` vector loads of weights, and for each row one 4-byte load of activations
broadcast to all lanes. Rows past the end repeat the last row (their results are dropped).
Activation rows are read four bytes at a time up to ``4 ceil(K / 4)``: the caller pads rows
whose length is not a multiple of four.

The micro-kernel is LLVM IR (llvmlite) calling ``llvm.x86.avx512.vpdpbusd.512``, inlined
into numba-compiled drivers; ``FEATURES`` holds what the host CPU has (a CPU without the
instruction could not even compile it), and ``_jit.int8_gemm`` returns None without VNNI.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _loops
from ._loops import requantize_value

_OPTS = dict(cache=True, nogil=True, boundscheck=False)

#: Rows per micro-kernel call and channels per weight panel.
MR, PANEL = 6, 64


def _host_features() -> dict:
    """``{"avx512": bool, "vnni": bool}`` from llvmlite's view of the host CPU (what numba
    compiles for): AVX-512 F/BW/VL for the float32 GEMM, and VNNI too for the int8 one."""
    try:
        import llvmlite.binding as llb
        feats = llb.get_host_cpu_features()
    except Exception:  # noqa: BLE001 - no feature list: no AVX-512 paths
        return {"avx512": False, "vnni": False}
    base = all(feats.get(f, False) for f in ("avx512f", "avx512bw", "avx512vl"))
    return {"avx512": base, "vnni": base and bool(feats.get("avx512vnni", False))}


FEATURES = _host_features()


def _ptr(builder, addr, ty):
    return builder.inttoptr(addr, ty.as_pointer())


def _splat(builder, value, ty):
    """``value`` in all 16 lanes of the vector type ``ty``."""
    i32 = ir.IntType(32)
    vec = builder.insert_element(ir.Constant(ty, ir.Undefined), value, ir.Constant(i32, 0))
    return builder.shuffle_vector(vec, ir.Constant(ty, ir.Undefined),
                                  ir.Constant(ir.VectorType(i32, 16), [0] * 16))


def _masked(builder, what: str, ty):
    """The declaration of LLVM's ``llvm.masked.store`` / ``llvm.masked.load`` for the 16-lane
    vector type ``ty`` (byte- or dword-masked moves on AVX-512)."""
    i32, m16 = ir.IntType(32), ir.VectorType(ir.IntType(1), 16)
    name = {ir.IntType(8): "v16i8", ir.FloatType(): "v16f32"}[ty.element]
    if what == "store":
        fnty = ir.FunctionType(ir.VoidType(), [ty, ty.as_pointer(), i32, m16])
    else:
        fnty = ir.FunctionType(ty, [ty.as_pointer(), i32, m16, ty])
    return cgutils.get_or_insert_function(builder.module, fnty,
                                          f"llvm.masked.{what}.{name}.p0")


def _emit_tile_sums(builder, nv: int, a, lda, rows, b, steps, float32: bool = False) -> list:
    """IR of a micro-kernel's sums: ``MR x nv`` 16-lane vectors, row ``r`` lane ``j`` of vector
    ``v`` holding, for int8, ``sum_k (a[r, k] + 128) * w[16 v + j, k]`` (``vpdpbusd`` on groups
    of four ``k``), for float32 ``sum_k a[r, k] * w[16 v + j, k]`` (``k`` in order, one fused
    multiply-add per step). Each of the ``steps`` reads 4 bytes of every row (``lda`` bytes
    apart) and one 64-byte vector per ``v`` of the packed panel ``b``."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    elem = ir.FloatType() if float32 else i32
    vec = ir.VectorType(elem, 16)
    if float32:
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             "llvm.fma.v16f32")

        def step(acc, xv, wv):
            return builder.call(fma, [xv, wv, acc])
    else:
        dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                             "llvm.x86.avx512.vpdpbusd.512")

        def step(acc, xv, wv):
            return builder.call(dot, [acc, xv, wv])
    # (Accumulators as stack slots: LLVM promotes them to registers.)
    zero = ir.Constant(vec, [0.0] * 16 if float32 else None)
    accs = [[cgutils.alloca_once_value(builder, zero) for _ in range(nv)] for _ in range(MR)]
    last = builder.sub(rows, ir.Constant(i64, 1))
    row_addr = []
    for r in range(MR):  # rows past the end repeat the last one
        rr = ir.Constant(i64, r)
        rr = builder.select(builder.icmp_signed("<", rr, rows), rr, last)
        row_addr.append(builder.add(a, builder.mul(rr, lda)))
    flip = ir.Constant(i32, 0x80808080 - 2**32)  # x + 128 as uint8, four at a time
    with cgutils.for_range(builder, steps) as loop:
        kk = loop.index
        base = builder.add(b, builder.mul(kk, ir.Constant(i64, nv * 64)))
        wv = [builder.load(_ptr(builder, builder.add(base, ir.Constant(i64, 64 * v)), vec),
                           align=1) for v in range(nv)]
        col = builder.mul(kk, ir.Constant(i64, 4))
        for r in range(MR):
            x = builder.load(_ptr(builder, builder.add(row_addr[r], col), elem), align=1)
            xv = _splat(builder, x if float32 else builder.xor(x, flip), vec)
            for v in range(nv):
                builder.store(step(builder.load(accs[r][v]), xv, wv[v]), accs[r][v])
    return [[builder.load(accs[r][v]) for v in range(nv)] for r in range(MR)]


def _emit_requantize(builder, acc, a, b, thr, step, span, lo, ties: bool = True):
    """IR of ``requantize_value_float`` on 16 lanes: the int32 sums ``acc`` (exact integers)
    as float64, ``* a + b`` (two roundings, both exact), ``- step`` where ``< thr`` (only with
    ``ties``), clamped to ``[0, span]``, truncated, ``+ lo``, as int8 (``<16 x i8>``)."""
    i32 = ir.IntType(32)
    d16 = ir.VectorType(ir.DoubleType(), 16)
    zero = ir.Constant(d16, [0.0] * 16)
    t = builder.fadd(builder.fmul(builder.sitofp(acc, d16), a), b)
    if ties:
        t = builder.select(builder.fcmp_ordered("<", t, thr), builder.fsub(t, step), t)
    t = builder.select(builder.fcmp_ordered("<", t, zero), zero, t)
    t = builder.select(builder.fcmp_ordered(">", t, span), span, t)
    t = builder.add(builder.fptosi(t, ir.VectorType(i32, 16)), lo)
    return builder.trunc(t, ir.VectorType(ir.IntType(8), 16))


def _emit_store(builder, value, addr, full, mask) -> None:
    """Store 16 lanes at ``addr``: all of them where ``full``, else the lanes of ``mask``
    (a masked move: lanes past the last channel are not written)."""
    ptr = _ptr(builder, addr, value.type)
    align = ir.Constant(ir.IntType(32), 1)  # (no alignment promised)
    with builder.if_else(full, likely=True) as (whole, part):
        with whole:
            builder.store(value, ptr, align=1)
        with part:
            builder.call(_masked(builder, "store", value.type), [value, ptr, align, mask])


def _micro_kernel(nv: int):
    """The 6 x (16 nv) micro-kernel as a numba intrinsic:
    ``kernel(a, lda, rows, b, k4, c)`` with addresses ``a`` (int8 activation rows, ``lda``
    bytes apart; ``rows`` of them valid), ``b`` (one packed panel), ``c`` (an int32 tile of 6
    rows of ``16 nv``), ``k4`` groups of four ``k``."""

    @intrinsic
    def kernel(typingctx, a, lda, rows, b, k4, c):
        sig = types.void(*[types.intp] * 6)

        def codegen(context, builder, signature, args):
            a, lda, rows, b, k4, c = args
            v16 = ir.VectorType(ir.IntType(32), 16)
            sums = _emit_tile_sums(builder, nv, a, lda, rows, b, k4)
            for r in range(MR):
                for v in range(nv):
                    addr = builder.add(c, ir.Constant(ir.IntType(64), 64 * (r * nv + v)))
                    builder.store(sums[r][v], _ptr(builder, addr, v16), align=1)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


def _fused_kernel(nv: int, ties: bool):
    """The micro-kernel with the float64 requantization of ``requantize_value_float`` applied
    to its registers and int8 results stored straight into the output:
    ``kernel(a, lda, rows, b, k4, out, ldo, cols, pre, fa, fb, thr, step, span, lo)`` with
    ``out`` the address of the tile's first output byte (rows ``ldo`` bytes apart; ``rows``
    rows and ``cols`` channels valid), ``pre`` (int32) and ``fa, fb, thr, step`` (float64)
    the addresses of the panel's first channel in per-channel vectors padded to whole
    panels. Each lane computes, as the scalar form does: ``t = float64(acc + pre)``,
    ``t = t * fa + fb`` (two roundings, both exact), ``t - step`` where ``t < thr``, clamp to
    ``[0, span]``, truncate, ``+ lo``."""

    @intrinsic
    def kernel(typingctx, a, lda, rows, b, k4, out, ldo, cols, pre, fa, fb, thr, step, span,
               lo):
        sig = types.void(*[types.intp] * 13, types.float64, types.intp)

        def codegen(context, builder, signature, args):
            a, lda, rows, b, k4, out, ldo, cols, pre, fa, fb, thr, step, span, lo = args
            i32, i64 = ir.IntType(32), ir.IntType(64)
            f64 = ir.DoubleType()
            v16, d16 = ir.VectorType(i32, 16), ir.VectorType(f64, 16)
            sums = _emit_tile_sums(builder, nv, a, lda, rows, b, k4)
            span_v = _splat(builder, span, d16)
            lo_v = _splat(builder, builder.trunc(lo, i32), v16)
            lanes = ir.Constant(v16, list(range(16)))
            params = []
            for v in range(nv):
                def load(addr, ty, size, v=v):
                    at = builder.add(addr, ir.Constant(i64, 16 * size * v))
                    return builder.load(_ptr(builder, at, ty), align=1)
                valid = builder.trunc(builder.sub(cols, ir.Constant(i64, 16 * v)), i32)
                params.append((load(pre, v16, 4), load(fa, d16, 8), load(fb, d16, 8),
                               load(thr, d16, 8), load(step, d16, 8),
                               builder.icmp_signed("<", lanes, _splat(builder, valid, v16)),
                               builder.icmp_signed(">=", valid, ir.Constant(i32, 16))))
            for r in range(MR):
                live = builder.icmp_signed("<", ir.Constant(i64, r), rows)
                with builder.if_then(live, likely=True):
                    row = builder.add(out, builder.mul(ir.Constant(i64, r), ldo))
                    for v in range(nv):
                        pre_v, a_v, b_v, thr_v, step_v, mask, full = params[v]
                        # (without GEMMLOWP's ties thr is -inf everywhere: step skipped)
                        q = _emit_requantize(builder, builder.add(sums[r][v], pre_v), a_v, b_v,
                                             thr_v, step_v, span_v, lo_v, ties)
                        _emit_store(builder, q, builder.add(row, ir.Constant(i64, 16 * v)),
                                    full, mask)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


def _float_kernel(nv: int):
    """The float32 micro-kernel with the bias and the activation clamp fused:
    ``kernel(a, lda, rows, b, k, out, ldo, cols, bias, lo, hi)``: addresses ``a`` (float32
    rows, ``lda`` bytes apart), ``b`` (a packed panel), ``out`` (the tile's first output,
    rows ``ldo`` bytes apart; ``rows`` x ``cols`` valid), ``bias`` (the panel's first channel
    of a bias padded to whole panels); each lane ``min(max(sum + bias, lo), hi)`` as
    ``_loops._clamp`` (NaN kept)."""

    @intrinsic
    def kernel(typingctx, a, lda, rows, b, k, out, ldo, cols, bias, lo, hi):
        sig = types.void(*[types.intp] * 9, types.float32, types.float32)

        def codegen(context, builder, signature, args):
            a, lda, rows, b, k, out, ldo, cols, bias, lo, hi = args
            i32, i64, f32 = ir.IntType(32), ir.IntType(64), ir.FloatType()
            v16, iv16 = ir.VectorType(f32, 16), ir.VectorType(i32, 16)
            sums = _emit_tile_sums(builder, nv, a, lda, rows, b, k, float32=True)
            lo_v, hi_v = _splat(builder, lo, v16), _splat(builder, hi, v16)
            lanes = ir.Constant(iv16, list(range(16)))
            params = []
            for v in range(nv):
                at = builder.add(bias, ir.Constant(i64, 64 * v))
                valid = builder.trunc(builder.sub(cols, ir.Constant(i64, 16 * v)), i32)
                params.append((builder.load(_ptr(builder, at, v16), align=1),
                               builder.icmp_signed("<", lanes, _splat(builder, valid, iv16)),
                               builder.icmp_signed(">=", valid, ir.Constant(i32, 16))))
            for r in range(MR):
                live = builder.icmp_signed("<", ir.Constant(i64, r), rows)
                with builder.if_then(live, likely=True):
                    row = builder.add(out, builder.mul(ir.Constant(i64, r), ldo))
                    for v in range(nv):
                        bias_v, mask, full = params[v]
                        t = builder.fadd(sums[r][v], bias_v)
                        t = builder.select(builder.fcmp_ordered("<", t, lo_v), lo_v, t)
                        t = builder.select(builder.fcmp_ordered(">", t, hi_v), hi_v, t)
                        _emit_store(builder, t, builder.add(row, ir.Constant(i64, 64 * v)),
                                    full, mask)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


_g1, _g2, _g3, _g4 = (_float_kernel(nv) for nv in (1, 2, 3, 4))


@nb.njit(**_OPTS)
def gemm_bias_clamp(a, rows, lda, packed, offsets, widths, k, n, bias, lo, hi, out):
    """``out[m, :n] = clamp(a[m] @ w.T + bias, lo, hi)`` for ``rows`` float32 rows of ``a``
    (``lda`` elements apart) into the C-contiguous float32 ``out``; ``bias`` float32 padded to
    whole panels (zeros for none)."""
    aa, pa, oa, ba = a.ctypes.data, packed.ctypes.data, out.ctypes.data, bias.ctypes.data
    ldab, ldo = 4 * lda, 4 * out.shape[1]
    for p in range(offsets.shape[0]):
        nv = widths[p]
        n0 = p * PANEL
        cols = min(nv * 16, n - n0)
        b, bb = pa + offsets[p], ba + 4 * n0
        for m0 in range(0, rows, MR):
            mr = min(MR, rows - m0)
            ar, o = aa + m0 * ldab, oa + m0 * ldo + 4 * n0
            if nv == 4:
                _g4(ar, ldab, mr, b, k, o, ldo, cols, bb, lo, hi)
            elif nv == 3:
                _g3(ar, ldab, mr, b, k, o, ldo, cols, bb, lo, hi)
            elif nv == 2:
                _g2(ar, ldab, mr, b, k, o, ldo, cols, bb, lo, hi)
            else:
                _g1(ar, ldab, mr, b, k, o, ldo, cols, bb, lo, hi)


_f1, _f2, _f3, _f4 = (_fused_kernel(nv, True) for nv in (1, 2, 3, 4))
_u1, _u2, _u3, _u4 = (_fused_kernel(nv, False) for nv in (1, 2, 3, 4))
_k1, _k2, _k3, _k4 = (_micro_kernel(nv) for nv in (1, 2, 3, 4))


@nb.njit(inline="always", **_OPTS)
def _tile(a, lda, rows, b, nv, k4, c):
    if nv == 4:
        _k4(a, lda, rows, b, k4, c)
    elif nv == 3:
        _k3(a, lda, rows, b, k4, c)
    elif nv == 2:
        _k2(a, lda, rows, b, k4, c)
    else:
        _k1(a, lda, rows, b, k4, c)


def padded(v, n: int, width: int, dtype, fill=0) -> np.ndarray:
    """``v`` (``n`` per-channel values, or a scalar) in a vector of ``width`` filled with
    ``fill`` past ``n``: the kernels load 16 channels at a time."""
    out = np.full(width, fill, dtype)
    out[:n] = v
    return out


class PackedWeights:
    """Constant weights ``w [N, K]`` (int8 or float32) packed for the micro-kernels (see the
    module docstring): 64-byte vectors of 16 channels holding ``group`` consecutive ``k`` each
    (4 int8, or 1 float32), ``k_steps`` of them per panel. int8 also keeps ``colsum``
    (``sum_k w[n, k]``, int64) for the ``+ 128`` correction and ``bound``."""

    def __init__(self, w: np.ndarray):
        w = np.asarray(w)
        if w.dtype not in (np.int8, np.float32) or w.ndim != 2:
            raise ValueError(f"PackedWeights takes int8 or float32 [N, K] weights, not "
                             f"{w.dtype} {list(w.shape)}")
        n, k = w.shape
        self.n, self.k = n, k
        group = 4 if w.dtype == np.int8 else 1
        self.k_steps = (k + group - 1) // group
        kp = self.k_steps * group
        parts, offsets, widths = [], [], []
        pos = 0
        for n0 in range(0, n, PANEL):
            nv = min(PANEL // 16, (n - n0 + 15) // 16)
            blk = np.zeros((nv * 16, kp), w.dtype)
            blk[:min(nv * 16, n - n0), :k] = w[n0:n0 + nv * 16]
            part = blk.reshape(nv, 16, self.k_steps, group).transpose(2, 0, 1, 3).reshape(-1)
            parts.append(part)
            offsets.append(pos * w.itemsize)  # bytes
            widths.append(nv)
            pos += part.size
        buf = np.zeros(pos + 64, w.dtype)  # 64-byte aligned start (cache lines)
        start = (-buf.ctypes.data) % 64 // w.itemsize
        self.packed = buf[start:start + pos]
        if pos:
            self.packed[:] = np.concatenate(parts)
        self.offsets = np.asarray(offsets, np.int64)
        self.widths = np.asarray(widths, np.int64)
        self.width = PANEL * len(widths)  # channels padded to whole panels
        if w.dtype == np.int8:
            self.colsum = w.astype(np.int64).sum(axis=1)
            #: The largest |accumulator| of the int8 micro-kernel: (x + 128) <= 255 times
            #: sum |w|.
            self.bound = 255 * int(np.abs(w.astype(np.int64)).sum(axis=1).max(initial=0))

    def padded(self, v, dtype, fill=0) -> np.ndarray:
        """The per-channel vector ``v`` (or a scalar) padded with ``fill`` to whole panels:
        the fused micro-kernel loads 16 channels at a time."""
        return padded(v, self.n, self.width, dtype, fill)



@nb.njit(**_OPTS)
def gemm_requantize_float(a, rows, lda, packed, offsets, widths, k4, n, pre, fa, fb, thr, step,
                          span, lo, ties, out):
    """``out[m, :n] = requantize(sum_k (a[m, k] + 128) * w[:, k] + pre)`` for ``rows`` int8
    rows of ``a`` (``lda`` elements apart; readable up to ``4 k4``) into the C-contiguous int8
    ``out``, by the float64 requantization (``Requantizer.loop_params_float``) in the
    micro-kernel's registers. ``pre`` (int32: the per-channel ``- 128 sum_k w``) and ``fa, fb,
    thr, step`` (float64) padded to whole panels (``PackedWeights.padded``); ``ties`` False
    when ``thr`` is -inf everywhere (no GEMMLOWP tie fix: kernels without that step)."""
    aa, pa, oa = a.ctypes.data, packed.ctypes.data, out.ctypes.data
    ldo = out.shape[1]
    prea, faa, fba = pre.ctypes.data, fa.ctypes.data, fb.ctypes.data
    tha, sta = thr.ctypes.data, step.ctypes.data
    for p in range(offsets.shape[0]):  # a panel's weights stay in cache for every row
        nv = widths[p]
        n0 = p * PANEL
        cols = min(nv * 16, n - n0)
        b = pa + offsets[p]
        pp, pa_, pb, pt, ps = prea + 4 * n0, faa + 8 * n0, fba + 8 * n0, tha + 8 * n0, \
            sta + 8 * n0
        for m0 in range(0, rows, MR):
            mr = min(MR, rows - m0)
            ar, o = aa + m0 * lda, oa + m0 * ldo + n0
            if not ties:
                if nv == 4:
                    _u4(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
                elif nv == 3:
                    _u3(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
                elif nv == 2:
                    _u2(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
                else:
                    _u1(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
            elif nv == 4:
                _f4(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
            elif nv == 3:
                _f3(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
            elif nv == 2:
                _f2(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)
            else:
                _f1(ar, lda, mr, b, k4, o, ldo, cols, pp, pa_, pb, pt, ps, span, lo)


@nb.njit(**_OPTS)
def gemm_requantize(a, rows, lda, packed, offsets, widths, k4, n, pre, rq, out, tile):
    """:func:`gemm_requantize_float` by the int64 requantization
    (``Requantizer.loop_params``)."""
    off, left, mul, fix, add, total, flags, zp, lo, hi = rq
    aa, pa, ta = a.ctypes.data, packed.ctypes.data, tile.ctypes.data
    for m0 in range(0, rows, MR):
        mr = min(MR, rows - m0)
        for p in range(offsets.shape[0]):
            nv = widths[p]
            _tile(aa + m0 * lda, lda, mr, pa + offsets[p], nv, k4, ta)
            n0 = p * PANEL
            w = nv * 16
            cols = min(w, n - n0)
            for r in range(mr):
                for j in range(cols):
                    c = n0 + j
                    out[m0 + r, c] = requantize_value(
                        tile[r * w + j] + pre[c], off[c], left[c], mul[c], fix[c], add[c],
                        total[c], flags, zp, lo, hi)


@nb.njit(**_OPTS)
def gemm_int32(a, rows, lda, packed, offsets, widths, k4, n, out, tile):
    """The raw accumulators: ``out[m, :n] = sum_k (a[m, k] + 128) * w[:, k]`` (int32)."""
    aa, pa, ta = a.ctypes.data, packed.ctypes.data, tile.ctypes.data
    for m0 in range(0, rows, MR):
        mr = min(MR, rows - m0)
        for p in range(offsets.shape[0]):
            nv = widths[p]
            _tile(aa + m0 * lda, lda, mr, pa + offsets[p], nv, k4, ta)
            n0 = p * PANEL
            w = nv * 16
            for r in range(mr):
                for j in range(min(w, n - n0)):
                    out[m0 + r, n0 + j] = tile[r * w + j]


# -- int8 depthwise ----------------------------------------------------------------------------
def _dw_int8_kernel(static_taps: int | None):
    """:func:`_dw_int8_run` with the tap loop unrolled for ``static_taps`` taps (LLVM then
    keeps the offsets in registers and schedules the loads: ~1.5x faster), or a loop."""

    @intrinsic
    def run(typingctx, x, step, npix, toff, taps, w, wstride, oc, out, pre, fa, fb, thr,
            fstep, span, lo):
        """An interior run of int8 DEPTHWISE_CONV_2D output pixels (every tap inside the image,
        depth multiplier 1), fused with the float64 requantization: for ``npix`` pixels (input
        address ``x + p * step`` of the first tap, output ``out + p * oc``), each vector of 16
        channels sums ``x * w`` over the ``taps`` byte offsets ``toff`` (int64) in int32 from
        ``pre`` (the ``- zx * sum_t w`` correction), then requantizes as
        ``requantize_value_float``. ``w``: int32 ``[taps, wstride]``; ``pre`` int32 and ``fa, fb,
        thr, fstep`` float64 padded to ``wstride`` (a multiple of 16)."""
        sig = types.void(*[types.intp] * 14, types.float64, types.intp)

        def codegen(context, builder, signature, args):
            x, step, npix, toff, taps, w, wstride, oc, out, pre, fa, fb, thr, fstep, span, lo = args
            i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
            f64 = ir.DoubleType()
            v16, d16 = ir.VectorType(i32, 16), ir.VectorType(f64, 16)
            b16 = ir.VectorType(i8, 16)
            masked_store = _masked(builder, "store", b16)
            masked_load = _masked(builder, "load", b16)
            span_v = _splat(builder, span, d16)
            lo_v = _splat(builder, builder.trunc(lo, i32), v16)
            lanes = ir.Constant(v16, list(range(16)))
            acc = cgutils.alloca_once(builder, v16)
            nvec = builder.udiv(builder.add(oc, ir.Constant(i64, 15)), ir.Constant(i64, 16))
            with cgutils.for_range(builder, npix) as pl:
                px = builder.add(x, builder.mul(pl.index, step))
                po = builder.add(out, builder.mul(pl.index, oc))
                with cgutils.for_range(builder, nvec) as vl:
                    c0 = builder.mul(vl.index, ir.Constant(i64, 16))
                    valid = builder.trunc(builder.sub(oc, c0), i32)
                    mask = builder.icmp_signed("<", lanes, _splat(builder, valid, v16))

                    def at(base, index, size):
                        return builder.add(base, builder.mul(index, ir.Constant(i64, size)))

                    builder.store(builder.load(_ptr(builder, at(pre, c0, 4), v16), align=1), acc)
                    def tap(index):
                        off = builder.load(_ptr(builder, at(toff, index, 8), i64), align=1)
                        src = _ptr(builder, builder.add(builder.add(px, off), c0), b16)
                        xv = builder.call(masked_load, [src, ir.Constant(i32, 1), mask,
                                                        ir.Constant(b16, [0] * 16)])
                        wv = builder.load(_ptr(builder, at(w, builder.add(
                            builder.mul(index, wstride), c0), 4), v16), align=1)
                        builder.store(builder.add(builder.load(acc),
                                                  builder.mul(builder.sext(xv, v16), wv)), acc)

                    if static_taps:
                        for ti in range(static_taps):
                            tap(ir.Constant(i64, ti))
                    else:
                        with cgutils.for_range(builder, taps) as tl:
                            tap(tl.index)
                    def param(addr):
                        return builder.load(_ptr(builder, at(addr, c0, 8), d16), align=1)

                    qv = _emit_requantize(builder, builder.load(acc), param(fa), param(fb),
                                          param(thr), param(fstep), span_v, lo_v)
                    # (byte-masked loads and stores: AVX-512BW, as fast as plain ones; lanes past
                    # the last channel neither read nor write)
                    builder.call(masked_store, [qv, _ptr(builder, builder.add(po, c0), b16),
                                                ir.Constant(i32, 1), mask])
            return context.get_dummy_value()

        return sig, codegen

    return run


_dw_int8_run = _dw_int8_kernel(None)
_dw_int8_run9 = _dw_int8_kernel(9)
_dw_int8_run25 = _dw_int8_kernel(25)


@nb.njit(**_OPTS)
def depthwise_int8(x, zx, w, acc, wt, toff, pre, fa, fb, thr, fstep, span, lo, sh, sw, dh, dw,
                   pt, pl, out):
    """int8 DEPTHWISE_CONV_2D (depth multiplier 1, constant filter and bias, float64
    requantization proven exact): rows of interior pixels through :func:`_dw_int8_run`, the
    pixels whose window meets the padding through ``_loops._dw_pixel_sums`` (padding skipped,
    ``w`` / ``zx`` / ``acc`` in the loops' accumulator dtype) and the same requantization.
    ``wt`` int32 ``[taps, OC']`` and ``toff`` (the taps' byte offsets) as the run takes them;
    ``pre, fa, fb, thr, fstep`` padded to ``OC'``."""
    n_, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[0], w.shape[1]
    xaddr, oaddr = x.ctypes.data, out.ctypes.data
    taps, wstride = wt.shape[0], wt.shape[1]
    ta, wa = toff.ctypes.data, wt.ctypes.data
    pa, faa, fba, tha, sta = pre.ctypes.data, fa.ctypes.data, fb.ctypes.data, \
        thr.ctypes.data, fstep.ctypes.data
    # output columns whose window lies inside the image's columns: [xa, xb)
    xa = (pl + sw - 1) // sw
    xb = min(ow, (wd - 1 - (kw - 1) * dw + pl) // sw + 1)
    if xb < xa:
        xb = xa
    zero = zx - zx
    for n in range(n_):
        for y in range(oh):
            y0 = y * sh - pt
            inside = y0 >= 0 and y0 + (kh - 1) * dh < h and xb > xa
            if inside:
                src = xaddr + ((n * h + y0) * wd + xa * sw - pl) * c
                dst = oaddr + ((n * oh + y) * ow + xa) * oc
                if taps == 9:
                    _dw_int8_run9(src, sw * c, xb - xa, ta, taps, wa, wstride, oc, dst, pa,
                                  faa, fba, tha, sta, span, lo)
                elif taps == 25:
                    _dw_int8_run25(src, sw * c, xb - xa, ta, taps, wa, wstride, oc, dst, pa,
                                   faa, fba, tha, sta, span, lo)
                else:
                    _dw_int8_run(src, sw * c, xb - xa, ta, taps, wa, wstride, oc, dst, pa,
                                 faa, fba, tha, sta, span, lo)
            for xo in range(ow):
                if inside and xa <= xo < xb:
                    continue
                _loops._dw_pixel_sums(x, zx, w, n, y0, xo * sw - pl, dh, dw, 1, zero, acc)
                for ch in range(oc):
                    out[n, y, xo, ch] = _loops.requantize_value_float(
                        np.float64(acc[ch]), fa[ch], fb[ch], thr[ch], fstep[ch], span, lo)
