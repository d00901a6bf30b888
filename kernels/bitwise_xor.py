"""BITWISE_XOR of two integer tensors (int8/16/32, uint8/16/32), broadcast."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._bitwise import BitwiseKernel
from .registry import register


@register(Op.BITWISE_XOR)
class BitwiseXor(BitwiseKernel):
    @staticmethod
    def fn(a, b):
        return np.bitwise_xor(a, b)
