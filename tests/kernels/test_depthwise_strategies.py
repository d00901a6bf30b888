"""The three evaluations of the depthwise tap sum (``kernels/_depthwise.py``) are bit-identical.

The kernel picks one by shape, for speed only; LiteRT conformance of DEPTHWISE_CONV_2D itself is
tested in ``test_nn_ops.py`` / ``test_quant_conv.py``. Here the plain tap-by-tap sum (written
out below, independently) is the reference, for both choices, on float32 and on the integer
accumulator types of the quantized path.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from workbench.kernels import _depthwise as dw

GEOMETRIES = [  # (n, h, w, c, kh, kw, sh, sw, dh, dw)
    (1, 9, 9, 3, 3, 3, 1, 1, 1, 1),
    (1, 40, 37, 8, 3, 3, 1, 1, 1, 1),   # big enough for "taps", odd width
    (2, 40, 40, 5, 3, 3, 2, 2, 1, 1),   # batch, stride 2
    (1, 41, 43, 4, 5, 5, 1, 2, 1, 1),   # uneven strides
    (1, 45, 45, 6, 3, 3, 1, 1, 2, 3),   # dilation
    (1, 7, 7, 16, 1, 1, 1, 1, 1, 1),    # 1x1
    (1, 35, 35, 3, 3, 2, 3, 1, 1, 1),   # stride > kernel
    (0, 9, 9, 3, 3, 3, 1, 1, 1, 1),     # empty batch
]


def plain(xp, w, geom, dtype):
    kh, kw, sh, sw, dh, dw_, oh, ow = geom
    out = np.zeros((xp.shape[0], oh, ow, xp.shape[3]), dtype)
    for i, j in itertools.product(range(kh), range(kw)):
        tap = xp[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw_:j * dw_ + (ow - 1) * sw + 1:sw]
        if i == 0 and j == 0:
            out[...] = tap * w[0, 0]
        else:
            out += tap * w[i, j]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("g", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_strategies_match_plain_sum_bit_for_bit(g, dtype):
    n, h, w_, c, kh, kw, sh, sw, dh, dw_ = g
    rng = np.random.default_rng(sum(g))
    if dtype == np.float32:
        xp = rng.standard_normal((n, h, w_, c)).astype(dtype)
        w = rng.standard_normal((kh, kw, c)).astype(dtype)
    else:
        xp = rng.integers(-255, 256, (n, h, w_, c)).astype(dtype)
        w = rng.integers(-255, 256, (kh, kw, c)).astype(dtype)
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w_ - (kw - 1) * dw_ - 1) // sw + 1
    geom = (kh, kw, sh, sw, dh, dw_, oh, ow)
    want = plain(xp, w, geom, dtype)
    tiled = dw.tile_weights(w, ow)
    for strategy in ("taps", "einsum", "rows"):
        got = dw.tap_sum(xp, w, geom, dtype, strategy)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want, err_msg=strategy)
        got = dw.tap_sum(xp, w, geom, dtype, strategy, tiled)
        np.testing.assert_array_equal(got, want, err_msg=f"{strategy}, tiled")


def test_rows_reads_a_non_contiguous_padded_input():
    """"rows" views the padded input's rows as contiguous runs: a strided input (a slice of a
    wider tensor) must give the same sums, not read past its rows."""
    rng = np.random.default_rng(1)
    wide = rng.standard_normal((1, 20, 30, 6)).astype(np.float32)
    xp = wide[:, 2:18, 3:25, 1:5]
    w = rng.standard_normal((3, 3, 4)).astype(np.float32)
    geom = (3, 3, 1, 1, 1, 1, 14, 20)
    np.testing.assert_array_equal(dw.tap_sum(xp, w, geom, np.float32, "rows"),
                                  plain(xp, w, geom, np.float32))


def test_finish_sees_every_output_block_once():
    rng = np.random.default_rng(0)
    xp = rng.standard_normal((1, 300, 300, 4)).astype(np.float32)  # several row blocks
    w = rng.standard_normal((3, 3, 4)).astype(np.float32)
    geom = (3, 3, 1, 1, 1, 1, 298, 298)
    calls = []

    def finish(blk):
        calls.append(blk.shape[1])
        blk += 1.0

    got = dw.tap_sum(xp, w, geom, np.float32, "taps", finish=finish)
    assert sum(calls) == 298 and len(calls) > 1
    np.testing.assert_array_equal(got, plain(xp, w, geom, np.float32) + np.float32(1.0))
