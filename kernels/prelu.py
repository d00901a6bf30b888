"""PRELU (float32): ``x >= 0 ? x : x * alpha`` with ``alpha`` broadcast to the shape of ``x``
(as in LiteRT, the broadcast may not enlarge ``x``). Quantized int8/uint8 not yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel, broadcast_shape
from ._elementwise import check_types
from .registry import register


@register(Op.PRELU)
class Prelu(Kernel):
    def prepare(self):
        node = self.node
        check_types(node, (np.float32,), inputs=(0, 1))
        x, alpha = node.inputs
        if broadcast_shape(x.shape, alpha.shape, node) != tuple(x.shape):
            raise node.fail(f"alpha {list(alpha.shape)} does not broadcast to the input "
                            f"{list(x.shape)}")
        return [x.shape]

    def eval(self, inputs):
        x, alpha = inputs
        with np.errstate(all="ignore"):
            return [np.asarray(np.where(x >= 0, x, x * alpha), dtype=np.float32)]
