"""ADD (float32/int32/int64), numpy broadcasting (TFLite broadcasts up to rank 6)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from .registry import register


@register(Op.ADD)
class Add(BinaryKernel):
    fn = staticmethod(np.add)
