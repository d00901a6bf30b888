"""EXP: float32, and quantized int8 / int16 through LiteRT's tables of ``expf`` (256 entries, or
513 interpolated ones for int16; see ``_qelementwise``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _qelementwise as q
from ._elementwise import UnaryKernel, rounded_from_double
from .registry import register


def _expf(v):
    return q.cmath("expf", v)


@register(Op.EXP)
class Exp(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        if x.dtype == np.uint8:
            raise q.unsupported(self.node, "LiteRT has no uint8 EXP kernel")
        if x.dtype == np.int16:
            return q.prepare_lut16(self.node, x, out, _expf)
        return q.prepare_lut8(self.node, x, out, _expf)

    @staticmethod
    def fn(x):
        return rounded_from_double(np.exp, x)
