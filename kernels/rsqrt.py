"""RSQRT: 1 / sqrt(x) (float32; 1/sqrt(0) = inf). Quantized int8 (TFLite's fixed-point inverse
square root per input value) and int16 (interpolated table); inputs below the zero point fail
at run time as in LiteRT (see ``_qelementwise.prepare_rsqrt``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from ._qelementwise import prepare_rsqrt
from .registry import register


@register(Op.RSQRT)
class Rsqrt(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_rsqrt(self.node, x, out)

    @staticmethod
    def fn(x):
        return np.float32(1) / np.sqrt(x)
