"""RIGHT_SHIFT of integer tensors (int8/16/32, uint8/16/32), broadcast: arithmetic for signed
types; as LiteRT the shift amount is clamped to ``[0, bits - 1]`` (a negative shift is 0, a
too large one keeps only the sign)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._bitwise import BitwiseKernel
from .registry import register


@register(Op.RIGHT_SHIFT)
class RightShift(BitwiseKernel):
    @staticmethod
    def fn(a, b):
        bits = a.dtype.itemsize * 8
        shift = np.clip(b.astype(np.int64), 0, bits - 1).astype(a.dtype)
        return np.right_shift(a, shift)
