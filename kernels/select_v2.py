"""SELECT_V2: ``condition ? x : y`` with the three inputs broadcast together. Every element
type (values are moved, not computed)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


@register(Op.SELECT_V2)
class SelectV2(Kernel):
    def prepare(self):
        node = self.node
        c, x, y = node.inputs
        if c.dtype != np.bool_:
            raise node.fail(f"condition must be bool, got {c.dtype}")
        if x.dtype != y.dtype:
            raise node.fail(f"x and y types differ ({x.dtype} vs {y.dtype})")
        try:
            return [tuple(np.broadcast_shapes(c.shape, x.shape, y.shape))]
        except ValueError:
            raise node.fail(f"shapes {list(c.shape)}, {list(x.shape)} and {list(y.shape)} do "
                            "not broadcast") from None

    def eval(self, inputs):
        c, x, y = inputs
        return [np.asarray(np.where(c, x, y)).astype(x.dtype, copy=False)]
