"""MEAN over constant or run-time axes with ``keep_dims``. float32, bit-exact with LiteRT: the
sum accumulated sequentially in float32, divided by the count; except for a reduction over the
last axis alone with more than one output, which LiteRT hands to Eigen
(``colwise().sum() / n``): each row is summed in 4-float SSE packets starting at its first
16-byte boundary (two packet accumulators, then a horizontal add ``(p0 + p2) + (p1 + p3)``), the
unaligned head and the tail added after, one element at a time (see :func:`eigen_row_sums`). An
empty reduction is NaN. int32/int64 as TFLite: the sum (int64 accumulator, wrapping for int64)
divided by the count, truncated toward zero. Quantized int8/uint8/int16: LiteRT's rescaling
(its optimized int8/uint8 kernel for spatial means of 4-D tensors, the reference one otherwise;
see ``_qelementwise.prepare_mean``)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel, sequential_sum
from ._qelementwise import prepare_mean
from .registry import register


@register(Op.MEAN)
class Mean(ReduceKernel):
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_mean(self.node, x, out, self.keep)

    def reduce(self, x, axes):
        n = math.prod(x.shape[a] for a in axes)
        if x.dtype == np.float32 and axes == (x.ndim - 1,) and n > 0 \
                and math.prod(x.shape[:-1]) > 1:
            rows = np.ascontiguousarray(x).reshape(-1, n)
            return (eigen_row_sums(rows) / np.float32(n)).reshape(x.shape[:-1])
        if x.dtype.kind == "f":
            return sequential_sum(x, axes) / x.dtype.type(n)
        s = np.sum(x, axis=axes, dtype=np.int64)
        if n == 0:
            return np.zeros_like(s)
        q = s // n
        return q + ((q * n != s) & (s < 0))  # floor -> toward zero


def eigen_row_sums(rows: np.ndarray) -> np.ndarray:
    """Sum of each row of a C-contiguous float32 ``[r, n]`` array as Eigen's vectorized redux
    computes it on x86 (SSE packets of 4) over a 16-byte aligned buffer: bit-exact with LiteRT's
    MEAN over the last axis (measured for n = 1..300)."""
    r, n = rows.shape
    out = np.empty(r, np.float32)
    # Row j starts at byte 4*j*n of the (aligned) buffer: its first aligned element.
    starts = (-(np.arange(r) * n)) % 4
    for s in np.unique(starts):
        sel = np.flatnonzero(starts == s)
        out[sel] = _eigen_sum(rows[sel], min(int(s), n))
    return out


def _eigen_sum(v: np.ndarray, start: int) -> np.ndarray:
    """Row sums of ``v`` whose aligned part begins at column ``start``."""
    n = v.shape[1]
    whole = (n - start) // 4 * 4  # columns in whole packets
    if whole == 0:  # too short to vectorize: plain left-to-right sum
        return np.cumsum(v, axis=1, dtype=np.float32)[:, -1]
    end2, end = start + (n - start) // 8 * 8, start + whole
    p0 = v[:, start:start + 4].copy()
    if whole > 4:  # two accumulators, the loop partly unrolled
        p1 = v[:, start + 4:start + 8].copy()
        for i in range(start + 8, end2, 8):
            p0 += v[:, i:i + 4]
            p1 += v[:, i + 4:i + 8]
        p0 += p1
        if end > end2:
            p0 += v[:, end2:end2 + 4]
    res = (p0[:, 0] + p0[:, 2]) + (p0[:, 1] + p0[:, 3])
    for i in (*range(start), *range(end, n)):  # the unaligned head, then the tail
        res += v[:, i]
    return res
