"""MUL: float32/float16, int32/int64, non-quantized int16 and complex64, numpy broadcasting,
fused activation as a clamp (not applied to complex64)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS
from .registry import register


@register(Op.MUL)
class Mul(BinaryKernel):
    dtypes = FLOAT + INTS + (np.float16, np.int16, np.complex64)
    clamps = True
    fn = staticmethod(np.multiply)
