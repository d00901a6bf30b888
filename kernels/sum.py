"""SUM over constant or run-time axes with ``keep_dims`` (float32, int32, int64; integers wrap).
Floats accumulate sequentially in float32 as TFLite does (bit-exact). Empty axes copy the
input; duplicate and negative axes are allowed. Quantized int8/uint8/int16: the integer sum
rescaled in float32 as LiteRT's optimized kernel does (see ``_qelementwise.prepare_sum``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel, sequential_sum
from ._qelementwise import prepare_sum
from .registry import register


@register(Op.SUM)
class Sum(ReduceKernel):
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_sum(self.node, x, out)

    def reduce(self, x, axes):
        if x.dtype.kind == "f":
            return sequential_sum(x, axes)
        return np.sum(x, axis=axes, dtype=x.dtype)
