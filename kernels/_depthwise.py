"""The tap sum of DEPTHWISE_CONV_2D, shared by its float and integer paths.

``out[n, y, x, c] = sum over (i, j) of xp[n, y*sh + i*dh, x*sw + j*dw, c] * w[i, j, c]``, with
the taps added in row-major (i, j) order. Three evaluations of the same sum, chosen by shape:

- ``"rows"`` (unit stride along the width): with the padded rows contiguous, output row
  ``[x, c]`` of tap ``(i, j)`` reads one contiguous run of ``OW * C`` input values starting at
  column ``j * dw``. So the taps form a strided view ``[N, OH, KH, KW, OW * C]`` of the padded
  input, and one ``np.einsum`` against the weights tiled along the width reduces it: numpy's
  sum-of-products loop multiplies and accumulates each tap into the output row while the row is
  in L1, instead of one full pass for each multiply and each add. About 1.5-1.9x the speed of
  ``"taps"`` on MobileNet shapes (``benchmarks/interpreter.py``).

- ``"taps"``: one multiply and one add per tap over the whole output, in row blocks that stay
  in cache. The weights are tiled along the output width once, so for stride 1 numpy sees the
  tap and the weights as one contiguous run of ``OW * C`` values per row (broadcasting a
  ``[C]`` vector would make its inner loop only ``C`` long, which is slow for small ``C``).
- ``"einsum"``: ``np.einsum`` over the strided window view, one call, no temporaries. It wins
  when rows are short (strided taps cannot be contiguous) or the image is small.

All accumulate ``((t00 + t01) + t02) + ...`` in float32 (or in the integer/float accumulator
dtype of the quantized path), so they are bit-identical: tests prove it, the choice is only
speed (``benchmarks/interpreter.py``).
"""

from __future__ import annotations

import numpy as np

from ._common import patches

#: Output elements per row block of the "taps" evaluation (a few hundred KB: L2-resident).
BLOCK_ELEMS = 1 << 17


#: Largest ``[KH, KW, OW, C]`` weight tiling (values) the "rows" evaluation builds: past it
#: (an output wider than any real image, e.g. a fuzzed width of 2**30) the strided einsum is
#: used instead of tiling gigabytes.
TILE_LIMIT = 1 << 22


def choose(sh: int, sw: int, oh: int, ow: int, tiled_values: int = 0) -> str:
    """The faster evaluation for this geometry (measured on x86 with numpy's SIMD loops):
    ``"rows"`` whenever the width stride is 1 (and its tiled weights, ``tiled_values`` =
    ``KH * KW * OW * C``, stay below :data:`TILE_LIMIT`), else the strided ``"einsum"``."""
    return "rows" if sw == 1 and tiled_values <= TILE_LIMIT else "einsum"


def _rows(xp: np.ndarray, tiled: np.ndarray, geom, dtype) -> np.ndarray:
    """The ``"rows"`` evaluation (``sw == 1``): ``tiled [KH, KW, OW, C]``."""
    kh, kw, sh, _, dh, dw, oh, ow = geom
    xp = np.ascontiguousarray(xp, dtype)
    n, c = xp.shape[0], xp.shape[3]
    s0, s1, s2, s3 = xp.strides
    # Tap (i, j) of output row y: OW * C contiguous values from row y*sh + i*dh, column j*dw.
    # Every index stays inside xp: (OH-1)*sh + (KH-1)*dh < H and (KW-1)*dw + OW <= W.
    taps = np.lib.stride_tricks.as_strided(xp, (n, oh, kh, kw, ow * c),
                                           (s0, sh * s1, dh * s1, dw * s2, s3), writeable=False)
    out = np.empty((n, oh, ow, c), dtype)
    np.einsum("nyijk,ijk->nyk", taps, tiled.reshape(kh, kw, ow * c),
              out=out.reshape(n, oh, ow * c))
    return out


def tile_weights(w_taps: np.ndarray, ow: int) -> np.ndarray:
    """``[KH, KW, C]`` weights -> ``[KH, KW, OW, C]``, contiguous, for the "taps" and "rows"
    evaluations."""
    return np.ascontiguousarray(np.broadcast_to(w_taps[:, :, None, :],
                                                (*w_taps.shape[:2], ow, w_taps.shape[2])))


def tap_sum(xp: np.ndarray, w_taps: np.ndarray, geom, dtype, strategy: str,
            tiled: np.ndarray | None = None, finish=None) -> np.ndarray:
    """The depthwise tap sum of a padded input ``xp [N, H, W, C]`` (already repeated for a
    depth multiplier) with ``w_taps [KH, KW, C]`` -> ``[N, OH, OW, C]`` of ``dtype``.

    ``finish(block)``, if given, is applied in place to each finished output block while it is
    in cache (bias, activation)."""
    kh, kw, sh, sw, dh, dw, oh, ow = geom
    n, c = xp.shape[0], xp.shape[3]
    if strategy == "rows" and sw == 1 and n * oh * ow * c:
        if tiled is None:
            tiled = tile_weights(w_taps.astype(dtype, copy=False), ow)
        out = _rows(xp, tiled, geom, dtype)
        if finish is not None:
            finish(out)
        return out
    if strategy != "taps" or n * oh * ow * c == 0:
        out = np.einsum("nhwijc,ijc->nhwc", patches(xp, kh, kw, sh, sw, dh, dw, oh, ow),
                        w_taps.astype(dtype, copy=False), dtype=dtype)
        if finish is not None:
            finish(out)
        return out
    if tiled is None:
        tiled = tile_weights(w_taps.astype(dtype, copy=False), ow)
    out = np.empty((n, oh, ow, c), dtype)
    rows = max(1, BLOCK_ELEMS // max(1, n * ow * c))
    tmp = np.empty((n, min(rows, oh), ow, c), dtype)
    for r in range(0, oh, rows):
        re = min(r + rows, oh)
        o_blk, t_blk = out[:, r:re], tmp[:, :re - r]
        for i in range(kh):
            r0 = r * sh + i * dh
            for j in range(kw):
                c0 = j * dw
                tap = xp[:, r0:r0 + (re - r - 1) * sh + 1:sh, c0:c0 + (ow - 1) * sw + 1:sw]
                if i == 0 and j == 0:
                    np.multiply(tap, tiled[0, 0], out=o_blk)
                else:  # no temporaries: multiply into a reused buffer, then accumulate
                    np.multiply(tap, tiled[i, j], out=t_blk)
                    o_blk += t_blk
        if finish is not None:
            finish(o_blk)
    return out
