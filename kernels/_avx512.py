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


def _emit_requantize_float64(builder, acc, a, b, thr, step, span, lo, ties: bool = True):
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


def _emit_requantize(builder, acc, p32, load64, span, lo, ties: bool = True):
    """IR of the exact requantization of 16 int32 sums ``acc`` (``pre`` included) to int8,
    in float32 where that provably gives the float64 form's result, else in float64.

    ``p32``: the float32 vectors of :class:`RequantBlock` (``fa, fb, ea, eb, thr, step``);
    ``load64()``: the float64 ones (``fa, fb, thr, step``), loaded only when needed; ``span``
    a float64 scalar, ``lo`` int32 lanes. The float32 form computes ``t' = fma(A, fa', fb')`` (``A``
    the sums as float32) and a per-lane bound ``e = |A| * ea + eb`` of ``|t' - t|`` (``t`` the
    exact value the float64 form computes, see :class:`RequantBlock`); with ``ties``, lanes
    below ``thr'`` subtract ``step`` (the bound covers that subtraction and ``thr``'s
    rounding, and a lane within ``e`` of ``thr'`` counts as undecided). Truncation after the
    clamp to ``[0, span]`` is the floor, and the floor of ``t'`` is that of ``t`` unless an
    integer lies within ``e`` of ``t'``: when any lane is undecided (about 1% of vectors) the
    whole vector takes the float64 form instead."""
    i1, i8, i16, i32 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32)
    f32 = ir.FloatType()
    f16 = ir.VectorType(f32, 16)
    b16 = ir.VectorType(i8, 16)
    module = builder.module

    def intrinsic1(name, x):
        fn = cgutils.get_or_insert_function(module, ir.FunctionType(f16, [f16]), name)
        return builder.call(fn, [x])

    fma = cgutils.get_or_insert_function(module, ir.FunctionType(f16, [f16] * 3),
                                         "llvm.fma.v16f32")
    fa, fb, ea, eb, thr, step = p32
    af = builder.sitofp(acc, f16)
    t = builder.call(fma, [af, fa, fb])
    err = builder.call(fma, [intrinsic1("llvm.fabs.v16f32", af), ea, eb])
    undecided = ir.Constant(ir.VectorType(i1, 16), [0] * 16)
    if ties:
        gap = intrinsic1("llvm.fabs.v16f32", builder.fsub(t, thr))
        undecided = builder.fcmp_ordered("<=", gap, err)
        t = builder.select(builder.fcmp_ordered("<", t, thr), builder.fsub(t, step), t)
    frac = intrinsic1("llvm.fabs.v16f32",
                      builder.fsub(t, intrinsic1("llvm.rint.v16f32", t)))
    undecided = builder.or_(undecided, builder.fcmp_ordered("<=", frac, err))
    slow = builder.icmp_unsigned("!=", builder.bitcast(undecided, i16), ir.Constant(i16, 0))
    result = cgutils.alloca_once(builder, b16)
    with builder.if_else(slow, likely=False) as (exact, fast):
        with exact:
            a, b, thr64, step64 = load64()
            span64 = _splat(builder, span, ir.VectorType(ir.DoubleType(), 16))
            builder.store(_emit_requantize_float64(builder, acc, a, b, thr64, step64, span64,
                                                   lo, ties), result)
        with fast:
            zero = ir.Constant(f16, [0.0] * 16)
            top = _splat(builder, builder.fptrunc(span, f32), f16)
            t = builder.select(builder.fcmp_ordered("<", t, zero), zero, t)
            t = builder.select(builder.fcmp_ordered(">", t, top), top, t)
            q = builder.add(builder.fptosi(t, ir.VectorType(i32, 16)), lo)
            builder.store(builder.trunc(q, b16), result)
    return builder.load(result)


#: :class:`RequantBlock`'s vectors: int32 ``pre``, then these float32 ones, then the float64
#: ones, each ``width`` channels long.
_F32_NAMES = ("fa", "fb", "ea", "eb", "thr", "step")
_F64_NAMES = ("fa", "fb", "thr", "step")


def _block_offset(kind: str, name: str, width: int) -> int:
    """Byte offset of vector ``name`` (``kind`` "pre", "f32" or "f64") in a block of
    ``width`` channels (also emitted as IR by :func:`_emit_block_loads`)."""
    if kind == "pre":
        return 0
    if kind == "f32":
        return 4 * width * (1 + _F32_NAMES.index(name))
    return 4 * width * (1 + len(_F32_NAMES)) + 8 * width * _F64_NAMES.index(name)


def _emit_block_loads(builder, block, width, channel):
    """IR loading 16 channels from ``channel`` (i64 values) of a :class:`RequantBlock` at
    address ``block`` with ``width`` channels: ``(pre, p32, load64)`` as
    :func:`_emit_requantize` takes them (``load64`` emits its loads where it is called)."""
    i32, i64 = ir.IntType(32), ir.IntType(64)
    v16, f16 = ir.VectorType(i32, 16), ir.VectorType(ir.FloatType(), 16)
    d16 = ir.VectorType(ir.DoubleType(), 16)

    def load(slot, size, ty):
        at = builder.add(builder.add(block, builder.mul(width, ir.Constant(i64, slot))),
                         builder.mul(channel, ir.Constant(i64, size)))
        return builder.load(_ptr(builder, at, ty), align=1)

    pre = load(0, 4, v16)
    p32 = tuple(load(4 * (1 + j), 4, f16) for j in range(len(_F32_NAMES)))
    base = 4 * (1 + len(_F32_NAMES))

    def load64():
        return tuple(load(base + 8 * j, 8, d16) for j in range(len(_F64_NAMES)))

    return pre, p32, load64


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


def _emit_switch(builder, key, bodies: dict) -> None:
    """IR running ``bodies[k]()`` (each emits one variant's code) when the run-time integer
    ``key`` equals ``k``, nothing for any other value: one call of a driver picks the variant
    compiled for its panel width, where numba could only call each variant by name."""
    end = builder.append_basic_block("variant.end")
    switch = builder.switch(key, end)
    for k, body in bodies.items():
        block = builder.append_basic_block(f"variant.{k}")
        switch.add_case(ir.Constant(key.type, k), block)
        builder.position_at_end(block)
        body()
        builder.branch(end)
    builder.position_at_end(end)


def _emit_int32_tile(builder, nv: int, args) -> None:
    """IR of the 6 x (16 nv) micro-kernel storing its raw sums: ``args = (a, lda, rows, b,
    k4, c)`` with addresses ``a`` (int8 activation rows, ``lda`` bytes apart; ``rows`` of them
    valid), ``b`` (one packed panel), ``c`` (an int32 tile of 6 rows of ``16 nv``), ``k4``
    groups of four ``k``."""
    a, lda, rows, b, k4, c = args
    v16 = ir.VectorType(ir.IntType(32), 16)
    sums = _emit_tile_sums(builder, nv, a, lda, rows, b, k4)
    for r in range(MR):
        for v in range(nv):
            addr = builder.add(c, ir.Constant(ir.IntType(64), 64 * (r * nv + v)))
            builder.store(sums[r][v], _ptr(builder, addr, v16), align=1)


@intrinsic
def _tile(typingctx, nv, a, lda, rows, b, k4, c):
    """``_tile(nv, a, lda, rows, b, k4, c)``: :func:`_emit_int32_tile` for the panel width
    ``nv`` (1 to 4 vectors of 16 channels)."""
    sig = types.void(*[types.intp] * 7)

    def codegen(context, builder, signature, args):
        _emit_switch(builder, args[0], {w: (lambda w=w: _emit_int32_tile(builder, w, args[1:]))
                                        for w in range(1, PANEL // 16 + 1)})
        return context.get_dummy_value()

    return sig, codegen


def _emit_fused(builder, nv: int, ties: bool, args) -> None:
    """IR of the micro-kernel with the requantization (:func:`_emit_requantize`) applied to
    its registers and int8 results stored straight into the output: ``args = (a, lda, rows,
    b, k4, out, ldo, cols, block, width, c0, span, lo)`` with ``out`` the address of the
    tile's first output byte (rows ``ldo`` bytes apart; ``rows`` rows and ``cols`` channels
    valid), ``block`` a :class:`RequantBlock`'s address (``width`` channels) and ``c0`` the
    panel's first channel. Each lane gives what ``requantize_value_float(acc + pre, ...)``
    gives."""
    a, lda, rows, b, k4, out, ldo, cols, block, width, c0, span, lo = args
    i32, i64 = ir.IntType(32), ir.IntType(64)
    v16 = ir.VectorType(i32, 16)
    sums = _emit_tile_sums(builder, nv, a, lda, rows, b, k4)
    lo_v = _splat(builder, builder.trunc(lo, i32), v16)
    lanes = ir.Constant(v16, list(range(16)))
    params = []
    for v in range(nv):
        channel = builder.add(c0, ir.Constant(i64, 16 * v))
        valid = builder.trunc(builder.sub(cols, ir.Constant(i64, 16 * v)), i32)
        params.append((*_emit_block_loads(builder, block, width, channel),
                       builder.icmp_signed("<", lanes, _splat(builder, valid, v16)),
                       builder.icmp_signed(">=", valid, ir.Constant(i32, 16))))
    for r in range(MR):
        live = builder.icmp_signed("<", ir.Constant(i64, r), rows)
        with builder.if_then(live, likely=True):
            row = builder.add(out, builder.mul(ir.Constant(i64, r), ldo))
            for v in range(nv):
                pre, p32, load64, mask, full = params[v]
                q = _emit_requantize(builder, builder.add(sums[r][v], pre), p32,
                                     load64, span, lo_v, ties)
                _emit_store(builder, q, builder.add(row, ir.Constant(i64, 16 * v)),
                            full, mask)


@intrinsic
def _fused(typingctx, nv, ties, a, lda, rows, b, k4, out, ldo, cols, block, width, c0, span,
           lo):
    """``_fused(nv, ties, a, lda, rows, b, k4, out, ldo, cols, block, width, c0, span, lo)``:
    :func:`_emit_fused` for the panel width ``nv`` (1 to 4) with (``ties`` 1) or without
    (0) GEMMLOWP's tie step."""
    sig = types.void(*[types.intp] * 13, types.float64, types.intp)

    def codegen(context, builder, signature, args):
        key = builder.add(builder.mul(args[0], ir.Constant(args[0].type, 2)), args[1])
        _emit_switch(builder, key, {
            2 * w + t: (lambda w=w, t=t: _emit_fused(builder, w, bool(t), args[2:]))
            for w in range(1, PANEL // 16 + 1) for t in (0, 1)})
        return context.get_dummy_value()

    return sig, codegen


def _emit_float_tile(builder, nv: int, args) -> None:
    """IR of the float32 micro-kernel with the bias and the activation clamp fused:
    ``args = (a, lda, rows, b, k, out, ldo, cols, bias, lo, hi)``: addresses ``a`` (float32
    rows, ``lda`` bytes apart), ``b`` (a packed panel), ``out`` (the tile's first output,
    rows ``ldo`` bytes apart; ``rows`` x ``cols`` valid), ``bias`` (the panel's first channel
    of a bias padded to whole panels); each lane ``min(max(sum + bias, lo), hi)`` as
    ``_loops._clamp`` (NaN kept)."""
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


@intrinsic
def _float_tile(typingctx, nv, a, lda, rows, b, k, out, ldo, cols, bias, lo, hi):
    """``_float_tile(nv, a, lda, rows, b, k, out, ldo, cols, bias, lo, hi)``:
    :func:`_emit_float_tile` for the panel width ``nv`` (1 to 4)."""
    sig = types.void(*[types.intp] * 10, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        _emit_switch(builder, args[0], {w: (lambda w=w: _emit_float_tile(builder, w, args[1:]))
                                        for w in range(1, PANEL // 16 + 1)})
        return context.get_dummy_value()

    return sig, codegen


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
            _float_tile(nv, ar, ldab, mr, b, k, o, ldo, cols, bb, lo, hi)


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



def _round_up_f32(v: np.ndarray) -> np.ndarray:
    """float64 ``v`` as float32 values no smaller than ``v``."""
    out = v.astype(np.float32)
    return np.where(out.astype(np.float64) < v, np.nextafter(out, np.float32(np.inf)), out)


class RequantBlock:
    """The per-channel constants of the fused requantization (:func:`_emit_requantize`) in
    one 64-byte aligned buffer (``block``), each vector ``width`` channels long (a multiple
    of 16): int32 ``pre`` (added to the sums), the float32 form ``fa, fb, ea, eb, thr, step``,
    the float64 form ``fa, fb, thr, step`` (``Requantizer.loop_params_float``; ``f64`` holds
    them as arrays, for loops that requantize elsewhere).

    The float32 form's error bound. With ``u = 2**-24``, ``t = acc * fa + fb`` the exact value
    the float64 form computes, ``A = fl32(acc)``, ``fa' = fl32(fa)``, ``fb' = fl32(fb)`` and
    ``t' = fl32(A * fa' + fb')`` (one fused rounding): ``|t' - t| <= (|A| |fa'| + |fb'|) *
    3.1u``. With GEMMLOWP's ties, ``thr' = fl32(thr)`` is off by at most ``1.01u |thr'|`` and
    the subtraction of ``step`` (a power of two) rounds once more, so ``|t'' - t_adj| <=
    (|A| |fa'| + |fb'| + |thr'| + step) * 4.2u``. The kernel takes ``e = |A| * ea + eb`` with
    ``ea = |fa'| 2**-21`` and ``eb >= (|fb'| + |thr'| + step) 2**-21`` (rounded up): ``8u``, so
    the bound holds with room for ``e``'s own float32 roundings. Channels whose float32
    constants are not normal numbers get ``eb = inf`` (always the float64 form); padding
    channels ``eb = -1`` (never undecided)."""

    def __init__(self, pre, fq, n: int, width: int):
        fa, fb, thr, step, self.span, self.lo = fq
        self.width = width
        self.ties = bool(np.any(np.asarray(thr) > -np.inf))
        wb = 4 * width * (1 + len(_F32_NAMES)) + 8 * width * len(_F64_NAMES)
        buf = np.zeros(wb + 64, np.uint8)
        start = (-buf.ctypes.data) % 64
        self.block = buf[start:start + wb]

        def vec(kind, name, dtype):
            off = _block_offset(kind, name, width)
            return self.block[off:off + np.dtype(dtype).itemsize * width].view(dtype)

        vec("pre", "", np.int32)[:] = padded(pre, n, width, np.int32)
        f64 = {}
        for name, v, fill in (("fa", fa, 0.0), ("fb", fb, 0.0), ("thr", thr, -np.inf),
                              ("step", step, 0.0)):
            f64[name] = vec("f64", name, np.float64)
            f64[name][:] = padded(v, n, width, np.float64, fill)
        #: The float64 vectors (``fa, fb, thr, step``), ``width`` channels each.
        self.f64 = tuple(f64[name] for name in _F64_NAMES)
        f32 = {name: f64[name].astype(np.float32) for name in ("fa", "fb", "thr", "step")}
        tiny = np.finfo(np.float32).tiny
        scale = 2.0**-21
        finite_thr = np.isfinite(f64["thr"])
        terms = np.abs(f32["fb"].astype(np.float64)) + np.where(
            finite_thr, np.abs(f32["thr"].astype(np.float64)) + f32["step"], 0.0)
        fa_abs = np.abs(f32["fa"])
        eb, ea = _round_up_f32(terms * scale), _round_up_f32(fa_abs.astype(np.float64) * scale)
        bad = ((fa_abs < tiny) & (fa_abs != 0)) | ((f32["fa"] == 0) & (f64["fa"] != 0)) | \
            ~np.isfinite(f32["fa"]) | ~np.isfinite(f32["fb"]) | ~np.isfinite(eb) | \
            (finite_thr & ~np.isfinite(f32["thr"])) | ~np.isfinite(f32["step"])
        ea[bad], eb[bad] = 0.0, np.inf
        eb[n:] = -1.0
        f32["ea"], f32["eb"] = ea, eb
        for name in _F32_NAMES:
            vec("f32", name, np.float32)[:] = f32[name]


@nb.njit(**_OPTS)
def gemm_requantize_float(a, rows, lda, packed, offsets, widths, k4, n, block, width, span, lo,
                          ties, out):
    """``out[m, :n] = requantize(sum_k (a[m, k] + 128) * w[:, k] + pre)`` for ``rows`` int8
    rows of ``a`` (``lda`` elements apart; readable up to ``4 k4``) into the C-contiguous int8
    ``out``, by the exact float32/float64 requantization (:func:`_emit_requantize`, the
    float64 form ``Requantizer.loop_params_float``) in the micro-kernel's registers;
    ``block`` a :class:`RequantBlock` of ``width`` channels; ``ties`` False when ``thr`` is
    -inf everywhere (no GEMMLOWP tie fix: kernels without that step)."""
    aa, pa, oa, ba = a.ctypes.data, packed.ctypes.data, out.ctypes.data, block.ctypes.data
    ldo = out.shape[1]
    t = 1 if ties else 0
    for p in range(offsets.shape[0]):  # a panel's weights stay in cache for every row
        nv = widths[p]
        n0 = p * PANEL
        cols = min(nv * 16, n - n0)
        b = pa + offsets[p]
        for m0 in range(0, rows, MR):
            mr = min(MR, rows - m0)
            ar, o = aa + m0 * lda, oa + m0 * ldo + n0
            _fused(nv, t, ar, lda, mr, b, k4, o, ldo, cols, ba, width, n0, span, lo)


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
            _tile(nv, aa + m0 * lda, lda, mr, pa + offsets[p], k4, ta)
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
            _tile(nv, aa + m0 * lda, lda, mr, pa + offsets[p], k4, ta)
            n0 = p * PANEL
            w = nv * 16
            for r in range(mr):
                for j in range(min(w, n - n0)):
                    out[m0 + r, n0 + j] = tile[r * w + j]


# -- int8 depthwise ----------------------------------------------------------------------------
def int16_lanes(w: np.ndarray) -> np.ndarray:
    """int16-range integers ``w`` as int32 lanes holding ``w`` in their low half and zero in
    their high half: the form :func:`_emit_int16_dot` multiplies."""
    w = np.asarray(w, np.int64)
    if w.size and (w.min() < -(2**15) or w.max() >= 2**15):
        raise ValueError("int16_lanes takes values in the int16 range")
    return (w & 0xFFFF).astype(np.int32)


def _emit_int16_dot(builder, acc, x, w):
    """IR of ``acc + x * w`` on 16 int32 lanes for ``x`` sign-extended int16-range values and
    ``w`` in :func:`int16_lanes` form: the pairwise int16 multiply-add (``vpdpwssd`` with
    VNNI, else ``vpmaddwd`` then an add) gives ``lo(x) * lo(w) + hi(x) * 0``, exactly ``x *
    w``, in one or two single-uop instructions (``vpmulld`` takes two)."""
    v16 = acc.type
    module = builder.module
    if FEATURES["vnni"]:
        fn = cgutils.get_or_insert_function(module, ir.FunctionType(v16, [v16] * 3),
                                            "llvm.x86.avx512.vpdpwssd.512")
        return builder.call(fn, [acc, x, w])
    v32 = ir.VectorType(ir.IntType(16), 32)
    fn = cgutils.get_or_insert_function(module, ir.FunctionType(v16, [v32, v32]),
                                        "llvm.x86.avx512.pmaddw.d.512")
    return builder.add(acc, builder.call(fn, [builder.bitcast(x, v32), builder.bitcast(w, v32)]))


def _dw_int8_kernel(static_taps: int | None):
    """:func:`_dw_int8_run` with the tap loop unrolled for ``static_taps`` taps (LLVM then
    keeps the offsets in registers and schedules the loads: ~1.5x faster), or a loop."""

    @intrinsic
    def run(typingctx, x, step, npix, toff, taps, w, wstride, oc, out, block, span, lo):
        """An interior run of int8 DEPTHWISE_CONV_2D output pixels (every tap inside the image,
        depth multiplier 1), fused with the requantization: for ``npix`` pixels (input
        address ``x + p * step`` of the first tap, output ``out + p * oc``), each vector of 16
        channels sums ``x * w`` over the ``taps`` byte offsets ``toff`` (int64) in int32 from
        ``pre`` (the ``- zx * sum_t w`` correction), then requantizes
        (:func:`_emit_requantize`). ``w``: int32 ``[taps, wstride]`` in the form of
        :func:`int16_lanes`; ``block`` a :class:`RequantBlock` of ``wstride`` channels (a
        multiple of 16)."""
        sig = types.void(*[types.intp] * 10, types.float64, types.intp)

        def codegen(context, builder, signature, args):
            x, step, npix, toff, taps, w, wstride, oc, out, block, span, lo = args
            i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
            v16 = ir.VectorType(i32, 16)
            b16 = ir.VectorType(i8, 16)
            masked_store = _masked(builder, "store", b16)
            masked_load = _masked(builder, "load", b16)
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

                    pre, p32, load64 = _emit_block_loads(builder, block, wstride, c0)
                    builder.store(pre, acc)

                    def tap(index):
                        off = builder.load(_ptr(builder, at(toff, index, 8), i64), align=1)
                        src = _ptr(builder, builder.add(builder.add(px, off), c0), b16)
                        xv = builder.call(masked_load, [src, ir.Constant(i32, 1), mask,
                                                        ir.Constant(b16, [0] * 16)])
                        wv = builder.load(_ptr(builder, at(w, builder.add(
                            builder.mul(index, wstride), c0), 4), v16), align=1)
                        builder.store(_emit_int16_dot(builder, builder.load(acc),
                                                      builder.sext(xv, v16), wv), acc)

                    if static_taps:
                        for ti in range(static_taps):
                            tap(ir.Constant(i64, ti))
                    else:
                        with cgutils.for_range(builder, taps) as tl:
                            tap(tl.index)
                    qv = _emit_requantize(builder, builder.load(acc), p32, load64, span, lo_v)
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
def depthwise_int8(x, zx, w, acc, wt, toff, block, fa, fb, thr, fstep, span, lo, sh, sw, dh, dw,
                   pt, pl, out):
    """int8 DEPTHWISE_CONV_2D (depth multiplier 1, constant filter and bias, float64
    requantization proven exact): rows of interior pixels through :func:`_dw_int8_run`, the
    pixels whose window meets the padding through ``_loops._dw_pixel_sums`` (padding skipped,
    ``w`` / ``zx`` / ``acc`` in the loops' accumulator dtype) and the same requantization.
    ``wt`` int32 ``[taps, OC']`` and ``toff`` (the taps' byte offsets) as the run takes them;
    ``block`` a :class:`RequantBlock` of ``OC'`` channels, ``fa, fb, thr, fstep`` its float64
    vectors."""
    n_, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[0], w.shape[1]
    xaddr, oaddr = x.ctypes.data, out.ctypes.data
    taps, wstride = wt.shape[0], wt.shape[1]
    ta, wa = toff.ctypes.data, wt.ctypes.data
    ba = block.ctypes.data
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
                    _dw_int8_run9(src, sw * c, xb - xa, ta, taps, wa, wstride, oc, dst, ba,
                                  span, lo)
                elif taps == 25:
                    _dw_int8_run25(src, sw * c, xb - xa, ta, taps, wa, wstride, oc, dst, ba,
                                   span, lo)
                else:
                    _dw_int8_run(src, sw * c, xb - xa, ta, taps, wa, wstride, oc, dst, ba,
                                 span, lo)
            for xo in range(ow):
                if inside and xa <= xo < xb:
                    continue
                _loops._dw_pixel_sums(x, zx, w, n, y0, xo * sw - pl, dh, dw, 1, zero, acc)
                for ch in range(oc):
                    out[n, y, xo, ch] = _loops.requantize_value_float(
                        np.float64(acc[ch]), fa[ch], fb[ch], thr[ch], fstep[ch], span, lo)
