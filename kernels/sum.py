"""SUM over constant or run-time axes with ``keep_dims`` (float32, int32, int64; integers wrap).
Floats accumulate sequentially in float32 as TFLite does (bit-exact). Empty axes copy the
input; duplicate and negative axes are allowed. Quantized int8/uint8/int16 (rescaling) not
yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel, sequential_sum
from .registry import register


@register(Op.SUM)
class Sum(ReduceKernel):
    def reduce(self, x, axes):
        if x.dtype.kind == "f":
            return sequential_sum(x, axes)
        return np.sum(x, axis=axes, dtype=x.dtype)
