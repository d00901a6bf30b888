"""MUL: float32/float16, int32/int64, non-quantized int16 and complex64, numpy broadcasting,
fused activation as a clamp (not applied to complex64). Quantized int8/uint8/int16 (and int16
inputs with an int8 output): the product of the offset inputs rescaled once (see
``_qelementwise.prepare_mul``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS
from ._qelementwise import prepare_mul
from .registry import register


@register(Op.MUL)
class Mul(BinaryKernel):
    dtypes = FLOAT + INTS + (np.float16, np.int16, np.complex64)
    quantized = (np.int8, np.uint8, np.int16)
    clamps = True
    fn = staticmethod(np.multiply)

    def prepare_quantized(self, a, b, out):
        return prepare_mul(self.node, a, b, out)
