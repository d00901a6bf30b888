"""MAXIMUM: ``a > b ? a : b`` (so a NaN in ``a`` yields ``b`` and a NaN in ``b`` yields NaN, as
in TFLite). float32/float16 and every integer type; quantized integers are compared as stored
(TFLite requires equal quantization of inputs and output)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS, SMALL_INTS
from .registry import register


@register(Op.MAXIMUM)
class Maximum(BinaryKernel):
    dtypes = FLOAT + (np.float16,)
    raw = INTS + SMALL_INTS

    @staticmethod
    def fn(a, b):
        return np.where(a > b, a, b)
