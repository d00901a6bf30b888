"""SUB: float32, int32, int64, numpy broadcasting, fused activation as a clamp."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS
from .registry import register


@register(Op.SUB)
class Sub(BinaryKernel):
    dtypes = FLOAT + INTS
    clamps = True
    fn = staticmethod(np.subtract)
