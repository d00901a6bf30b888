"""SOFTMAX over the last axis with ``beta``: float32 ``exp(beta * (x - max)) / sum``; quantized
int8/uint8 inputs (to int8/uint8/int16 outputs) through LiteRT's float exponential table, int16
through its two interpolated int16 tables (see ``_qelementwise``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _qelementwise as q
from ._common import Kernel
from ._float_only import require_float
from .registry import register


@register(Op.SOFTMAX)
class Softmax(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        self.beta = np.float32(node.options.beta)
        self.qfn = None
        if x.dtype in (np.int8, np.uint8, np.int16) and not np.isfinite(self.beta):
            raise node.fail(f"beta {float(self.beta)} is not finite")
        if x.dtype in (np.int8, np.uint8):
            self.qfn = q.prepare_softmax_8bit(node, x, out, float(self.beta))
        elif x.dtype == np.int16:
            self.qfn = q.prepare_softmax_int16(node, x, out, float(self.beta))
        else:
            require_float(node)
        if len(x.shape) == 0:
            raise node.fail("input must have at least one dimension")
        return [x.shape]

    def eval(self, inputs):
        if self.qfn is not None:
            return [self.qfn(inputs[0])]
        x = inputs[0]
        e = np.exp((x - x.max(axis=-1, keepdims=True)) * self.beta)
        return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]
