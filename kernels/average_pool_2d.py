"""AVERAGE_POOL_2D: the mean over the in-bounds part of each window. float32; quantized
int8/uint8/int16 as TFLite: the integer sum divided by the window's in-bounds count, rounded
half away from zero (``(sum +- count / 2) / count`` with C's truncating division), clamped to
the fused activation's range."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._pool import PoolKernel
from .registry import register


@register(Op.AVERAGE_POOL_2D)
class AveragePool2D(PoolKernel):
    def eval(self, inputs):
        x = inputs[0]
        if self.qrange is not None:
            acc = self.windows(x.astype(np.int64), 0).sum(axis=(3, 4))
            count = self.window_counts()
            if np.any(np.asarray(count) == 0):
                raise self.node.fail("a pooling window has no element inside the input")
            half = count // 2
            num = np.where(acc > 0, acc + half, acc - half)
            q = np.abs(num) // count * np.sign(num)  # C division truncates toward zero
            return self.finish_quantized(q)
        s = self.windows(x, 0.0).sum(axis=(3, 4), dtype=np.float32)
        if self.counts is None:
            fh, fw = self.geom[0], self.geom[1]
            return self.finish(s / np.float32(fh * fw))
        return self.finish(s / self.counts)
