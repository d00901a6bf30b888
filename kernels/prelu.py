"""PRELU: ``x >= 0 ? x : x * alpha`` with ``alpha`` broadcast to the shape of ``x`` (as in LiteRT,
the broadcast may not enlarge ``x``). float32, and quantized int8/uint8 (two requantizations,
see ``_qelementwise.prepare_prelu``; LiteRT has no int16 PRELU)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _qelementwise as q
from ._common import Kernel, broadcast_shape
from ._elementwise import check_types, same_types
from .registry import register


@register(Op.PRELU)
class Prelu(Kernel):
    def prepare(self):
        node = self.node
        x, alpha = node.inputs
        self.qfn = None
        if x.dtype in (np.int8, np.uint8):
            same_types(node)
            self.qfn = q.prepare_prelu(node, x, alpha, node.outputs[0])
        elif x.dtype == np.int16 and q.is_quantized(x):
            raise q.unsupported(node, "LiteRT has no int16 PRELU kernel")
        else:
            check_types(node, (np.float32,), inputs=(0, 1))
        if broadcast_shape(x.shape, alpha.shape, node) != tuple(x.shape):
            raise node.fail(f"alpha {list(alpha.shape)} does not broadcast to the input "
                            f"{list(x.shape)}")
        return [x.shape]

    def eval(self, inputs):
        x, alpha = inputs
        if self.qfn is not None:
            return [self.qfn(x, alpha)]
        with np.errstate(all="ignore"):
            return [np.asarray(np.where(x >= 0, x, x * alpha), dtype=np.float32)]
