"""SQUARED_DIFFERENCE: (a - b)^2 for float32 and int32 (int32 wraps on overflow), and quantized
int8 (inputs rescaled to a common scale, the square rescaled to the output; LiteRT has no
uint8/int16 quantized path)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._qelementwise import prepare_squared_difference
from .registry import register


@register(Op.SQUARED_DIFFERENCE)
class SquaredDifference(BinaryKernel):
    dtypes = (np.float32, np.int32)
    quantized = (np.int8, np.uint8, np.int16)

    @staticmethod
    def fn(a, b):
        d = np.subtract(a, b)
        return d * d

    def prepare_quantized(self, a, b, out):
        return prepare_squared_difference(self.node, a, b, out)
