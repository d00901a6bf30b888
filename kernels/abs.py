"""ABS: float32, int32 and non-quantized int16 (abs(INT_MIN) wraps to INT_MIN, as in C++).
Quantized int8/int16 (rescaling) not yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.ABS)
class Abs(UnaryKernel):
    dtypes = (np.float32, np.int32, np.int16)
    raw = ()

    @staticmethod
    def fn(x):
        return np.abs(x)
