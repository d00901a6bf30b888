"""SQRT: float32 (NaN for negative inputs), and quantized int8/int16 (float32 square root of the
dequantized input, truncated; inputs below the zero point fail at run time, as in LiteRT; see
``_qelementwise.prepare_sqrt``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from ._qelementwise import prepare_sqrt
from .registry import register


@register(Op.SQRT)
class Sqrt(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_sqrt(self.node, x, out)

    @staticmethod
    def fn(x):
        return np.sqrt(x)
