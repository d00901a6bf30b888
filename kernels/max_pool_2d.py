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
        # Tap by tap (a running maximum over strided views of the padded input): a few ufunc
        # passes instead of numpy's reduce over a 6-D window view (several times faster).
        taps = self.taps(x)
        out = np.array(next(taps), dtype=np.float32)
        for tap in taps:
            np.maximum(out, tap, out=out)
        return self.finish(out)

    pad_value = -np.inf
