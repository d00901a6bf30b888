"""SOFTMAX (float32) over the last axis with ``beta``: exp(beta * (x - max)) / sum."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._float_only import require_float
from .registry import register


@register(Op.SOFTMAX)
class Softmax(Kernel):
    def prepare(self):
        require_float(self.node)
        return [self.node.inputs[0].shape]

    def eval(self, inputs):
        x = inputs[0]
        beta = np.float32(self.node.options.beta if self.node.options is not None else 1.0)
        e = np.exp((x - x.max(axis=-1, keepdims=True)) * beta)
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]
