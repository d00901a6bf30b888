"""CEIL (float32)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.CEIL)
class Ceil(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()

    @staticmethod
    def fn(x):
        return np.ceil(x)
