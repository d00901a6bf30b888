"""NEG: float32/float16 and int8/int16/int32/int64. Integers are negated as stored (wrapping at
the minimum), even when quantized: TFLite's kernel ignores the zero point."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.NEG)
class Neg(UnaryKernel):
    dtypes = (np.float32, np.float16)
    raw = (np.int8, np.int16, np.int32, np.int64)

    @staticmethod
    def fn(x):
        return np.negative(x)
