"""Shared shape logic and source-coordinate maths of RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR.

Coordinates are computed exactly as TFLite does, in float32 (``scale = in / out``, or
``(in - 1) / (out - 1)`` with align_corners and out > 1; half_pixel_centers samples at
``(i + 0.5) * scale - 0.5``), so the same source pixels are picked.
"""

from __future__ import annotations

import numpy as np

from ._common import Kernel, check_allocation, mark_dynamic

F32 = np.float32


def float_scale(in_size: int, out_size: int, align_corners: bool) -> np.float32:
    if align_corners and out_size > 1:
        return F32(in_size - 1) / F32(out_size - 1)
    return F32(in_size) / F32(out_size)


class ResizeKernel(Kernel):
    """Input [N, H, W, C] and an int32 size [2] (constant or runtime) -> [N, oh, ow, C].
    Subclasses implement ``plan(in_h, in_w, out_h, out_w)`` (index/weight tables, computed once
    per shape) and ``resize(x, plan)``."""

    dtypes: tuple = ()

    def prepare(self):
        node = self.node
        x, size = node.inputs[0], node.inputs[1]
        self.check_dtype(x.dtype)
        if len(x.shape) != 4:
            raise node.fail(f"input {list(x.shape)} must be 4-D NHWC")
        if size.dtype != np.int32 or size.shape != (2,):
            raise node.fail(f"size must be int32 [2], got {size.dtype}{list(size.shape)}")
        o = node.options
        self.align = bool(o.align_corners) if o is not None else False
        self.half = bool(o.half_pixel_centers) if o is not None else False
        if self.align and self.half:
            raise node.fail("align_corners and half_pixel_centers cannot both be true")
        if 0 in x.shape[1:3] and x.shape[0] * x.shape[3] > 0:
            # (LiteRT would read outside the input: there is no pixel to interpolate from)
            raise node.fail(f"input {list(x.shape)} has no pixels to resize from")
        self.cached = None
        if size.data is None:  # runtime size: the spatial size is known at eval only
            mark_dynamic(node)
            rec = node.outputs[0].shape
            return [(x.shape[0], *(rec[1:3] if len(rec) == 4 else (1, 1)), x.shape[3])]
        oh, ow = self.out_size(size.data)
        check_allocation(node, [(x.shape[0], oh, ow, x.shape[3])], runtime=False)
        self.cached = ((oh, ow), self.plan(x.shape[1], x.shape[2], oh, ow))
        return [(x.shape[0], oh, ow, x.shape[3])]

    def check_dtype(self, dtype) -> None:
        pass

    def out_size(self, value) -> tuple[int, int]:
        oh, ow = (int(v) for v in np.asarray(value).reshape(-1))
        if oh <= 0 or ow <= 0:
            raise self.node.fail(f"output size {[oh, ow]} must be positive")
        return oh, ow

    def eval(self, inputs):
        x = inputs[0]
        if self.cached is not None:
            _, plan = self.cached
        else:
            oh, ow = self.out_size(inputs[1])
            check_allocation(self.node, [(x.shape[0], oh, ow, x.shape[3])], runtime=True)
            plan = self.plan(x.shape[1], x.shape[2], oh, ow)
        return [self.resize(x, plan)]

    def plan(self, in_h, in_w, out_h, out_w):
        raise NotImplementedError

    def resize(self, x, plan):
        raise NotImplementedError
