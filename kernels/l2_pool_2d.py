"""L2_POOL_2D (float32): sqrt of the mean of squares over the in-bounds part of each window.
LiteRT has no int8/uint8/int16 kernel for it."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._pool import PoolKernel
from .registry import register


@register(Op.L2_POOL_2D)
class L2Pool2D(PoolKernel):
    has_quantized = False

    def eval(self, inputs):
        x = inputs[0]
        s = self.windows(x * x, 0.0).sum(axis=(3, 4), dtype=np.float32)
        if self.counts is None:
            fh, fw = self.geom[0], self.geom[1]
            return self.finish(np.sqrt(s / np.float32(fh * fw)))
        return self.finish(np.sqrt(s / self.counts))
