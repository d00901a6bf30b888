"""LOG (float32): log(0) = -inf, log(x < 0) = NaN. Quantized int8/int16: a table of ``logf``
(int16 interpolated; see ``_qelementwise.prepare_log``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel, rounded_from_double
from ._qelementwise import prepare_log
from .registry import register


@register(Op.LOG)
class Log(UnaryKernel):
    dtypes = (np.float32,)
    raw = ()
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_log(self.node, x, out)

    @staticmethod
    def fn(x):
        return rounded_from_double(np.log, x)
