"""The float64 requantization path (with per-channel constants tiled to long rows) against the
step-by-step fixed-point reference helpers, which mirror LiteRT's integer code.

Accumulators are adversarial: for every channel, the values exactly at, one below and one above
the accumulators where the requantized result steps (ties of every rounding variant, the
``GEMMLOWP`` negative-tie threshold), at the clamp edges, and at the proven bound, in arrays
whose row counts do and do not fill whole tiles.
"""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels import _qconv as q

from workbench.quantize import fixed_point as fp

REFS = {q.GEMMLOWP: fp.multiply_by_quantized_multiplier,
        q.UPWARD: fp.multiply_by_quantized_multiplier_upward,
        q.INT64: fp.multiply_by_quantized_multiplier_int64,
        q.SINGLE: fp.multiply_by_quantized_multiplier_single}


def _multipliers(rng, channels: int) -> np.ndarray:
    """Exact powers of two (exact ties), thirds, and random magnitudes below one."""
    special = np.array([2.0**-9, 0.5, 1 / 3, 2.0**-20, 0.75, 0.0123, 2.5e-5, 0.999])
    m = np.exp(rng.uniform(np.log(1e-6), np.log(0.99), channels))
    m[: min(channels, special.size)] = special[:channels]
    return rng.permutation(m)


def _boundary_accs(qm, sh, offset, bound: int, per_channel: int, rng) -> np.ndarray:
    """``[rows, C]`` accumulators (``|acc| <= bound``): for each channel, the integers around
    the accumulators where the reference result steps (within +-2 of each tie)."""
    cols = []
    for qmc, shc, off in zip(qm, sh, offset):
        m = int(qmc) * 2.0 ** (int(shc) - 31)  # the multiplier the integer code implements
        # Results near k step at acc ~ (k + 1/2) / m - off (round-to-nearest variants): aim at
        # steps spread over the reachable result range, then take every integer nearby.
        top = max(1, int(bound * m))
        ks = np.unique(np.concatenate([np.arange(-40, 40), rng.integers(-top, top + 1, 200)]))
        centers = np.round((ks + 0.5) / m) - off
        # The GEMMLOWP threshold: acc * q + 2**30 < 0 at acc ~ -2**30 / q (after the left shift)
        left = max(int(shc), 0)
        centers = np.append(centers, -(2**30) // (int(qmc) << left) - off)
        acc = (centers[:, None] + np.arange(-2, 3)).reshape(-1)
        acc = np.clip(acc, -bound, bound).astype(np.int64)
        acc = np.concatenate([acc, [-bound, bound, 0]])
        cols.append(rng.permutation(np.resize(acc, per_channel)))
    return np.stack(cols, axis=1)


def _expected(acc, qm, sh, rounding, offset, zp, lo, hi, upward=None):
    a = acc.astype(np.int64) + offset
    r = REFS[rounding](a, qm, sh)
    if upward is not None:
        r = np.where(upward, REFS[q.UPWARD](a, qm, sh), r)
    return np.clip(r + zp, lo, hi)


@pytest.mark.parametrize("rounding", [q.UPWARD, q.GEMMLOWP, q.INT64, q.SINGLE])
@pytest.mark.parametrize("channels", [1, 3, 16, 96, 1500])
def test_float_path_equals_reference_at_every_boundary(rounding, channels):
    rng = np.random.default_rng(channels)
    mults = _multipliers(rng, channels)
    qm, sh = fp.quantize_multipliers(mults)
    offset = rng.integers(-3000, 3000, channels)
    bound = 2**20  # |(acc + offset) * q| must stay below 2**52
    per_channel = 1200 if channels < 200 else 160
    acc = _boundary_accs(qm, sh, offset, bound, per_channel, rng)
    for zp, lo, hi, dtype in [(0, -128, 127, np.int8), (-128, -128, 127, np.int8),
                              (7, 0, 255, np.uint8), (3, -128, 6, np.int8),
                              (0, -32768, 32767, np.int16), (-5, -2**31, 2**31 - 1, np.int32)]:
        r = q.Requantizer(mults, rounding, zp, lo, hi, dtype, offset=offset, bound=bound)
        assert r.fast, "the bound allows the float64 path"
        want = _expected(acc, qm, sh, rounding, offset, zp, lo, hi)
        # Row counts that fill whole tiles, leave leftovers, and fall short of one tile
        for rows in (acc.shape[0], acc.shape[0] - 1, 5, 1):
            a = acc[:rows]
            for form in (a, a.astype(np.float32) if bound < 2**24 else a, a.astype(np.float64)):
                before = form.copy()
                got = r(form)
                assert got.dtype == np.dtype(dtype)
                np.testing.assert_array_equal(got, want[:rows].astype(dtype),
                                              err_msg=f"{rounding} zp={zp} rows={rows}")
                if form.dtype.kind == "f":  # float accumulators are never modified
                    np.testing.assert_array_equal(form, before)


@pytest.mark.parametrize("channels", [8, 96])
def test_gemmlowp_upward_mask_and_nd_noncontiguous_accumulators(channels):
    """Per-channel ``upward`` channels (a per-channel threshold vector in the tiled rows), 4-D
    accumulators as depthwise passes them, and a non-contiguous view."""
    rng = np.random.default_rng(7)
    mults = _multipliers(rng, channels)
    qm, sh = fp.quantize_multipliers(mults)
    offset = rng.integers(-500, 500, channels)
    upward = rng.random(channels) < 0.5
    bound = 2**20
    acc = _boundary_accs(qm, sh, offset, bound, 1000, rng)
    r = q.Requantizer(mults, q.GEMMLOWP, -128, -128, 127, np.int8, upward=upward,
                      offset=offset, bound=bound)
    assert r.fast and not isinstance(r.fix, bool)
    want = _expected(acc, qm, sh, q.GEMMLOWP, offset, -128, -128, 127, upward).astype(np.int8)
    acc4 = acc.reshape(1, 10, 100, channels).astype(np.float32)
    np.testing.assert_array_equal(r(acc4), want.reshape(acc4.shape))
    # every other row of a wider array: not C-contiguous
    wide = np.zeros((2 * acc.shape[0], channels), np.float32)
    wide[::2] = acc
    np.testing.assert_array_equal(r(wide[::2]), want)
    # channels-first memory (a transposed copy viewed back)
    fortran = np.asfortranarray(acc.astype(np.float32))
    np.testing.assert_array_equal(r(fortran), want)


def test_random_large_arrays_float_path_equals_integer_path():
    """The float path (tiled) and the independent int64 path agree on large random arrays,
    per channel with mixed left and right shifts, and per tensor."""
    rng = np.random.default_rng(3)
    for channels, rows in [(24, 4096), (144, 1001), (960, 49), (32, 3 * 1024 + 17)]:
        mults = np.exp(rng.uniform(np.log(1e-5), np.log(1.9), channels))
        offset = rng.integers(-2**12, 2**12, channels)
        bound = 2**19  # the left shifts of multipliers >= 1 must not wrap in C++
        acc = rng.integers(-bound, bound + 1, (rows, channels))
        for rounding in REFS:
            fast = q.Requantizer(mults, rounding, 3, -128, 127, np.int8, offset=offset,
                                 bound=bound)
            slow = q.Requantizer(mults, rounding, 3, -128, 127, np.int8, offset=offset)
            assert fast.fast and not slow.fast
            np.testing.assert_array_equal(fast(acc.astype(np.float32)),
                                          slow(acc.copy()), err_msg=rounding)
            qm, sh = fp.quantize_multipliers(mults)
            np.testing.assert_array_equal(
                fast(acc), _expected(acc, qm, sh, rounding, offset, 3, -128, 127))


@pytest.mark.parametrize("rounding", [q.UPWARD, q.GEMMLOWP, q.INT64, q.SINGLE])
@pytest.mark.parametrize("wrap_acc", [False, True])
def test_run_time_bound_takes_the_float_path_only_when_exact(rounding, wrap_acc):
    """A proven bound too loose for the float64 path (as for wide convs, whose worst case
    assumes every input at +-128) leaves a run-time limit: accumulators within it take the
    float64 path, larger ones the int64 path; both equal the fixed-point reference, at every
    rounding boundary and at the limit itself."""
    rng = np.random.default_rng(11)
    channels = 16
    mults = _multipliers(rng, channels)
    qm, sh = fp.quantize_multipliers(mults)
    offset = rng.integers(-3000, 3000, channels)
    r = q.Requantizer(mults, rounding, -3, -128, 127, np.int8, offset=offset, bound=2**40,
                      wrap_acc=wrap_acc)
    assert not r.fast and r.run_time_limit is not None
    limit = r.run_time_limit
    assert limit < 2**40
    small = _boundary_accs(qm, sh, offset, min(limit, 2**23), 600, rng)  # >= 4096 values
    calls = []
    real_float, real_int = r._call_float, r._call_int
    r._call_float = lambda a: calls.append("float") or real_float(a)
    r._call_int = lambda a: calls.append("int") or real_int(a)
    for acc, path in ((small, "float"), (np.vstack([small, np.full((1, channels), limit)]),
                                         "float")):
        want = _expected(acc, qm, sh, rounding, offset, -3, -128, 127).astype(np.int8)
        np.testing.assert_array_equal(r(acc.astype(np.float64)), want)
        assert calls[-1] == path
    if limit + 1 < 2**31:  # beyond the limit (and inside int32): the int64 path, still exact
        acc = np.vstack([small, np.full((1, channels), limit + 1)])
        want = _expected(acc, qm, sh, rounding, offset, -3, -128, 127).astype(np.int8)
        np.testing.assert_array_equal(r(acc.astype(np.float64)), want)
        assert calls[-1] == "int"
