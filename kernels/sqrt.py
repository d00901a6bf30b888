"""SQRT (float32; NaN for negative inputs). Quantized int8/int16 not yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.SQRT)
class Sqrt(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()

    @staticmethod
    def fn(x):
        return np.sqrt(x)
