"""Shared pieces of the quantized (int8 / uint8 / int16) elementwise, activation, softmax,
pooling and reduction kernels, reproducing LiteRT's built-in integer kernels bit for bit.

* Parameters: :func:`qparams` (per-tensor scale and zero point as TFLite's ``params`` see them),
  :func:`is_quantized`, :func:`int_range`.
* Float maths done in prepare exactly as the C++ does it: float32 arithmetic through numpy
  float32 scalars/arrays (IEEE, no fused multiply-add), rounding half away from zero
  (:func:`round_away`, ``std::round``), and the C math library's own transcendental functions
  (:func:`cmath`: ``expf``, ``tanhf``, ``expm1f``, ``erfcf``, ``logf``, ``exp``...) called through
  ctypes, because LiteRT calls them from the system libm and numpy's vectorized versions may
  differ by one ulp (enough to move a table entry across a rounding boundary).
* Look-up tables: :func:`lut8` (TFLite's ``LUTPopulate`` for int8/uint8: one entry per input
  value), :func:`lut16` and :func:`lut16_lookup` (the 513-entry interpolated int16 table).
* gemmlowp 16-bit helpers: :func:`srdhm16` (SaturatingRoundingDoublingHighMul on int16).
* :func:`float_to_int32` — C's truncating float -> int32 conversion, with x86's "integer
  indefinite" (INT32_MIN) for NaN and out-of-range values.

Eval-time work stays integer numpy (int64 arrays); only prepare uses floats.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from functools import cache

import numpy as np

from workbench.quantize import fixed_point as fp

from . import _jit

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
QUANT_TYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


# -- parameters ---------------------------------------------------------------------------------
def is_quantized(info) -> bool:
    q = info.quantization if info is not None else None
    return q is not None and q.scale.size > 0


def qparams(info) -> tuple[float, int]:
    """(scale, zero point) of a tensor as TFLite's per-tensor ``params`` (the first entry)."""
    q = info.quantization if info is not None else None
    if q is None or q.scale.size == 0:
        return 0.0, 0
    return float(q.scale[0]), int(q.zero_point[0]) if q.zero_point.size else 0


def int_range(dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def clamp_cast(x, dtype, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    """Clamp to ``[lo, hi]`` (default: the dtype's range) and cast."""
    dmin, dmax = int_range(dtype)
    return np.clip(x, dmin if lo is None else lo, dmax if hi is None else hi).astype(dtype)


def multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier of a double."""
    return fp.quantize_multiplier(real)


requant = fp.multiply_by_quantized_multiplier


def wrap(x, bits: int) -> np.ndarray:
    """Two's-complement wrap of integers to ``bits`` bits (C's narrowing conversion)."""
    x = np.asarray(x, dtype=np.int64)
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((half << 1) - 1)) - half


# -- C float semantics --------------------------------------------------------------------------
def f32(x) -> np.float32:
    return np.float32(x)


def round_away(x: np.ndarray) -> np.ndarray:
    """``std::round``: to nearest, halves away from zero, in the input's float type (exact)."""
    x = np.asarray(x)
    t = np.trunc(x)
    frac = np.abs(x - t)  # exact for binary floats
    return np.where(frac >= 0.5, t + np.sign(x), t).astype(x.dtype)


def float_to_int32(x: np.ndarray) -> np.ndarray:
    """``static_cast<int32_t>(float)``: truncation toward zero. Out-of-range values saturate
    (what LiteRT's build gives where the result is clamped next, e.g. the 8-bit tables); NaN
    gives INT32_MIN as x86's cvttss2si does."""
    x = np.asarray(x, dtype=np.float64)
    nan = np.isnan(x)
    t = np.trunc(np.clip(np.where(nan, 0.0, x), INT32_MIN, INT32_MAX))
    return np.where(nan, INT32_MIN, t).astype(np.int64)


@cache
def _libm():
    for name in (ctypes.util.find_library("m"), "libm.so.6", None):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


_NUMPY_F32 = {"expf": np.exp, "tanhf": np.tanh, "expm1f": np.expm1, "logf": np.log,
              "sqrtf": np.sqrt}
_NUMPY_F64 = {"exp": np.exp, "tanh": np.tanh, "log": np.log}


def cmath(name: str, x) -> np.ndarray:
    """The C library's ``name`` applied elementwise: float functions (``expf``...) take and
    return float32, double ones (``exp``...) float64. Falls back to numpy when libm is not
    loadable (then results may differ from LiteRT's by one ulp)."""
    single = name.endswith("f")
    dt = np.float32 if single else np.float64
    x = np.asarray(x, dtype=dt)
    lib = _libm()
    fn = getattr(lib, name, None) if lib is not None else None
    if fn is None:
        if name == "erfcf":
            return np.array([math.erfc(float(v)) for v in x.reshape(-1)],
                            np.float32).reshape(x.shape)
        return (_NUMPY_F32 if single else _NUMPY_F64)[name](x).astype(dt)
    ctype = ctypes.c_float if single else ctypes.c_double
    fn.restype = ctype
    fn.argtypes = [ctype]
    flat = x.reshape(-1)
    return np.array([fn(float(v)) for v in flat], dtype=dt).reshape(x.shape)


# -- look-up tables -----------------------------------------------------------------------------
def lut8(dtype, in_scale: float, in_zp: int, out_scale: float, out_zp: int, transform
         ) -> np.ndarray:
    """TFLite's ``LUTPopulate`` for int8/uint8: the output for every input value, in float32
    maths (``transform`` maps a float32 array to a float32 array), rounded half away from zero,
    saturated. Index the table with ``x - dtype_min``."""
    lo, hi = int_range(dtype)
    vals = np.arange(lo, hi + 1, dtype=np.int64)
    deq = f32(in_scale) * (vals - in_zp).astype(np.float32)
    with np.errstate(all="ignore"):
        y = np.asarray(transform(deq), dtype=np.float32)
        rescaled = round_away(y * (f32(1) / f32(out_scale)))
        q = float_to_int32(rescaled + np.float32(out_zp))
    return np.clip(q, lo, hi).astype(dtype)


def apply_lut8(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    lo = int_range(table.dtype)[0]
    return table[x.astype(np.int64) - lo]


def lut16(in_scale, in_zp: int, out_scale, out_zp: int, transform, dt=np.float32) -> np.ndarray:
    """TFLite's 513-entry int16 ``LUTPopulate`` (512 segments over the input range, each
    sample biased by half the interpolation error at the segment's midpoint). ``dt``: the
    float type of the computation (float32, or float64 for the softmax tables);
    ``transform`` maps an array of ``dt`` to ``dt``."""
    t = np.dtype(dt).type
    in_scale, out_scale = t(in_scale), t(out_scale)
    input_min = in_scale * t(-32768 - in_zp)
    input_max = in_scale * t(32767 - in_zp)
    output_min = out_scale * t(-32768 - out_zp)
    output_max = out_scale * t(32767 - out_zp)
    steps = 512
    step = (input_max - input_min) / t(steps)
    half_step = step / t(2)
    inv = t(65536) / (output_max - output_min)
    i = np.arange(steps).astype(dt)
    with np.errstate(all="ignore"):
        val = np.asarray(transform(input_min + i * step), dtype=dt)
        val_mid = np.asarray(transform(input_min + i * step + half_step), dtype=dt)
        val_next = np.asarray(transform(input_min + (i + t(1)) * step), dtype=dt)
        sample = round_away(val * inv)
        interp = round_away((val_next * inv + round_away(val * inv)) / t(2))
        mid = round_away(val_mid * inv)
        bias = round_away((interp - mid) / t(2))
        lut = np.clip(sample - bias, -32768, 32767)
        last = np.clip(round_away(np.asarray(transform(np.array([input_max], dt)), dt) * inv),
                       -32768, 32767)
        table = np.concatenate([lut, last])
    # A NaN entry (inf - inf when the function overflows) survives std::min/max and converts
    # to int16 as 0 (the low half of x86's "integer indefinite").
    return np.where(np.isnan(table), 0, table).astype(np.int64)


def lut16_lookup(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's ``LUTLookup`` for int16 (interpolating between the 513 entries); returns
    int64 values already wrapped to int16."""
    x = np.asarray(x, dtype=np.int64)
    index = 256 + (x >> 7)
    offset = x & 0x7F
    base = lut[index]
    slope = wrap(lut[index + 1] - base, 16)  # an int16 in TFLite
    delta = (slope * offset + 64) >> 7
    return wrap(base + delta, 16)


# -- gemmlowp 16-bit fixed point ----------------------------------------------------------------
def srdhm16(a, b) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int16 values."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    s = ab + nudge
    q = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where((a == -32768) & (b == -32768), 32767, q)


def rdbp(x, exponent) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT (rounding half away from zero)."""
    return fp.rounding_divide_by_pot(x, exponent)


def rdbp16(x, exponent: int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT on int16 values, as C++ computes it for any exponent up
    to 31: from 16 on, its mask ``(1ll << e) - 1`` truncated to int16 is -1 (all bits), so the
    result is -1 for a negative value and +1 otherwise (never 0), where an exact division
    would give 0. (Quantized HARD_SWISH meets it with a tiny input scale.)"""
    if exponent < 16:
        return rdbp(x, exponent)
    x = np.asarray(x, dtype=np.int64)
    return (x >> exponent) + (x > np.where(x < 0, 0, -1))


def checked_log2(x: float) -> int | None:
    """TFLite's CheckedLog2: the rounded log2 of ``x`` when ``x`` is (within 1e-3) a power of
    two, else None (also for zero, negative, infinite or NaN scales, which LiteRT's check
    refuses too)."""
    if not (math.isfinite(x) and x > 0):
        return None
    x_log2 = math.log(x) * (1.0 / math.log(2.0))
    r = math.floor(x_log2 + 0.5) if x_log2 >= 0 else -math.floor(-x_log2 + 0.5)
    return int(r) if abs(x_log2 - r) < 1e-3 else None


def count_leading_zeros32(x) -> np.ndarray:
    """Number of leading zero bits of values taken as uint32 (32 for 0)."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    _, bit_length = np.frexp(x.astype(np.float64))  # exact below 2**53
    return np.where(x == 0, 32, 32 - bit_length).astype(np.int64)


# -- LiteRT's optimized (NEON) code paths -------------------------------------------------------
# LiteRT's x86 build compiles its NEON kernels through NEON_2_SSE (SSE4.1), so the vectorized
# loops of the "optimized" kernels run on x86 too, and they round differently from the scalar
# code that handles the leftovers. Which elements each loop computes depends only on shapes:
# :func:`vector_paths` reproduces that split for the binary ops (``ProcessBroadcastShapes`` and
# ``BinaryBroadcastFiveFold``), and each op evaluates both formulas and picks per element.
SCALAR, VEC_ELEMENTWISE, VEC_BROADCAST = 0, 1, 2


def fivefold_shape(shape1, shape2):
    """TFLite's ProcessBroadcastShapes: ``None`` when the (rank-extended) shapes are equal, the
    string ``"generic"`` for broadcasts the five-fold loop cannot express, else the five
    extents ``(y0, y1, y2, y3, y4)``."""
    rank = max(len(shape1), len(shape2))
    s0 = (1,) * (rank - len(shape1)) + tuple(shape1)
    s1 = (1,) * (rank - len(shape2)) + tuple(shape2)
    if s0 == s1:
        return None
    first_fast = None
    for i in range(rank - 1, -1, -1):
        if s0[i] == s1[i]:
            continue
        if s0[i] == 1:
            first_fast = True
        elif s1[i] == 1:
            first_fast = False
        else:
            return "generic"
        break
    a, b = (s0, s1) if first_fast else (s1, s0)
    y = [1, 1, 1, 1, 1]
    i = rank - 1
    while i >= 0 and a[i] == b[i]:
        y[4] *= b[i]
        i -= 1
    while i >= 0 and a[i] == 1:
        y[3] *= b[i]
        i -= 1
    while i >= 0 and a[i] == b[i]:
        y[2] *= a[i]
        i -= 1
    while i >= 0 and b[i] == 1:
        y[1] *= a[i]
        i -= 1
    while i >= 0 and a[i] == b[i]:
        y[0] *= b[i]
        i -= 1
    return "generic" if i >= 0 else tuple(y)


def vector_paths(shape1, shape2, out_shape, elem_block: int, bcast_block: int,
                 broadcast_vectorized: bool = True) -> np.ndarray:
    """For each output element, which loop of LiteRT's optimized binary kernel computes it:
    :data:`VEC_ELEMENTWISE` (the vector loop of the elementwise function, blocks of
    ``elem_block``), :data:`VEC_BROADCAST` (the vector loop of the scalar-broadcast function,
    blocks of ``bcast_block``) or :data:`SCALAR` (leftovers, and broadcasts handled by the
    reference code: generic patterns, or all of them when not ``broadcast_vectorized``)."""
    n = int(np.prod(out_shape, dtype=np.int64))
    idx = np.arange(n)
    plan = fivefold_shape(shape1, shape2)
    if plan is None:
        path = np.where(idx < n - n % elem_block, VEC_ELEMENTWISE, SCALAR)
    elif plan == "generic" or not broadcast_vectorized:
        path = np.zeros(n, np.int64)
    else:
        y3, y4 = plan[3], plan[4]
        if y4 > 1:
            path = np.where(idx % y4 < y4 - y4 % elem_block, VEC_ELEMENTWISE, SCALAR)
        else:
            path = np.where(idx % y3 < y3 - y3 % bcast_block, VEC_BROADCAST, SCALAR)
    return path.reshape(out_shape).astype(np.int8)


class PathCache:
    """:func:`vector_paths` memoized on the two input shapes (they can change at run time)."""

    def __init__(self, elem_block: int, bcast_block: int, broadcast_vectorized: bool = True):
        self.args = (elem_block, bcast_block, broadcast_vectorized)
        self.key = None
        self.paths = None

    def __call__(self, shape1, shape2) -> np.ndarray | None:
        """The paths, or None when every element takes the scalar formula."""
        key = (tuple(shape1), tuple(shape2))
        if key != self.key:
            out_shape = np.broadcast_shapes(*key)
            paths = vector_paths(key[0], key[1], out_shape, *self.args)
            self.key, self.paths = key, paths if (paths != SCALAR).any() else None
            self.offset_key = None
        return self.paths

    def offsets(self, shape1, shape2, block: dict[int, int]):
        """The paths as offsets ``block[path]`` into a table of per-path blocks: None when every
        element takes the scalar formula, ``(n, offset)`` when the first ``n`` elements (flat)
        take one path and the rest the scalar one (equal shapes), else an int32 array."""
        paths = self(shape1, shape2)
        if paths is None:
            return None
        if getattr(self, "offset_key", None) != self.key:
            flat = paths.reshape(-1)
            changes = np.flatnonzero(flat != flat[0])
            n = int(changes[0]) if changes.size else flat.size
            if (flat[n:] == SCALAR).all() and int(flat[0]) in block:
                offset = (n, block[int(flat[0])])  # a prefix on one path, the rest scalar
            else:
                lut = np.zeros(max(max(block), int(flat.max())) + 1, np.int32)
                for p, off in block.items():
                    lut[p] = off
                offset = lut[paths]
            self.offset_key, self.offset = self.key, offset
        return self.offset


def neon_shift(x, shift: int) -> np.ndarray:
    """NEON ``vshlq_s32`` by a constant: a wrapping left shift, or for negative counts a
    truncating (flooring) arithmetic right shift."""
    x = np.asarray(x, dtype=np.int64)
    return wrap(x << shift, 32) if shift >= 0 else x >> (-shift)


# -- binary arithmetic --------------------------------------------------------------------------
def _require_scales(node, *tensors) -> None:
    for t in tensors:
        if not is_quantized(t):
            raise node.fail(f"quantized {t.dtype} tensor {t.name!r} has no scale")


def fused_range(node, out) -> tuple[int, int]:
    """CalculateActivationRangeQuantized of the node's fused activation on ``out``."""
    act = getattr(node.options, "fused_activation_function", 0) if node.options else 0
    s, z = qparams(out)
    return fp.activation_range(int(act), s, z, out.dtype)


def tabulate(dtype, fn):
    """A pointwise function of one 8-bit or 16-bit input evaluated once for every input value
    (in prepare); the returned eval function is a table lookup."""
    lo, hi = int_range(dtype)
    table = np.asarray(fn(np.arange(lo, hi + 1, dtype=np.int64)))
    return lambda v: table[v.astype(np.int64) - lo]


def binary_fn(dtype, formulas, paths_of=None, out_dtype=None):
    """The eval function of a quantized binary op from its formulas, one per LiteRT code path
    (``SCALAR``, ``VEC_ELEMENTWISE``, ``VEC_BROADCAST``): a dict of ``f(x, y)``, or one function
    returning such a dict of results (to share work between paths), on int64 raw values with
    broadcasting. 8-bit inputs: every formula is tabulated once over all 256 x 256 input pairs,
    so eval is a gather; int16 inputs: the formulas run at eval. ``paths_of`` (a
    :class:`PathCache`) says which path computes each output element."""
    out_dtype = np.dtype(out_dtype if out_dtype is not None else dtype)
    lo = int_range(dtype)[0]

    def evaluate(x, y) -> dict:
        if callable(formulas):
            return formulas(x, y)
        return {p: f(x, y) for p, f in formulas.items()}

    if np.dtype(dtype).itemsize == 1:
        v = np.arange(lo, lo + 256, dtype=np.int64)
        results = evaluate(v[:, None], v[None, :])
        # Tables indexed by the inputs' raw bytes, ``(x byte << 8) | y byte``, one 64K block per
        # path: eval builds a uint16 index in two passes and gathers once (no int64
        # temporaries, no masked copies). The value with byte b sits at position b ^ 0x80 of
        # ``v`` for int8 (two's complement), at b for uint8.
        pos = np.arange(256) ^ (0x80 if lo < 0 else 0)
        order = [SCALAR] + [p for p in (VEC_ELEMENTWISE, VEC_BROADCAST) if p in results]
        table = np.concatenate([
            np.broadcast_to(results[p], (256, 256)).astype(out_dtype)[pos][:, pos].reshape(-1)
            for p in order])
        block = {p: k << 16 for k, p in enumerate(order)}

        loops = _jit.loops()

        def fn(x, y):
            shape = np.broadcast_shapes(np.shape(x), np.shape(y))
            paths = paths_of.offsets(x.shape, y.shape, block) if paths_of is not None else None
            if loops is not None and np.shape(x) == np.shape(y) == shape and \
                    (paths is None or isinstance(paths, tuple)):
                # Same shapes (residual adds): one compiled pass, no index array
                n, off = (0, 0) if paths is None else paths
                out = np.empty(shape, table.dtype)
                loops.gather_byte_pairs(np.ascontiguousarray(x).reshape(-1).view(np.uint8),
                                        np.ascontiguousarray(y).reshape(-1).view(np.uint8),
                                        table, n, off, out.reshape(-1))
                return out
            idx = np.empty(shape, np.uint16)
            np.left_shift(np.asarray(x).view(np.uint8), 8, out=idx, dtype=np.uint16)
            np.bitwise_or(idx, np.asarray(y).view(np.uint8), out=idx, dtype=np.uint16)
            if paths is None:
                return np.take(table, idx)  # the scalar block comes first
            if isinstance(paths, tuple):
                n, off = paths
                flat = idx.reshape(-1)
                out = np.empty(flat.size, table.dtype)
                np.take(table[off:off + 65536], flat[:n], out=out[:n])
                np.take(table, flat[n:], out=out[n:])
                return out.reshape(shape)
            return np.take(table, paths + idx)

        return fn

    def fn16(x, y):
        results = evaluate(x.astype(np.int64), y.astype(np.int64))
        shape = np.broadcast_shapes(x.shape, y.shape)
        out = np.array(np.broadcast_to(results[SCALAR], shape)).astype(out_dtype)
        paths = paths_of(x.shape, y.shape) if paths_of is not None else None
        if paths is not None:
            for p, r in results.items():
                mask = paths == p
                if p != SCALAR and mask.any():
                    out[mask] = np.broadcast_to(r, shape)[mask]
        return out

    return fn16


def prepare_add_sub(node, a, b, out, subtract: bool):
    """TFLite's general quantized ADD/SUB: both inputs moved to a common fixed-point scale
    (``2 * max(input scales)``, after a left shift of 20 bits for 8-bit types, 15 for int16),
    summed, then rescaled to the output. int16 ADD/SUB whose three scales are powers of two and
    whose ``pot_scale_int16`` option is set take the saturating power-of-two path instead.

    ADD runs LiteRT's optimized kernels: their vector loops scale each input with a single
    rounding (int8/int16 elementwise: the left shift reduced by the input's shift before the
    high multiply; int8 scalar broadcast and uint8: the input's right shift applied as a
    flooring shift after it), and narrow 8-bit results through wrapping int16 arithmetic. SUB
    runs the reference formula everywhere."""
    if out.dtype != a.dtype:
        raise node.fail(f"output type {out.tensor.type_name} differs from the quantized input "
                        f"type {a.tensor.type_name}")
    _require_scales(node, a, b, out)
    (s1, z1), (s2, z2), (so, zo) = qparams(a), qparams(b), qparams(out)
    lo, hi = fused_range(node, out)
    dt = out.dtype
    if dt == np.int16:
        if z1 or z2 or zo:
            raise node.fail("int16 inputs and output must have zero point 0")
        pot = bool(getattr(node.options, "pot_scale_int16", True)) if node.options else True
        logs = [checked_log2(s) for s in (s1, s2, so)] if pot else [None]
        if pot and all(v is not None for v in logs):
            return _pot_add_sub_int16(node, logs, lo, hi, subtract)
    ls = 15 if dt == np.int16 else 20
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = multiplier(s1 / twice_max)
    m2, sh2 = multiplier(s2 / twice_max)
    mo, sho = multiplier(twice_max / ((1 << ls) * so))
    scale = _scale_smaller_than_one_exp
    srdhm = fp.saturating_rounding_doubling_high_mul

    def scalar(x, y):
        v1, v2 = (x - z1) << ls, (y - z2) << ls
        raw = scale(v1, m1, sh1) - scale(v2, m2, sh2) if subtract else \
            scale(v1, m1, sh1) + scale(v2, m2, sh2)
        return clamp_cast(scale(wrap(raw, 32), mo, sho) + zo, dt, lo, hi)

    if subtract:
        return binary_fn(dt, {SCALAR: scalar})

    def vector_tail(total):
        r = rdbp_sse(srdhm(wrap(total, 32), mo), -sho)
        if dt == np.int16:
            return clamp_cast(r + zo, dt, lo, hi)
        t = wrap(wrap(r, 16) + zo, 16)  # vmovn_s32, then an int16 add
        return clamp_cast(np.clip(t, *int_range(dt)), dt, lo, hi)

    def elementwise_vec(x, y):  # shift by (left shift + input shift), one high multiply
        return vector_tail(srdhm(neon_shift(x - z1, ls + sh1), m1) +
                           srdhm(neon_shift(y - z2, ls + sh2), m2))

    def broadcast_vec(x, y):  # high multiply, then a flooring shift by the input shift
        return vector_tail(neon_shift(srdhm(wrap((x - z1) << ls, 32), m1), sh1) +
                           neon_shift(srdhm(wrap((y - z2) << ls, 32), m2), sh2))

    if dt == np.uint8:  # both uint8 loops use the flooring-shift form
        formulas = {SCALAR: scalar, VEC_ELEMENTWISE: broadcast_vec, VEC_BROADCAST: broadcast_vec}
        paths_of = PathCache(8, 8)
    elif dt == np.int8:
        formulas = {SCALAR: scalar, VEC_ELEMENTWISE: elementwise_vec,
                    VEC_BROADCAST: broadcast_vec}
        paths_of = PathCache(16, 8)
    else:
        formulas = {SCALAR: scalar, VEC_ELEMENTWISE: elementwise_vec}
        paths_of = PathCache(16, 16, broadcast_vectorized=False)
    return binary_fn(dt, formulas, paths_of)


def _pot_add_sub_int16(node, logs, lo, hi, subtract: bool):
    """int16 ADD/SUB with power-of-two scales and zero points 0: the input on a finer scale is
    shifted right (rounding), then a saturating 16-bit add (ADD) or a clamped difference
    (SUB)."""
    shift1, shift2 = logs[0] - logs[2], logs[1] - logs[2]
    if not (shift1 == 0 or shift2 == 0) or shift1 > 0 or shift2 > 0:
        raise node.fail("power-of-two int16 inputs must not be coarser than the output, and "
                        "only one may differ from it")

    def fn(x, y):
        v1 = rdbp(x.astype(np.int64), -shift1)
        v2 = rdbp(y.astype(np.int64), -shift2)
        if subtract:
            return np.clip(v1 - v2, lo, hi).astype(np.int16)
        total = np.clip(v1 + v2, -32768, 32767)  # gemmlowp SaturatingAdd on int16
        return np.clip(total, lo, hi).astype(np.int16)

    return fn


def prepare_mul(node, a, b, out):
    """Quantized MUL: ``(x - zx) * (y - zy)`` rescaled by ``sx * sy / so`` (computed in float32
    as the C++ does), plus the output zero point, clamped to the activation range. int16 inputs
    with an int8/uint8 output use gemmlowp's Q0.15 product divided by 2**8.

    int8/uint8 run LiteRT's optimized kernels, whose vector loops narrow the rescaled product to
    int16 (saturating; the uint8 scalar-broadcast loop wrapping) before adding the output zero
    point in int16 arithmetic: different from the scalar formula only when the product
    overflows int16."""
    dt = out.dtype
    if dt != a.dtype and not (a.dtype == np.int16 and dt in (np.int8, np.uint8)):
        raise node.fail(f"{a.tensor.type_name} inputs cannot give a {out.tensor.type_name} "
                        "output")
    _require_scales(node, a, b, out)
    (s1, z1), (s2, z2), (so, zo) = qparams(a), qparams(b), qparams(out)
    lo, hi = fused_range(node, out)
    if a.dtype == np.int16 and dt != np.int16:
        def fn16(x, y):
            r = rdbp(srdhm16(x, y), 8)
            return (np.clip(r, lo - zo, hi - zo) + zo).astype(dt)

        return fn16
    if dt == np.int16 and (z1 or z2 or zo):
        raise node.fail("int16 inputs and output must have zero point 0")
    m, sh = multiplier(float(f32(s1) * f32(s2) / f32(so)))

    def vector(r, saturate: bool):
        r16 = np.clip(r, -32768, 32767) if saturate else wrap(r, 16)
        t = wrap(r16 + zo, 16)
        return clamp_cast(np.clip(t, *int_range(dt)), dt, lo, hi)

    def formulas(x, y):
        r = requant(wrap((x - z1) * (y - z2), 32), m, sh)
        results = {SCALAR: clamp_cast(r + zo, dt, lo, hi)}
        if dt != np.int16:
            results[VEC_ELEMENTWISE] = vector(r, True)
            results[VEC_BROADCAST] = vector(r, dt == np.int8)
        return results

    block = 16 if dt == np.int8 else 8
    return binary_fn(dt, formulas, PathCache(block, block) if dt != np.int16 else None)


def prepare_squared_difference(node, a, b, out):
    """int8 SQUARED_DIFFERENCE: inputs on a common scale after a 7-bit left shift, the squared
    difference rescaled to the output (no activation)."""
    if out.dtype != np.int8:
        raise unsupported(node, f"quantized {out.dtype} is not supported by LiteRT (int8 only)")
    _require_scales(node, a, b, out)
    (s1, z1), (s2, z2), (so, zo) = qparams(a), qparams(b), qparams(out)
    left_shift = 7
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = multiplier(s1 / twice_max)
    m2, sh2 = multiplier(s2 / twice_max)
    mo, sho = multiplier(twice_max * twice_max / ((1 << (2 * left_shift)) * so))
    scale = _scale_smaller_than_one_exp

    def scalar(x, y):
        d = scale((x - z1) << left_shift, m1, sh1) - scale((y - z2) << left_shift, m2, sh2)
        return clamp_cast(scale(wrap(d * d, 32), mo, sho) + zo, np.int8)

    return binary_fn(np.int8, {SCALAR: scalar})


def rdbp_x86(x, exponent) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT on int32 as LiteRT's x86 build computes it for any
    (scalar or per-element) exponent, including those outside [0, 31] that C++ leaves undefined:
    the mask ``(1ll << e) - 1`` is computed in 64 bits and truncated to 32, and the arithmetic
    shift's count is taken modulo 32 (x86 masks it). Within [0, 31] this is the usual rounding
    half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    one = np.ones(e.shape, np.int64)
    with np.errstate(over="ignore"):
        mask = wrap(np.left_shift(one, e & 63) - one, 32)  # int64 arrays wrap, as in C
    remainder = wrap(x & mask, 32)
    threshold = (mask >> 1) + (x < 0)
    return (x >> (e & 31)) + (remainder > threshold)


def rdbp_sse(x, exponent: int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT on SSE vectors (the NEON loops' helper on x86), including
    negative exponents: the arithmetic shift by an out-of-range count fills with the sign."""
    if exponent >= 0:
        return rdbp(x, exponent)
    x = np.asarray(x, dtype=np.int64)
    return np.where(x >= 0, 1, -1)


def _scale_smaller_than_one_exp(x, m: int, shift: int) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp (high multiply, then a rounding
    right shift), also for the positive shifts of multipliers >= 1 (see :func:`rdbp_x86`)."""
    return rdbp_x86(fp.saturating_rounding_doubling_high_mul(x, m), -shift)


def prepare_comparison(node, a, b, compare):
    """Quantized comparison: each input rescaled by its own scale after an 8-bit left shift
    (``(x - z) << 8`` times the scale as a fixed-point multiplier), then compared. A scale of 1
    or more makes LiteRT right-shift by a negative amount (see :func:`rdbp_x86`); we compute what
    its x86 build does."""
    _require_scales(node, a, b)
    (s1, z1), (s2, z2) = qparams(a), qparams(b)
    left_shift = 8
    m1, sh1 = multiplier(s1)
    m2, sh2 = multiplier(s2)

    def scalar(x, y):
        v1 = _scale_smaller_than_one_exp((x - z1) << left_shift, m1, sh1)
        v2 = _scale_smaller_than_one_exp((y - z2) << left_shift, m2, sh2)
        return np.asarray(compare(v1, v2), dtype=np.bool_)

    return binary_fn(a.dtype, {SCALAR: scalar}, out_dtype=np.bool_)


# -- activations ---------------------------------------------------------------------------------
def unsupported(node, detail: str):
    from workbench.errors import UnsupportedOpError

    return UnsupportedOpError(node.op.name, node.path, detail)


def prepare_relu(node, x, out, act_min: float, act_max: float, int16_ok: bool):
    """Quantized RELU / RELU6 / RELU_N1_TO_1 / RELU_0_TO_1: requantize to the output scale
    (``in_scale / out_scale`` in float32), add the output zero point and clamp to the
    activation's bounds quantized with ``roundf`` (no upper bound for RELU)."""
    dt = x.dtype
    if dt == np.int16 and not int16_ok:
        raise unsupported(node, "LiteRT has no int16 kernel for this activation")
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    if dt == np.int16 and (zi or zo):
        raise node.fail("int16 input and output must have zero point 0")
    m, sh = multiplier(float(f32(si) / f32(so)))
    tmin, tmax = int_range(dt)
    lo = max(tmin, zo + int(round_away(np.float32(act_min) / f32(so))))
    hi = tmax if act_max == math.inf else \
        min(tmax, zo + int(round_away(np.float32(act_max) / f32(so))))

    return tabulate(dt, lambda v: clamp_cast(requant(v - zi, m, sh) + zo, dt, lo, hi))


def prepare_lut8(node, x, out, transform):
    """int8/uint8 activation through a 256-entry table built from ``transform`` (float32)."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    table = lut8(x.dtype, si, zi, so, zo, transform)
    return lambda v: apply_lut8(v, table)


def prepare_lut16(node, x, out, transform):
    """int16 activation through TFLite's 513-entry interpolated table (float32 maths)."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    table = lut16(si, zi, so, zo, transform, np.float32)
    return tabulate(np.int16, lambda v: lut16_lookup(v, table).astype(np.int16))


#: sigmoid(i / 24) in unsigned 0.16 fixed point, as LiteRT tabulates it for its int16 LOGISTIC
#: and TANH (interpolated; tanh(x) = 2 * sigmoid(2x) - 1).
SIGMOID_TABLE_UINT16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
], dtype=np.int64)


def _int16_sigmoid_input(node, x, out, tanh: bool):
    """(multiplier, left shift) of LiteRT's int16 LOGISTIC/TANH: the input rescaled to 3 *
    4096 steps per unit; multiplier 0 for power-of-two scales of 2**-12 (or 2**-11 for TANH),
    which use gemmlowp's fixed-point functions instead. The output must be Q0.15."""
    (si, zi), (so, zo) = qparams(x), qparams(out)
    if zi or zo:
        raise node.fail("int16 input and output must have zero point 0")
    if checked_log2(so) != -15:
        raise node.fail("int16 output scale must be 2**-15")
    log2 = checked_log2(si)
    if log2 is not None and (12 + log2 == 0 or tanh and 12 + log2 == 1):
        return 0, 12 + log2  # power-of-two scale: gemmlowp's fixed-point functions
    mult = si * 4096.0 * 3.0
    left = 0
    while mult <= 32767.0 / 2.0 and left <= 30:
        left += 1
        mult *= 2.0
    return int(mult), left


def prepare_logistic_int16(node, x, out):
    """LiteRT's int16 LOGISTIC: the rescaled |input| indexes the sigmoid table (9 fractional
    bits interpolated), mirrored for negative inputs, rounded to Q0.15."""
    mult, left = _int16_sigmoid_input(node, x, out, tanh=False)
    if mult == 0:
        return tabulate(np.int16, lambda v: gemmlowp_logistic16(v).astype(np.int16))
    rnd = (1 << (left - 1)) if left > 0 else 0
    table = SIGMOID_TABLE_UINT16

    def fn(v):
        d = wrap(v.astype(np.int64) * mult + rnd, 32) >> left
        a = np.abs(d)
        uh = a >> 9
        sat = uh >= 255
        i = np.minimum(uh, 254)
        ua, ub = table[i], table[i + 1]
        r = np.where(sat, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
        r = np.where(d >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
        return wrap(r >> 10, 16).astype(np.int16)

    return tabulate(np.int16, fn)


def prepare_tanh_int16(node, x, out):
    """LiteRT's int16 TANH from the sigmoid table (8 fractional bits interpolated)."""
    mult, left = _int16_sigmoid_input(node, x, out, tanh=True)
    if mult == 0:  # Q3.12 input, or Q4.11 doubled first (saturating)
        return tabulate(np.int16, lambda v: gemmlowp_tanh16(
            _shl_sat16(v, 1) if left == 1 else v).astype(np.int16))
    rnd = (1 << (left - 1)) if left > 0 else 0
    table = SIGMOID_TABLE_UINT16

    def fn(v):
        d = wrap(v.astype(np.int64) * mult + rnd, 32) >> left
        a = np.abs(d)
        uh = a >> 8
        sat = uh >= 255
        i = np.minimum(uh, 254)
        ua, ub = table[i], table[i + 1]
        r = np.where(sat, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
        r = np.where(d >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1)
        return wrap(r >> 8, 16).astype(np.int16)

    return tabulate(np.int16, fn)


def prepare_hard_swish(node, x, out):
    """Quantized HARD_SWISH (int8/uint8), TFLite's 16-bit fixed-point formulation: the input on
    a "hires" scale (``<< 7``) is multiplied by a relu-ish factor in [0, 1] (the input rescaled
    so that 3.0 maps to 2**15, saturated, mapped to [0, 1]) and by the output multiplier."""
    if x.dtype == np.int16:
        raise unsupported(node, "LiteRT has no int16 HARD_SWISH kernel")
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    hires = f32(1.0 / 128.0) * f32(si)
    out_m32, out_exp = multiplier(float(hires / f32(so)))
    relu_m32, relu_exp = multiplier(float(hires / f32(3.0 / 32768.0)))
    if out_exp > 0:
        raise node.fail("HARD_SWISH output multiplier must be below 1")
    out_m16 = downscale_multiplier16(out_m32)
    relu_m16 = downscale_multiplier16(relu_m32)
    lo, hi = int_range(x.dtype)

    def fn(v):
        val = wrap(v.astype(np.int64) - zi, 16)
        hires_v = wrap(val * 128, 16)
        pre_out = srdhm16(hires_v, out_m16)
        r = hires_v
        if relu_exp > 0:
            r = np.clip(r * (1 << (relu_exp - 1)), -32768, 32767)
        r = srdhm16(r, relu_m16)
        if relu_exp > 0:
            r = np.clip(r * 2, -32768, 32767)
        if relu_exp < 0:
            r = rdbp16(r, -relu_exp)
        r = (r + (1 << 15)) >> 1
        prod = r * pre_out  # SaturatingDoublingHighMul: truncating, no rounding
        p = np.where((r == -32768) & (pre_out == -32768), 32767,
                     np.where(prod >= 0, prod >> 15, -((-prod) >> 15)))
        o = wrap(rdbp16(p, -out_exp) + zo, 16)
        return np.clip(o, lo, hi).astype(x.dtype)

    return tabulate(x.dtype, fn)


def downscale_multiplier16(m32: int) -> int:
    """TFLite's DownScaleInt32ToInt16Multiplier (rounded)."""
    if m32 >= INT32_MAX - (1 << 15):
        return 32767
    return (m32 + (1 << 15)) >> 16


def prepare_leaky_relu(node, x, out, alpha: float):
    """Quantized LEAKY_RELU (int8/uint8/int16): two requantizations, identity for inputs >= the
    zero point and ``alpha`` below it (multipliers computed in float32); a negative alpha is
    applied as the negation of its magnitude's product."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    if x.dtype == np.int16 and (zi or zo):
        raise node.fail("int16 input and output must have zero point 0")
    ma, sa = multiplier(float(f32(si) * f32(alpha) / f32(so)))
    mi, s_i = multiplier(float(f32(si) / f32(so)))
    dt = x.dtype

    def fn(v):
        d = v.astype(np.int64) - zi
        pos = requant(d, mi, s_i)
        neg = requant(d, abs(ma), sa)
        neg = -neg if ma < 0 else neg
        return clamp_cast(np.where(d >= 0, pos, neg) + zo, dt)

    return tabulate(x.dtype, fn)


def prepare_prelu(node, x, alpha, out):
    """Quantized PRELU (int8/uint8): ``x - zx`` requantized by ``sx / so`` where it is >= 0,
    else ``(x - zx) * (alpha - za)`` requantized by ``sx * sa / so`` (float32 maths)."""
    _require_scales(node, x, alpha, out)
    (si, zi), (sa, za), (so, zo) = qparams(x), qparams(alpha), qparams(out)
    m1, s1 = multiplier(float(f32(si) / f32(so)))
    m2, s2 = multiplier(float(f32(si) * f32(sa) / f32(so)))
    dt = x.dtype

    def fn(v, a):
        d = v.astype(np.int64) - zi
        pos = requant(d, m1, s1)
        neg = requant(wrap(d * (a.astype(np.int64) - za), 32), m2, s2)
        return clamp_cast(np.where(d >= 0, pos, neg) + zo, dt)

    return fn


_SQRT2_OVER_PI = np.float32(1.1283791670955126 * 0.7071067811865476)  # M_2_SQRTPI * M_SQRT1_2


def gelu_transform(approximate: bool):
    """TFLite's float32 GELU used to fill the int8/uint8 tables (erfc form, or tanh form)."""
    if approximate:
        def fn(v):
            inner = v + f32(0.044715) * v * v * v
            return f32(0.5) * v * (f32(1) + cmath("tanhf", _SQRT2_OVER_PI * inner))
    else:
        def fn(v):
            return f32(0.5) * v * cmath("erfcf", v * f32(-0.7071067811865476))
    return fn


# -- softmax ------------------------------------------------------------------------------------
def _exp_table(in_scale: float, beta: float) -> np.ndarray:
    """TFLite's PopulateSoftmaxLookupTable: ``table[255 - v] = expf(-in_scale * beta * v)``."""
    scale = -f32(in_scale) * f32(beta)
    v = np.arange(256, dtype=np.int64)
    table = np.empty(256, np.float32)
    table[255 - v] = cmath("expf", scale * v.astype(np.float32))
    return table


def _row_exps(x, table):
    """Per row (last axis): the table entries ``exp(scale * (x - max))`` and their float32 sum
    accumulated in order, as LiteRT's loops do."""
    xi = x.astype(np.int64)
    mx = xi.max(axis=-1, keepdims=True)
    e = table[255 - mx + xi]
    total = np.cumsum(e, axis=-1, dtype=np.float32)[..., -1:] if e.shape[-1] else \
        np.zeros(e.shape[:-1] + (1,), np.float32)
    return xi, mx, e, total


def prepare_softmax_8bit(node, x, out, beta: float):
    """int8/uint8 SOFTMAX (LiteRT's optimized kernel): a float32 table of exponentials, the
    row sum accumulated in float32, each probability ``e / (sum * out_scale)`` rounded half away
    from zero plus the output zero point (uint8 outputs: ``+ 0.5`` then truncation, without
    the zero point), saturated to the output type (int8, uint8 or int16)."""
    _require_scales(node, x, out)
    si = qparams(x)[0]
    so, zo = qparams(out)
    if x.dtype == np.int8 and out.dtype == np.int8:
        if zo != -128 or abs(so - 1 / 256) > 0.001 / 256:
            raise node.fail("int8 SOFTMAX output must have zero point -128 and scale 1/256")
    elif not (out.dtype == x.dtype or out.dtype == np.int16):
        raise node.fail(f"{x.dtype} SOFTMAX cannot output {out.dtype}")
    table = _exp_table(si, beta)
    dt = out.dtype
    so32 = f32(so)
    loops = _jit.loops()
    dmin, dmax = int_range(dt)

    def fn(v):
        if v.size == 0:
            return v.astype(dt)
        if loops is not None:  # one compiled pass (numpy's per-call costs dominate here)
            flat = np.ascontiguousarray(v).reshape(-1, v.shape[-1])
            res = np.empty(flat.shape, dt)
            loops.softmax_8bit(flat, table, so32, zo, dt == np.uint8, dmin, dmax, res)
            return res.reshape(v.shape)
        _, _, e, total = _row_exps(v, table)
        inv = f32(1) / (total * so32)
        prob = e * inv
        if dt == np.uint8:
            q = float_to_int32(prob + f32(0.5))
        else:
            q = float_to_int32(round_away(prob)) + zo
        return clamp_cast(q, dt)

    return fn


def prepare_softmax_int16(node, x, out, beta: float):
    """int16 SOFTMAX (TFLite's reference kernel): ``x - max`` rescaled so that [-10, 0] spans
    the int16 range, exp through a 513-entry table, the sum's reciprocal through a second
    table of 1 / (1 + x), products rounded to Q0.15."""
    if len(x.shape) < 1 or len(x.shape) > 4:
        raise node.fail("int16 SOFTMAX supports 1-D to 4-D inputs")
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    if zi or zo:
        raise node.fail("int16 SOFTMAX input and output must have zero point 0")
    if abs(so - 1 / 32768) > 0.001 / 32768:
        raise node.fail("int16 SOFTMAX output scale must be 1/32768")
    rng = 65535
    exp_lut = lut16(10.0 / rng, 32767, 2.0 / rng, 0, lambda v: cmath("exp", v), np.float64)
    recip_lut = lut16(1.0 / rng, -32768, 2.0 / rng, 0, lambda v: 1.0 / (1.0 + v), np.float64)
    m, sh = multiplier(float(f32(si) * f32(beta)) / (10.0 / 65535.0))

    def fn(v):
        if v.size == 0:
            return v.copy()
        xi = v.astype(np.int64)
        diff = xi - xi.max(axis=-1, keepdims=True)
        scaled = requant(diff, m, sh)
        sym = np.clip(scaled + 32767, -32768, 32767)
        exps = lut16_lookup(sym, exp_lut)
        total = exps.sum(axis=-1, keepdims=True)
        headroom = count_leading_zeros32(total)
        shifted = ((total << (headroom - 1)) + (1 << 13)) >> 14
        sym_sum = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767)
        recip = lut16_lookup(sym_sum, recip_lut)
        right = 31 - headroom
        r = (exps * recip + (np.int64(1) << (right - 1))) >> right
        return np.clip(wrap(r, 32), 0, 32767).astype(np.int16)

    return fn


def prepare_log_softmax_8bit(node, x, out):
    """int8/uint8 LOG_SOFTMAX (LiteRT's optimized kernel, float based): the row's log-sum-exp
    from the exponential table, ``(in_scale * (x - max) - log_sum) / out_scale`` rounded half to
    even, plus the zero point. The output must be scale 16/256 with zero point 127 (int8) or
    255 (uint8)."""
    _require_scales(node, x, out)
    si = qparams(x)[0]
    so, zo = qparams(out)
    if so != 16.0 / 256 or zo != (127 if x.dtype == np.int8 else 255):
        raise node.fail("LOG_SOFTMAX output must have scale 16/256 and zero point 127 (int8) "
                        "or 255 (uint8)")
    table = _exp_table(si, 1.0)
    si32, so32 = f32(si), f32(so)
    dt = x.dtype

    def fn(v):
        if v.size == 0:
            return v.copy()
        xi, mx, _, total = _row_exps(v, table)
        log_sum = cmath("logf", total)
        scale = si32 / so32
        pre = (si32 * mx.astype(np.float32) + log_sum) / so32
        log_prob = scale * xi.astype(np.float32) - pre
        q = float_to_int32(np.rint(log_prob) + np.float32(zo))
        return clamp_cast(q, dt)

    return fn


# -- reductions ---------------------------------------------------------------------------------
def _moved(x: np.ndarray, axes) -> np.ndarray:
    """``x`` with the reduced axes moved last and flattened (row-major order kept)."""
    keep = [i for i in range(x.ndim) if i not in axes]
    y = np.transpose(x, keep + list(axes))
    n = 1
    for a in axes:
        n *= x.shape[a]
    return y.reshape(tuple(x.shape[i] for i in keep) + (n,))


def _sum_axes(v: np.ndarray, axes, acc_dt) -> np.ndarray:
    """``np.add.reduce(v, axes, dtype=acc_dt)`` (the reduced axes dropped); 8-bit values summed
    over consecutive axes into int32 by one compiled pass (numpy's casting reduce over middle
    axes costs ~1.6 ns an element)."""
    axes = sorted({int(a) % v.ndim for a in axes})
    loops = _jit.loops()
    if loops is None or not axes or acc_dt != np.int32 or v.dtype.itemsize != 1 or \
            axes != list(range(axes[0], axes[-1] + 1)) or not v.size:
        return np.add.reduce(v, axis=tuple(axes), dtype=acc_dt)
    shape = v.shape
    a, c = math.prod(shape[:axes[0]]), math.prod(shape[axes[-1] + 1:])
    out = np.empty((a, c), np.int32)
    loops.middle_sums(np.ascontiguousarray(v).reshape(a, -1, c), out)
    return out.reshape(tuple(d for i, d in enumerate(shape) if i not in axes))


def prepare_mean(node, x, out, keep_dims: bool):
    """Quantized MEAN. int8/uint8 4-D inputs averaged over H and W with ``keep_dims`` take
    LiteRT's optimized kernel: the raw sum times ``in_scale / (count * out_scale)`` (float32)
    plus a bias for the zero points; channels in the kernel's 16-wide vector blocks round the
    final shift half upward (NEON's rounding shift), the others half away from zero. Everything
    else (and int16) takes the reference kernel: the zero-point-corrected sum requantized with
    the multiplier divided by the count in integer arithmetic."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    dt = x.dtype
    if dt == np.int16 and (zi or zo):
        raise node.fail("int16 MEAN input and output must have zero point 0")
    m, sh = multiplier(si / so)

    def reference_requant(total, n):
        shift = min(n.bit_length() - 1, 32, 31 + sh)
        m_n = wrap(np.int64((m << shift) // n), 32)
        return clamp_cast(requant(wrap(total - zi * n, 32), m_n, sh - shift) + zo, dt)

    tables = {}  # per count: every output of the few possible sums (8-bit, small counts)

    def reference(v, axes):
        n = math.prod(v.shape[a] for a in axes)
        # (integer sums are exact in any order: one reduce, no int64 copy of the tensor; in
        # int32 when the count bounds the sum below 2**31, ~2.5x faster)
        acc = np.int32 if n * 2 ** (8 * v.dtype.itemsize) < 2**31 else np.int64
        total = _sum_axes(v, axes, acc)
        if n == 0:
            return np.zeros(total.shape, dt)
        lo_sum, hi_sum = n * int_range(dt)[0], n * int_range(dt)[1]
        if hi_sum - lo_sum < 1 << 16:
            if n not in tables:
                tables.clear()
                sums = np.arange(lo_sum, hi_sum + 1, dtype=np.int64)
                tables[n] = reference_requant(sums, n)
            return tables[n][total - lo_sum]
        return reference_requant(wrap(total.astype(np.int64), 32), n)

    consts = {}  # per (h, w, depth): the float32 maths of the kernel's prepare, done once

    def spatial_consts(h, w, depth):
        num = f32(h * w)
        temp = f32(zi) * f32(si) / f32(so)
        temp = temp + f32(0.5) if temp > 0 else temp - f32(0.5)
        bias = zo - int(np.trunc(temp))
        mq, shq = multiplier(float(f32(si) / (num * f32(so))))
        vec_channels = np.arange(depth) < depth - depth % 16
        lo_sum, hi_sum = h * w * int_range(dt)[0], h * w * int_range(dt)[1]
        if hi_sum - lo_sum >= 1 << 16:
            return bias, mq, shq, vec_channels, None
        # Few possible sums (7x7 int8: 12545): every output, for each rounding, tabulated
        # once; eval is then a reduce and one gather (numpy's per-call costs dominated).
        sums = np.arange(lo_sum, hi_sum + 1, dtype=np.int64)
        table = np.concatenate([spatial_requant(sums, bias, mq, shq, True),
                                spatial_requant(sums, bias, mq, shq, False)])
        start = np.where(vec_channels, 0, sums.size) - lo_sum
        return bias, mq, shq, vec_channels, (table, start.astype(np.int64))

    def spatial_requant(acc, bias, mq, shq, vec_channels):
        scalar = requant(acc, mq, shq)
        high = fp.saturating_rounding_doubling_high_mul(neon_shift(acc, max(shq, 0)), mq)
        right = max(-shq, 0)
        vector = (high + ((np.int64(1) << right) >> 1)) >> right  # vrshlq: ties toward +inf
        r = np.where(vec_channels, vector, scalar)
        return clamp_cast(r + bias, dt)

    def spatial(v):
        _, h, w, depth = v.shape
        key = (h, w, depth)
        if key not in consts:
            consts.clear()  # (one shape at a time: a resized input replaces it)
            consts[key] = spatial_consts(h, w, depth)
        bias, mq, shq, vec_channels, tab = consts[key]
        # Integer sums are exact in any order; int32 holds h*w*128 below 2**31 (no int64
        # copy of the tensor).
        acc_dt = np.int32 if h * w * 256 < 2**31 else np.int64
        acc = _sum_axes(v, (1, 2), acc_dt)
        if tab is not None:
            table, start = tab
            return table[acc + start].reshape(v.shape[0], 1, 1, depth)
        acc = acc.astype(np.int64).reshape(v.shape[0], 1, 1, depth)
        return spatial_requant(acc, bias, mq, shq, vec_channels)

    def fn(v, axes):
        if v.size == 0:
            return np.zeros(tuple(d for i, d in enumerate(v.shape) if i not in axes), dt)
        if dt != np.int16 and keep_dims and v.ndim == 4 and tuple(sorted(axes)) == (1, 2):
            return spatial(v).reshape(v.shape[0], v.shape[3])
        return reference(v, axes)

    return fn


def prepare_sum(node, x, out):
    """Quantized SUM (LiteRT's optimized kernel, float based): the int32 sum times
    ``in_scale / out_scale`` minus the zero points' contribution, in float32, rounded half away
    from zero, plus the output zero point."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    if x.dtype == np.int16 and (zi or zo):
        raise node.fail("int16 SUM input and output must have zero point 0")
    scale = f32(si) / f32(so)
    dt = x.dtype

    def fn(v, axes):
        moved = _moved(v.astype(np.int64), axes)
        n = moved.shape[-1]
        if v.size == 0:
            return np.zeros(moved.shape[:-1], dt)
        total = wrap(moved.sum(axis=-1), 32)
        bias = f32(-zi) * scale * f32(n)
        r = round_away(total.astype(np.float32) * scale + bias)
        return clamp_cast(float_to_int32(r) + zo, dt)

    return fn


def prepare_reduce_prod(node, x, out):
    """Quantized REDUCE_PROD (int8/int16): the zero-point-corrected values multiplied one at a
    time in row-major order, each partial product rescaled by ``in_scale / out_scale**(1/n)``
    with the int64 requantization, the result rescaled once more. LiteRT's optimized kernel
    drops reduced axes of size 1, so reducing only such axes copies the input unchanged."""
    if x.dtype == np.uint8:
        raise unsupported(node, "LiteRT has no quantized uint8 REDUCE_PROD kernel")
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    if x.dtype == np.int16 and (zi or zo):
        raise node.fail("int16 REDUCE_PROD input and output must have zero point 0")
    dt = x.dtype

    def fn(v, axes):
        if not any(v.shape[a] != 1 for a in axes):
            return v.copy()
        moved = _moved(v.astype(np.int64), axes)
        if v.size == 0:
            return np.zeros(moved.shape[:-1], dt)
        n = moved.shape[-1]
        m, sh = multiplier(si / math.pow(so, 1.0 / n))
        mul = fp.multiply_by_quantized_multiplier_int64
        acc = moved[..., 0] - zi
        for k in range(1, n):
            acc = mul(acc * (moved[..., k] - zi), m, sh)
        return clamp_cast(mul(acc, m, sh) + zo, dt)

    return fn


# -- RSQRT, ABS, LOG ----------------------------------------------------------------------------
def _sat_shift_left32(x: int, e: int) -> int:
    """gemmlowp's SaturatingRoundingMultiplyByPOT<e> with e > 0 on one int32."""
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << e


def _srdhm(a: int, b: int) -> int:
    """:func:`fp.saturating_rounding_doubling_high_mul` on two Python ints (no numpy: the
    scalar Newton-Raphson loops below call it often)."""
    if a == b == INT32_MIN:
        return INT32_MAX
    s = a * b + ((1 << 30) if a * b >= 0 else 1 - (1 << 30))
    return s >> 31 if s >= 0 else -((-s) >> 31)


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def inv_sqrt_multiplier(value: int) -> tuple[int, int]:
    """TFLite's GetInvSqrtQuantizedMultiplierExp (reverse shift): 1/sqrt(value) as a fixed-point
    multiplier and (left) shift, from five Newton-Raphson steps in gemmlowp Q3.28."""
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    clz = 32 - value.bit_length()
    pairs = (clz - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    f3_input = value >> 1
    half_input = (f3_input >> 1) + ((f3_input & 1) > (f3_input < 0))  # RoundingDivideByPOT 1
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28
    for _ in range(5):
        x3 = _sat_shift_left32(_srdhm(_srdhm(x, x), x), 6)
        x = _sat_shift_left32(_wrap32(_srdhm(half_three, x) - _srdhm(half_input, x3)), 3)
    x = _srdhm(x, 1518500250)
    if shift < 0:
        x = _wrap32(x << -shift)
        shift = 0
    return x, -shift


def inv_sqrt_multiplier_array(values) -> tuple[np.ndarray, np.ndarray]:
    """:func:`inv_sqrt_multiplier` of every value of an int array, one Newton solve per
    distinct value: (multipliers, left shifts), shaped like ``values``."""
    v = np.asarray(values, dtype=np.int64)
    uniq, which = np.unique(v, return_inverse=True)
    pairs = np.array([inv_sqrt_multiplier(int(a)) for a in uniq], np.int64).reshape(-1, 2)
    which = which.reshape(v.shape)
    return pairs[which, 0], pairs[which, 1]


def prepare_rsqrt(node, x, out):
    """Quantized RSQRT. int8: per input value, TFLite's fixed-point inverse square root
    (:func:`inv_sqrt_multiplier`) rescaled by ``1 / (sqrt(in_scale) * out_scale)`` (a table of
    the 256 results); 0 maps to the largest output. int16: an interpolated 513-entry table.
    Inputs below the zero point fail, as in LiteRT."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    dt = x.dtype
    if dt == np.uint8:
        raise unsupported(node, "LiteRT has no uint8 RSQRT kernel")
    if dt == np.int16:
        if zi or zo:
            raise node.fail("int16 RSQRT input and output must have zero point 0")
        so32 = f32(so)

        def transform(v):
            safe = np.where(v > 0, v, np.float32(1))
            r = f32(1) / cmath("sqrtf", safe)
            return np.where(v <= 0, f32(32767) * so32, r).astype(np.float32)

        table16 = lut16(si, zi, so, zo, transform, np.float32)
        lookup = tabulate(np.int16, lambda v: lut16_lookup(v, table16).astype(np.int16))
    else:
        m, sh = multiplier(1.0 / float(cmath("sqrtf", f32(si)) * f32(so)))
        table = np.empty(256, np.int8)
        for q in range(-128, 128):
            value = q - zi
            if value <= 0:
                table[q + 128] = 127  # negative values are refused at run time
                continue
            inv, inv_shift = inv_sqrt_multiplier(value)
            data = int(fp.multiply_by_quantized_multiplier(1, inv, inv_shift + 20))
            r = int(fp.multiply_by_quantized_multiplier(data, m, sh - 20)) + zo
            table[q + 128] = min(max(r, -128), 127)
        lookup = tabulate(np.int8, lambda v: table[v + 128])

    def fn(v):
        if v.size and v.min() < zi:
            from workbench.errors import InputError

            raise InputError(f"{node.path}: Rsqrt is only defined for positive values")
        return lookup(v)

    return fn


def prepare_abs(node, x, out):
    """Quantized ABS (int8/int16): ``|x - zi|``, requantized by ``in_scale / out_scale`` when the
    scales differ, plus the output zero point, saturated."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    dt = x.dtype
    if dt == np.uint8:
        raise unsupported(node, "LiteRT has no uint8 ABS kernel")
    if dt == np.int16 and (zi or zo):
        raise node.fail("int16 ABS input and output must have zero point 0")
    rescale = f32(si) != f32(so)
    m, sh = multiplier(float(f32(si) / f32(so))) if rescale else (0, 0)

    def fn(v):
        a = np.abs(v.astype(np.int64) - zi)
        return clamp_cast((requant(a, m, sh) if rescale else a) + zo, dt)

    return tabulate(x.dtype, fn)


def prepare_log(node, x, out):
    """Quantized LOG (int8/int16) through a table of ``logf`` (values <= 0 give the output's
    lowest value)."""
    _require_scales(node, x, out)
    (_, zi), (so, zo) = qparams(x), qparams(out)
    dt = x.dtype
    if dt == np.uint8:
        raise unsupported(node, "LiteRT has no uint8 LOG kernel")
    if dt == np.int16 and (zi or zo):
        raise node.fail("int16 LOG input and output must have zero point 0")
    out_min = f32(int_range(dt)[0] - zo) * f32(so)

    def transform(v):
        safe = np.where(v > 0, v, np.float32(1))
        return np.where(v <= 0, out_min, cmath("logf", safe)).astype(np.float32)

    if dt == np.int16:
        return prepare_lut16(node, x, out, transform)
    return prepare_lut8(node, x, out, transform)


def prepare_sqrt(node, x, out):
    """Quantized SQRT (int8/int16) as LiteRT 2.x computes it (measured: its source is newer than
    the public kernels we read): ``sqrtf(in_scale * (x - zi)) / out_scale`` in float32,
    truncated toward zero, plus the output zero point, saturated (a table over every input
    value, built in prepare; IEEE square roots are correctly rounded, so numpy's equal the C
    library's). Inputs below the zero point fail at run time."""
    _require_scales(node, x, out)
    (si, zi), (so, zo) = qparams(x), qparams(out)
    dt = x.dtype
    if dt == np.uint8:
        raise unsupported(node, "LiteRT has no uint8 SQRT kernel")
    lo, hi = int_range(dt)
    d = (np.arange(lo, hi + 1, dtype=np.int64) - zi).astype(np.float32)
    with np.errstate(invalid="ignore"):
        r = float_to_int32(np.sqrt(f32(si) * d) / f32(so))
    table = clamp_cast(r + zo, dt)

    def fn(v):
        if v.size and v.min() < zi:
            from workbench.errors import InputError

            raise InputError(f"{node.path}: Sqrt is only defined for non-negative values")
        return table[v.astype(np.int64) - lo]

    return fn


# -- DIV ----------------------------------------------------------------------------------------
def _sat_shift_left(x, e: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingMultiplyByPOT<e> (e > 0) on int32 values."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - e)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << e))


def one_over_one_plus_x(a) -> np.ndarray:
    """gemmlowp's one_over_one_plus_x_for_x_in_0_1 on Q0.31 values (Newton-Raphson in Q2.29)."""
    srdhm = fp.saturating_rounding_doubling_high_mul
    a = np.asarray(a, dtype=np.int64)
    total = a + INT32_MAX
    half_den = np.where(total >= 0, (total + 1) // 2, -((-total + 1) // 2))  # RoundingHalfSum
    x = wrap(1515870810 + srdhm(half_den, -1010580540), 32)  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = wrap((1 << 29) - srdhm(half_den, x), 32)
        x = wrap(x + _sat_shift_left(srdhm(x, one_minus), 2), 32)
    return _sat_shift_left(x, 1)


def reciprocal(x) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's GetReciprocal(x, 31): (Q0.31 reciprocal, number of bits over unit)."""
    x = np.asarray(x, dtype=np.int64)
    headroom = count_leading_zeros32(x)
    shifted = wrap(((x << headroom) & 0xFFFFFFFF) - (1 << 31), 32)
    return one_over_one_plus_x(shifted), 31 - headroom


def count_leading_sign_bits32(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    return count_leading_zeros32((x ^ (x >> 63)) & 0xFFFFFFFF) - 1


def prepare_div(node, a, b, out):
    """Quantized DIV (int8/uint8/int16) as TFLite's reference kernel: the divisor's fixed-point
    reciprocal (gemmlowp's Newton-Raphson), the dividend left-aligned, then rescaled by
    ``s1 / (s2 * so)``. A divisor equal to its zero point fails at run time."""
    _require_scales(node, a, b, out)
    (s1, z1), (s2, z2), (so, zo) = qparams(a), qparams(b), qparams(out)
    lo, hi = fused_range(node, out)
    dt = out.dtype
    m, sh = multiplier(float(f32(s1) / (f32(s2) * f32(so))))
    srdhm = fp.saturating_rounding_doubling_high_mul

    def scalar(x, y):
        v1, v2 = x - z1, y - z2
        v1 = np.where(v2 < 0, -v1, v1)
        v2 = np.abs(v2)
        inv, recip_shift = reciprocal(np.where(v2 == 0, 1, v2))
        headroom = count_leading_sign_bits32(v1)
        quotient = srdhm(wrap(v1 << headroom, 32), inv)
        total_shift = sh - recip_shift - headroom
        r = wrap(rdbp_x86(srdhm(quotient, m), -total_shift), 32)
        return clamp_cast(r + zo, dt, lo, hi)

    table_fn = binary_fn(dt, {SCALAR: scalar})

    def fn(x, y):
        if np.any(y == z2):
            from workbench.errors import InputError

            raise InputError(f"{node.path}: quantized division by zero (divisor at its zero "
                             "point)")
        return table_fn(x, y)

    return fn


# -- gemmlowp's 16-bit fixed-point logistic and tanh ---------------------------------------------
# LiteRT runs int16 LOGISTIC/TANH with a power-of-two input scale of 2**-12 (or 2**-11 for TANH)
# through gemmlowp's fixed-point functions: Q3.12 input, Q0.15 output.
def _c16(raw32: int) -> int:
    """A gemmlowp constant given as an int32 raw value, rescaled to int16 (rounding)."""
    return int(rdbp(raw32, 16))


def _shl_sat16(x, e: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT<e> (e > 0) on int16 values."""
    threshold = (1 << (15 - e)) - 1
    return np.where(x > threshold, 32767, np.where(x < -threshold, -32768, x << e))


def _exp_quarter16(a):
    """exp(a) for a in [-1/4, 0) (Q0.15)."""
    mul = srdhm16
    constant, third = _c16(1895147668), _c16(715827883)
    x = wrap(a + (1 << 12), 16)
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    inner = rdbp(wrap(mul(wrap(rdbp(x4, 2) + x3, 16), third) + x2, 16), 1)
    return np.clip(constant + mul(constant, wrap(x + inner, 16)), -32768, 32767)


def _exp_negative16(a, integer_bits: int):
    """gemmlowp's exp_on_negative_values on int16 Q(integer_bits) inputs, Q0.15 result."""
    frac = 15 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = wrap((a & (quarter - 1)) - quarter, 16)
    result = _exp_quarter16(_shl_sat16(a_mod, integer_bits))
    remainder = wrap(a_mod - a, 16)
    for exponent, m in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                        (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            bit = wrap(np.int64(1) << (frac + exponent), 16)
            result = np.where((remainder & bit) != 0, srdhm16(result, _c16(m)), result)
    if integer_bits > 5:  # below -32 the result is 0
        result = np.where(a < _c16(-(1 << (36 - integer_bits))), 0, result)
    return np.where(a == 0, 32767, result)


def _newton_reciprocal16(a, minus_one: bool):
    """(1 - a) / (1 + a) (``minus_one``) or 1 / (1 + a) for a in [0, 1) in Q0.15."""
    total = a + 32767
    half = np.where(total >= 0, (total + 1) // 2, -((-total + 1) // 2))  # RoundingHalfSum
    x = wrap(_c16(1515870810) + srdhm16(half, _c16(-1010580540)), 16)
    for _ in range(3):
        one_minus = wrap((1 << 13) - srdhm16(half, x), 16)
        x = wrap(x + _shl_sat16(srdhm16(x, one_minus), 2), 16)
    return _shl_sat16(wrap(x - (1 << 13), 16), 2) if minus_one else _shl_sat16(x, 1)


def gemmlowp_logistic16(a) -> np.ndarray:
    """gemmlowp::logistic on Q3.12 int16 values (Q0.15 result)."""
    a = np.asarray(a, dtype=np.int64)
    abs_a = np.where(a > 0, a, wrap(-a, 16))
    positive = _newton_reciprocal16(_exp_negative16(wrap(-abs_a, 16), 3), minus_one=False)
    negative = wrap(32767 - positive, 16)
    return np.where(a == 0, _c16(1 << 30), np.where(a > 0, positive, negative))


def gemmlowp_tanh16(a, integer_bits: int = 3) -> np.ndarray:
    """gemmlowp::tanh on int16 values with ``integer_bits`` integer bits (Q3.12 by default;
    Q0.15 result)."""
    a = np.asarray(a, dtype=np.int64)
    n = np.where(a < 0, a, wrap(-a, 16))
    # exp(2n): the same raw values read with one more integer bit.
    t = _newton_reciprocal16(_exp_negative16(n, integer_bits + 1), minus_one=True)
    return np.where(a == 0, 0, np.where(a < 0, wrap(-t, 16), t))
