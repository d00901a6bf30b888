"""ROUND: to nearest, ties to even (TFLite's RoundToNearest: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2);
float32, float16."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.ROUND)
class Round(UnaryKernel):
    dtypes = (np.float32, np.float16)
    raw = ()

    @staticmethod
    def fn(x):
        return np.rint(x)
