"""MAX_POOL_2D (float32)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._pool import PoolKernel
from .registry import register


@register(Op.MAX_POOL_2D)
class MaxPool2D(PoolKernel):
    def eval(self, inputs):
        return self.finish(self.windows(inputs[0], -np.inf).max(axis=(3, 4)))
