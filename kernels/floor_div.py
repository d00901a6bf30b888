"""FLOOR_DIV: floor(a / b) computed in double precision (as TFLite), for float32 and int32, and
int8/int16 taken as stored. Any zero divisor fails the invoke (float too, as in LiteRT)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import runtime_error
from .registry import register


@register(Op.FLOOR_DIV)
class FloorDiv(BinaryKernel):
    dtypes = (np.float32, np.int32)
    raw = (np.int8, np.int16)

    def check_values(self, a, b):
        if not np.all(b != 0):
            raise runtime_error(self.node, "division by 0")

    @staticmethod
    def fn(a, b):
        q = np.floor(np.divide(a.astype(np.float64), b.astype(np.float64)))
        if a.dtype.kind == "f":
            return q.astype(a.dtype)
        # via int64 so that an out-of-range quotient wraps as TFLite's conversion does
        return q.astype(np.int64).astype(a.dtype)
