"""SELECT (v1): ``condition ? x : y``. ``x`` and ``y`` have the same shape; the bool condition
has that shape too, or is a scalar, or is rank 1 matching the first dimension (then it picks
whole rows). Every element type (values are moved, not computed)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


@register(Op.SELECT)
class Select(Kernel):
    def prepare(self):
        node = self.node
        c, x, y = node.inputs
        if c.dtype != np.bool_:
            raise node.fail(f"condition must be bool, got {c.dtype}")
        if x.dtype != y.dtype:
            raise node.fail(f"x and y types differ ({x.dtype} vs {y.dtype})")
        if x.shape != y.shape:
            raise node.fail(f"x {list(x.shape)} and y {list(y.shape)} must have the same shape")
        self.cond_shape = None
        if c.shape != x.shape:
            if len(c.shape) == 0:
                self.cond_shape = ()
            elif len(c.shape) == 1 and len(x.shape) >= 1 and c.shape[0] == x.shape[0]:
                self.cond_shape = (c.shape[0],) + (1,) * (len(x.shape) - 1)
            else:
                raise node.fail(f"condition {list(c.shape)} must match x {list(x.shape)}, be a "
                                "scalar, or be rank 1 of the first dimension")
        return [x.shape]

    def eval(self, inputs):
        c, x, y = inputs
        if self.cond_shape is not None:
            c = c.reshape(self.cond_shape)
        return [np.where(c, x, y).astype(x.dtype, copy=False)]
