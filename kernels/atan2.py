"""ATAN2: ``atan2(y, x)`` elementwise (input 0 is ``y``, input 1 is ``x``), float32 or float64.
As LiteRT, both inputs have one shape (no broadcasting: the converter inserts BROADCAST_TO)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types, same_types
from .registry import register


@register(Op.ATAN2)
class Atan2(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2:
            raise node.fail(f"expects 2 inputs, got {len(node.inputs)}")
        check_types(node, (np.float32, np.float64), inputs=(0, 1))
        same_types(node)
        y, x = node.inputs
        if tuple(y.shape) != tuple(x.shape):
            raise node.fail(f"inputs must have one shape, got {list(y.shape)} and "
                            f"{list(x.shape)}")
        return [y.shape]

    def eval(self, inputs):
        y, x = inputs
        with np.errstate(all="ignore"):
            return [np.arctan2(y, x)]
