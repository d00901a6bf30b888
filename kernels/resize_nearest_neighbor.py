"""RESIZE_NEAREST_NEIGHBOR (every dtype: pure data movement). Source index per output index as
TFLite computes it: ``floor((i + offset) * scale)`` (``round`` half away from zero with
align_corners), clamped to the input; offset 0.5 with half_pixel_centers. For 1-byte types
without either option LiteRT's optimized kernel uses 16.16 fixed point instead,
``min((i * ((in << 16) // out + 1)) >> 16, in - 1)``, which can pick a different pixel than
the float formula; we reproduce that too."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._resize import F32, ResizeKernel, float_scale
from .registry import register


@register(Op.RESIZE_NEAREST_NEIGHBOR)
class ResizeNearestNeighbor(ResizeKernel):
    def indices(self, in_size: int, out_size: int, itemsize: int) -> np.ndarray:
        i = np.arange(out_size, dtype=np.int64)
        if itemsize == 1 and not self.align and not self.half:
            scale = (in_size << 16) // out_size + 1
            return np.minimum((i * scale) >> 16, in_size - 1)
        scale = float_scale(in_size, out_size, self.align)
        pos = (i.astype(F32) + F32(0.5 if self.half else 0.0)) * scale  # float32 maths
        if self.align:  # std::round: half away from zero (pos >= 0); exact in float64
            idx = np.floor(pos.astype(np.float64) + 0.5)
        else:
            idx = np.floor(pos)
        idx = np.minimum(idx.astype(np.int64), in_size - 1)
        if self.half:
            idx = np.maximum(idx, 0)
        return idx

    def plan(self, in_h, in_w, out_h, out_w):
        size = self.node.inputs[0].dtype.itemsize if self.node.inputs[0].dtype is not None else 0
        return self.indices(in_h, out_h, size), self.indices(in_w, out_w, size)

    def resize(self, x, plan):
        ys, xs = plan
        return np.ascontiguousarray(x[:, ys][:, :, xs])
