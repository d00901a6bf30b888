"""FLOOR_MOD: the remainder with the sign of the divisor: ``r = fmod(a, b)``, plus ``b`` when
``r != 0`` and the signs of ``r`` and ``b`` differ (TFLite's rule; float x mod 0 is NaN).
float32, int32, int64, and int8/int16 taken as stored; an integer zero divisor fails."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import runtime_error
from .registry import register


@register(Op.FLOOR_MOD)
class FloorMod(BinaryKernel):
    dtypes = (np.float32, np.int32, np.int64)
    raw = (np.int8, np.int16)

    def check_values(self, a, b):
        if b.dtype.kind in "iu" and not np.all(b != 0):
            raise runtime_error(self.node, "division by 0")

    @staticmethod
    def fn(a, b):
        r = np.fmod(a, b)
        fix = (r != 0) & ((r < 0) != (b < 0))
        return np.where(fix, r + b, r).astype(r.dtype)
