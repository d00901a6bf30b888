"""LOG (float32): log(0) = -inf, log(x < 0) = NaN. Quantized int8/int16 not yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.LOG)
class Log(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()

    @staticmethod
    def fn(x):
        return np.log(x)
