"""DEPTH_TO_SPACE (NHWC): each pixel's ``block_size**2 * C`` channels become a
``block_size x block_size`` patch of C channels (TensorFlow's DCR order). Any dtype."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import require_dense, require_same_dtype
from .registry import register


@register(Op.DEPTH_TO_SPACE)
class DepthToSpace(Kernel):
    def prepare(self):
        node = self.node
        x = node.inputs[0]
        require_dense(node, 0)
        require_same_dtype(node, x, node.outputs[0])
        bs = int(node.options.block_size) if node.options is not None else 0
        if len(x.shape) != 4:
            raise node.fail(f"input must be 4-D NHWC, got {list(x.shape)}")
        n, h, w, c = x.shape
        if bs < 1 or c % (bs * bs):
            raise node.fail(f"depth {c} is not a multiple of block_size {bs} squared")
        self.bs = bs
        return [(n, h * bs, w * bs, c // (bs * bs))]

    def eval(self, inputs):
        x, bs = inputs[0], self.bs
        n, h, w, c = x.shape
        co = c // (bs * bs)
        y = x.reshape(n, h, w, bs, bs, co).transpose(0, 1, 3, 2, 4, 5)
        return [np.ascontiguousarray(y).reshape(n, h * bs, w * bs, co)]
