"""Fixed-point helpers exactly as LiteRT's built-in integer kernels compute them.

All functions are vectorized over numpy arrays (int64 internally, so intermediate products never
overflow). LiteRT does not use one rounding everywhere: the reference kernels use TFLite's
*double-rounding* variant (gemmlowp semantics, the default build), while some optimized paths
round the final shift half upward or round once; each kernel says which it uses, and its
tests against LiteRT prove the choice:

* :func:`quantize_multiplier` — a real multiplier ``m`` as ``(q, shift)`` with
  ``m ~= q * 2**(shift - 31)``, ``q`` in ``[2**30, 2**31)``; ``q`` is rounded half away from
  zero (``std::round``), a ``q`` of exactly ``2**31`` is halved with ``shift + 1``, shifts below
  -31 give ``(0, 0)``.
* :func:`saturating_rounding_doubling_high_mul` — ``(a * b + nudge) / 2**31`` truncated toward
  zero, where the nudge is ``2**30`` for non-negative products and ``1 - 2**30`` otherwise;
  ``a == b == INT32_MIN`` saturates to ``INT32_MAX``.
* :func:`rounding_divide_by_pot` — an arithmetic right shift rounding half away from zero.
* :func:`multiply_by_quantized_multiplier` — left shift, high multiply, rounding right shift
  (the two roundings are why this is "double rounding").
* :func:`multiply_by_quantized_multiplier_int64` — the int64-accumulator variant used by 16x8
  kernels: the multiplier reduced to 16 bits (rounded), one rounding shift.
* :func:`multiply_by_quantized_multiplier_single` — one rounding (half up) of ``x * q`` by
  ``31 - shift`` bits in int64: TFLite's single-rounding variant, which LiteRT's int16
  FULLY_CONNECTED uses on its int64 accumulators (measured).
* :func:`multiply_by_quantized_multiplier_upward` — what LiteRT's optimized GEMM kernels (ruy's
  x86 paths: CONV_2D, FULLY_CONNECTED, BATCH_MATMUL) compute: the same high multiply, but the
  final right shift rounds half *upward* (toward +inf) instead of away from zero.

Why double rounding by default: LiteRT compiles its kernels without ``TFLITE_SINGLE_ROUNDING``;
the other variants were measured against LiteRT 2.3's x86 build (see the kernels' docstrings).
"""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import ModelError

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def quantize_multiplier(m: float) -> tuple[int, int]:
    """``(quantized_multiplier, shift)`` of a real multiplier (TFLite's QuantizeMultiplier)."""
    m = float(m)
    if m == 0.0:
        return 0, 0
    if not math.isfinite(m):
        raise ModelError(f"requantization multiplier {m} is not finite (a quantization scale "
                         "is zero, denormal, infinite or NaN)")
    frac, shift = math.frexp(m)
    q = math.floor(abs(frac) * 2**31 + 0.5)  # std::round: half away from zero
    q = q if frac >= 0 else -q
    if abs(q) == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if q > INT32_MAX:
        raise ValueError(f"multiplier {m} does not fit the fixed-point format")
    return int(q), int(shift)


def quantize_multipliers(ms) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of :func:`quantize_multiplier` (per-channel scales)."""
    pairs = [quantize_multiplier(m) for m in np.asarray(ms, dtype=np.float64).reshape(-1)]
    return (np.array([p[0] for p in pairs], dtype=np.int64),
            np.array([p[1] for p in pairs], dtype=np.int64))


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values (as int64 arrays)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C++ integer division truncates toward zero.
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: ``x / 2**exponent`` rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier (int32 input, double rounding).

    ``shift`` > 0 shifts left before the high multiply, ``shift`` < 0 rounds right after it.
    Arrays broadcast, so per-channel multipliers apply along the last axis."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    # The left-shifted value wraps to int32 as the C++ code's int32 multiply would.
    shifted = ((x << left) + 2**31) % 2**32 - 2**31
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted,
                                                                      quantized_multiplier),
                                  right)


def multiply_by_quantized_multiplier_int64(x, quantized_multiplier, shift) -> np.ndarray:
    """TFLite's MultiplyByQuantizedMultiplier for int64 accumulators (16x8 kernels): the
    multiplier is reduced to 16 bits with rounding, then one rounding right shift by
    ``15 - shift``; the result is truncated to int32 as in C++."""
    x = np.asarray(x, dtype=np.int64)
    qm = np.asarray(quantized_multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    reduced = np.where(qm < 0x7FFF0000, (qm + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    # int64 arithmetic wraps in C++; Python-sized products do not occur for real layers.
    y = x * reduced + (np.int64(1) << (total - 1))
    r = y >> total
    return ((r + 2**31) % 2**32 - 2**31).astype(np.int64)


def rounding_right_shift_upward(x, exponent) -> np.ndarray:
    """``x / 2**exponent`` rounded half toward +inf (``(x + 2**(e-1)) >> e``)."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    return (x + ((np.int64(1) << e) >> 1)) >> e


def multiply_by_quantized_multiplier_upward(x, quantized_multiplier, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier as LiteRT's optimized integer GEMM (ruy, x86) rounds it:
    left shift (wrapping to int32), rounding doubling high multiply, then a right shift that
    rounds ties toward +inf. It differs from :func:`multiply_by_quantized_multiplier` only for
    negative values exactly halfway between two outputs (measured against LiteRT 2.x)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = ((x << left) + 2**31) % 2**32 - 2**31
    return rounding_right_shift_upward(
        saturating_rounding_doubling_high_mul(shifted, quantized_multiplier), right)


def multiply_by_quantized_multiplier_single(x, quantized_multiplier, shift) -> np.ndarray:
    """``(x * q + 2**(30 - shift)) >> (31 - shift)`` in int64 (wrapping as C++ would), then
    truncated to int32: the single-rounding MultiplyByQuantizedMultiplier."""
    x = np.asarray(x, dtype=np.int64)
    total = 31 - np.asarray(shift, dtype=np.int64)
    r = (x * np.asarray(quantized_multiplier, np.int64) + (np.int64(1) << (total - 1))) >> total
    return (r + 2**31) % 2**32 - 2**31


def saturate(x, dtype) -> np.ndarray:
    """Clamp to the range of an integer dtype and cast."""
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def activation_range(act: int, scale: float, zero_point: int, dtype) -> tuple[int, int]:
    """Quantized clamp bounds of a fused activation (TFLite's
    CalculateActivationRangeQuantized): RELU/RELU6/RELU_N1_TO_1 bounds quantized with
    round-half-away-from-zero from a float32 quotient, intersected with the dtype range; others:
    the full range."""
    from workbench.ir.ops import ActivationFunctionType as A

    info = np.iinfo(dtype)
    lo, hi = info.min, info.max

    def q(v: float) -> int:
        # TfLiteRound(f / scale) with f and scale floats: a float32 quotient, rounded half
        # away from zero exactly (the + 0.5 in double cannot round for a float32 value).
        with np.errstate(all="ignore"):
            t = float(np.float32(v) / np.float32(scale))
        if not -2.0**31 <= t <= 2.0**31:  # LiteRT: no_integer_overflow_from_quantization
            raise ModelError(f"fused activation bound {v} quantized with output scale "
                             f"{float(scale):g} overflows int32 (LiteRT refuses it)")
        r = int(math.floor(abs(t) + 0.5)) * (1 if t >= 0 else -1)
        if r >= 2**31:  # float32(INT32_MAX) passes LiteRT's check; the cast gives INT32_MIN
            r = INT32_MIN
        return ((zero_point + r + 2**31) % 2**32) - 2**31  # int32 arithmetic

    if act == A.RELU:
        lo = max(lo, q(0.0))
    elif act == A.RELU6:
        lo, hi = max(lo, q(0.0)), min(hi, q(6.0))
    elif act == A.RELU_N1_TO_1:
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi
