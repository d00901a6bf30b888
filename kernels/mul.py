"""MUL (float32/int32/int64), numpy broadcasting."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from .registry import register


@register(Op.MUL)
class Mul(BinaryKernel):
    fn = staticmethod(np.multiply)
