"""MAX_POOL_2D: float32, and quantized int8/uint8/int16 (the stored integers, clamped to the
fused activation's quantized range)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._pool import PoolKernel
from .registry import register


@register(Op.MAX_POOL_2D)
class MaxPool2D(PoolKernel):
    def eval(self, inputs):
        x = inputs[0]
        if self.qrange is not None:
            lowest = np.iinfo(x.dtype).min
            return self.finish_quantized(self.windows(x, lowest).max(axis=(3, 4)))
        return self.finish(self.windows(x, -np.inf).max(axis=(3, 4)))
