"""Fixed-point helpers: properties that pin TFLite's double-rounding semantics. Bit-exactness
against LiteRT itself is proven by the integer kernel tests that use these helpers."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.quantize.fixed_point import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)


@pytest.mark.parametrize("m", [1e-6, 0.0039, 0.25, 0.5, 0.7, 0.999999999, 1.0, 1.5, 3.2, 1e3])
def test_quantize_multiplier_represents_m(m):
    q, shift = quantize_multiplier(m)
    assert 2**30 <= q < 2**31
    assert abs(q * 2.0 ** (shift - 31) - m) <= m * 2**-30


def test_quantize_multiplier_edges():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-20) == (0, 0)  # shift < -31: everything would shift out
    q, s = quantize_multiplier(1 - 2**-40)  # rounds up to 2**31: halved, shift + 1
    assert (q, s) == (2**30, 1)


def test_high_mul_rounds_half_away_and_saturates():
    assert int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX
    # 2**30 * 2**30 * 2 / 2**32 = 2**29 exactly
    assert int(saturating_rounding_doubling_high_mul(2**30, 2**30)) == 2**29
    # (3 * 2**30 + 2**30) / 2**31 = 2 ; negative side truncates toward zero after the nudge
    assert int(saturating_rounding_doubling_high_mul(3, 2**30)) == 2
    assert int(saturating_rounding_doubling_high_mul(-3, 2**30)) == -1
    assert int(saturating_rounding_doubling_high_mul(-5, 2**30)) == -2


def test_rounding_divide_by_pot_half_away_from_zero():
    x = np.array([5, -5, 6, -6, 7, -7, 0])
    np.testing.assert_array_equal(rounding_divide_by_pot(x, 1), [3, -3, 3, -3, 4, -4, 0])
    np.testing.assert_array_equal(rounding_divide_by_pot(x, 0), x)


def test_multiply_by_quantized_multiplier_matches_real_scaling():
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**20), 2**20, 10_000)
    for m in (0.0123, 0.5, 0.9, 2.5):
        q, s = quantize_multiplier(m)
        got = multiply_by_quantized_multiplier(x, q, s)
        assert np.max(np.abs(got - x * m)) <= 1  # at most one step from the exact product
    # per-channel broadcasting
    qs = [quantize_multiplier(m) for m in (0.1, 0.2)]
    got = multiply_by_quantized_multiplier(np.array([[100, 100]]), [q for q, _ in qs],
                                           [s for _, s in qs])
    np.testing.assert_array_equal(got, [[10, 20]])
