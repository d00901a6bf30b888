"""Shared geometry of 2-D pooling (Pool2DOptions): windows as a strided view over the input
padded with a neutral value. TFLite pools only over the in-bounds part of each window."""

from __future__ import annotations

import numpy as np

from ._common import Kernel, pad_nhwc, patches, same_or_valid
from ._conv import fused_activation
from ._float_only import require_float


class PoolKernel(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x = node.inputs[0]
        if len(x.shape) != 4:
            raise node.fail(f"input {list(x.shape)} must be 4-D NHWC")
        o = node.options
        n, h, w, c = x.shape
        oh, pt, pb = same_or_valid(o.padding, h, o.filter_height, o.stride_h)
        ow, pl, pr = same_or_valid(o.padding, w, o.filter_width, o.stride_w)
        self.geom = (o.filter_height, o.filter_width, o.stride_h, o.stride_w, 1, 1, oh, ow)
        self.pads = ((pt, pb), (pl, pr))
        self.counts = None
        if (pt, pb, pl, pr) != (0, 0, 0, 0):
            ones = np.ones((1, h, w, 1), np.float32)
            self.counts = patches(pad_nhwc(ones, *self.pads), *self.geom).sum(axis=(3, 4))
        return [(n, oh, ow, c)]

    def windows(self, x: np.ndarray, pad_value) -> np.ndarray:
        """[N, OH, OW, FH, FW, C] view of the padded input."""
        return patches(pad_nhwc(x, *self.pads, value=pad_value), *self.geom)

    def finish(self, out: np.ndarray) -> list[np.ndarray]:
        out = np.ascontiguousarray(out, dtype=np.float32)
        return [fused_activation(out, self.node.options.fused_activation_function)]
