"""SIN (float32, float16)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel, rounded_from_double
from .registry import register


@register(Op.SIN)
class Sin(UnaryKernel):
    dtypes = (np.float32, np.float16)
    raw = ()

    @staticmethod
    def fn(x):
        return rounded_from_double(np.sin, x)
