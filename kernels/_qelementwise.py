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
from functools import lru_cache

import numpy as np

from workbench.quantize import fixed_point as fp

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
    """``static_cast<int32_t>(float)``: truncation toward zero; NaN and values outside int32 give
    INT32_MIN as x86's cvttss2si does."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x) & (x > INT32_MIN - 1.0) & (x < 2.0**31)
    return np.where(ok, np.trunc(np.where(ok, x, 0.0)), INT32_MIN).astype(np.int64)


@lru_cache(maxsize=None)
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
            import scipy.special  # noqa: PLC0415 - optional dependency
            return scipy.special.erfc(x.astype(np.float64)).astype(np.float32)
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
    return np.concatenate([lut, last]).astype(np.int64)


def lut16_lookup(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's ``LUTLookup`` for int16 (interpolating between the 513 entries); returns
    int64 values already wrapped to int16."""
    x = np.asarray(x, dtype=np.int64)
    index = 256 + (x >> 7)
    offset = x & 0x7F
    base = lut[index]
    slope = lut[index + 1] - base
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


def checked_log2(x: float) -> int | None:
    """TFLite's CheckedLog2: the rounded log2 of ``x`` when ``x`` is (within 1e-3) a power of
    two, else None."""
    x_log2 = math.log(x) * (1.0 / math.log(2.0))
    r = math.floor(x_log2 + 0.5) if x_log2 >= 0 else -math.floor(-x_log2 + 0.5)
    return int(r) if abs(x_log2 - r) < 1e-3 else None


def count_leading_zeros32(x) -> np.ndarray:
    """Number of leading zero bits of values taken as uint32 (32 for 0)."""
    x = np.asarray(x, dtype=np.int64) & 0xFFFFFFFF
    _, bit_length = np.frexp(x.astype(np.float64))  # exact below 2**53
    return np.where(x == 0, 32, 32 - bit_length).astype(np.int64)
