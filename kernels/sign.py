"""SIGN: -1, 0 or 1 (NaN stays NaN); float32, float64, int32."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.SIGN)
class Sign(UnaryKernel):
    dtypes = (np.float32, np.float64, np.int32)
    raw = ()

    @staticmethod
    def fn(x):
        return np.sign(x)
