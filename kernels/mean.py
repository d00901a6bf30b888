"""MEAN over constant or run-time axes with ``keep_dims``. float32: the sum accumulated
sequentially in float32, divided by the count (bit-exact with LiteRT except for reductions
over the last axis alone, where LiteRT sums in SIMD lanes: within float rounding); an empty
reduction is NaN. int32/int64 as TFLite: the sum (int64 accumulator, wrapping for int64)
divided by the count, truncated toward zero. Quantized int8/uint8/int16 (rescaling) not yet."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel, sequential_sum
from .registry import register


@register(Op.MEAN)
class Mean(ReduceKernel):
    def reduce(self, x, axes):
        n = math.prod(x.shape[a] for a in axes)
        if x.dtype.kind == "f":
            return sequential_sum(x, axes) / x.dtype.type(n)
        s = np.sum(x, axis=axes, dtype=np.int64)
        if n == 0:
            return np.zeros_like(s)
        q = s // n
        return q + ((q * n != s) & (s < 0))  # floor -> toward zero
