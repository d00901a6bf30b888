"""SQUARED_DIFFERENCE: (a - b)^2 for float32 and int32 (int32 wraps on overflow)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from .registry import register


@register(Op.SQUARED_DIFFERENCE)
class SquaredDifference(BinaryKernel):
    dtypes = (np.float32, np.int32)

    @staticmethod
    def fn(a, b):
        d = np.subtract(a, b)
        return d * d
