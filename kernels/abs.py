"""ABS: float32, int32 and non-quantized int16 (abs(INT_MIN) wraps to INT_MIN, as in C++).
Quantized int8/int16: ``|x - zp|`` rescaled when the scales differ (see
``_qelementwise.prepare_abs``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from ._qelementwise import prepare_abs
from .registry import register


@register(Op.ABS)
class Abs(UnaryKernel):
    dtypes = (np.float32, np.int32, np.int16)
    raw = ()
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_abs(self.node, x, out)

    @staticmethod
    def fn(x):
        return np.abs(x)
