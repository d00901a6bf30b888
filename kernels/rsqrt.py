"""RSQRT: 1 / sqrt(x) (float32; 1/sqrt(0) = inf). Quantized int8/int16 not yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.RSQRT)
class Rsqrt(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()

    @staticmethod
    def fn(x):
        return np.float32(1) / np.sqrt(x)
