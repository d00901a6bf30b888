"""POW: float32 and int32. The int32 path, like TFLite's, evaluates the power in double
precision: results outside int32 become INT32_MIN (x86 conversion), and a negative exponent
fails the invoke."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import runtime_error
from .registry import register

_I32 = np.iinfo(np.int32)


@register(Op.POW)
class Pow(BinaryKernel):
    dtypes = (np.float32, np.int32)

    def check_values(self, a, b):
        if b.dtype == np.int32 and np.any(b < 0):
            raise runtime_error(self.node, "POW does not support negative int32 exponents")

    @staticmethod
    def fn(a, b):
        if a.dtype == np.int32:
            p = np.power(a.astype(np.float64), b.astype(np.float64))
            fits = (p >= _I32.min) & (p <= _I32.max)
            return np.where(fits, p, _I32.min).astype(np.int32)
        return np.power(a, b)
