"""AVERAGE_POOL_2D: the mean over the in-bounds part of each window. float32; quantized
int8/uint8/int16 as TFLite: the integer sum divided by the window's in-bounds count, rounded
half away from zero (``(sum +- count / 2) / count`` with C's truncating division), clamped to
the fused activation's range."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _depthwise as dw
from ._common import PadBuffer
from ._pool import PoolKernel
from .registry import register


@register(Op.AVERAGE_POOL_2D)
class AveragePool2D(PoolKernel):
    def eval(self, inputs):
        x = inputs[0]
        if self.qrange is not None:
            fh, fw = self.geom[0], self.geom[1]
            count = self.window_counts()
            if np.any(np.asarray(count) == 0):
                raise self.node.fail("a pooling window has no element inside the input")
            half = count // 2
            if fh * fw * 2**15 < 2**24:
                # Window sums are exact in float32 (|sum| < 2**24); then (sum +- half) / count
                # in float64 is within 2**-28 of the true quotient, which is an integer or at
                # least 1/count (>= 2**-9) away from one: its truncation is C's division.
                num = self._window_sums(x).astype(np.float64)
                num += np.copysign(np.asarray(half, np.float64), num)
                num /= np.asarray(count, np.float64)
                return self.finish_quantized(np.trunc(num, out=num))
            acc = self.windows(x.astype(np.int64), 0).sum(axis=(3, 4))
            num = np.where(acc > 0, acc + half, acc - half)
            q = np.abs(num) // count * np.sign(num)  # C division truncates toward zero
            return self.finish_quantized(q)
        fh, fw = self.geom[0], self.geom[1]
        s = self._window_sums(x)
        s /= np.float32(fh * fw) if self.counts is None else self.counts
        return self.finish(s)

    def _window_sums(self, x) -> np.ndarray:
        """float32 sums of each window's in-bounds values: a depthwise tap sum with unit
        weights over the zero-padded input (one einsum over contiguous tap rows for unit width
        stride: 3-10x numpy's reduce over a 6-D window view)."""
        fh, fw, c = self.geom[0], self.geom[1], x.shape[3]
        if self.ones is None or self.ones[0] != c:
            strategy = dw.choose(*self.geom[2:4], *self.geom[6:8], fh * fw * self.geom[7] * c)
            unit = np.ones((fh, fw, c), np.float32)
            tiled = dw.tile_weights(unit, self.geom[7]) if strategy in ("taps", "rows") else None
            self.ones = (c, strategy, unit, tiled)
        _, strategy, unit, tiled = self.ones
        return dw.tap_sum(self.pad(x), unit, self.geom, np.float32, strategy, tiled)

    def prepare(self):
        shapes = super().prepare()
        self.ones = None  # depends on the geometry: rebuilt on the next eval
        return shapes

    def pad_buffer(self, dtype) -> PadBuffer:
        """Zeros around; quantized inputs are converted to float32 in the same copy (exact
        integers, for the float32 window sums)."""
        return PadBuffer(*self.pads, value=0, dtype=np.float32 if self.qrange is not None
                         else None)

    #: (channels, strategy, unit weights, tiled unit weights) of the window sums.
    ones = None
