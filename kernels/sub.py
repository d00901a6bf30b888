"""SUB: float32, int32, int64, numpy broadcasting, fused activation as a clamp. Quantized
int8/uint8/int16: TFLite's general rescaling subtraction (as ADD), or the power-of-two int16
path (see ``_qelementwise.prepare_add_sub``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS
from ._qelementwise import prepare_add_sub
from .registry import register


@register(Op.SUB)
class Sub(BinaryKernel):
    dtypes = FLOAT + INTS
    quantized = (np.int8, np.uint8, np.int16)
    clamps = True
    fn = staticmethod(np.subtract)

    def prepare_quantized(self, a, b, out):
        return prepare_add_sub(self.node, a, b, out, subtract=True)
