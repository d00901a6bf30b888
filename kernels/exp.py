"""EXP (float32; the int8/int16 quantized lookup-table path is not supported yet)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.EXP)
class Exp(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()

    @staticmethod
    def fn(x):
        return np.exp(x)
