"""SQUARE: x * x (float32 only, as in TFLite)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.SQUARE)
class Square(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()

    @staticmethod
    def fn(x):
        return x * x
