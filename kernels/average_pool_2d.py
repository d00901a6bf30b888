"""AVERAGE_POOL_2D (float32): the mean over the in-bounds part of each window."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._pool import PoolKernel
from .registry import register


@register(Op.AVERAGE_POOL_2D)
class AveragePool2D(PoolKernel):
    def eval(self, inputs):
        s = self.windows(inputs[0], 0.0).sum(axis=(3, 4), dtype=np.float32)
        if self.counts is None:
            fh, fw = self.geom[0], self.geom[1]
            return self.finish(s / np.float32(fh * fw))
        return self.finish(s / self.counts)
