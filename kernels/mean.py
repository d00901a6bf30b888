"""MEAN over constant or run-time axes with ``keep_dims``. float32: the sum accumulated
sequentially in float32, divided by the count (bit-exact with LiteRT except for reductions
over the last axis alone, where LiteRT sums in SIMD lanes: within float rounding); an empty
reduction is NaN. int32/int64 as TFLite: the sum (int64 accumulator, wrapping for int64)
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
        if x.dtype.kind == "f":
            return sequential_sum(x, axes) / x.dtype.type(n)
        s = np.sum(x, axis=axes, dtype=np.int64)
        if n == 0:
            return np.zeros_like(s)
        q = s // n
        return q + ((q * n != s) & (s < 0))  # floor -> toward zero
