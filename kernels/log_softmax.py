"""LOG_SOFTMAX (float32) over the last axis: ``x - max - log(sum(exp(x - max)))``.
Quantized int8/uint8 not yet."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from .registry import register


@register(Op.LOG_SOFTMAX)
class LogSoftmax(Kernel):
    def prepare(self):
        node = self.node
        check_types(node, (np.float32,))
        if len(node.inputs[0].shape) == 0:
            raise node.fail("input must have at least one dimension")
        return [node.inputs[0].shape]

    def eval(self, inputs):
        x = inputs[0]
        if x.size == 0:
            return [x.copy()]
        with np.errstate(all="ignore"):
            s = x - x.max(axis=-1, keepdims=True)
            y = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
        return [y.astype(np.float32)]
