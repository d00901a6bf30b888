"""MINIMUM: ``a < b ? a : b`` (NaN handling as TFLite's, see MAXIMUM). float32/float16 and every
integer type; quantized integers are compared as stored."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS, SMALL_INTS
from .registry import register


@register(Op.MINIMUM)
class Minimum(BinaryKernel):
    dtypes = FLOAT + (np.float16,)
    raw = INTS + SMALL_INTS

    @staticmethod
    def fn(a, b):
        return np.where(a < b, a, b)
