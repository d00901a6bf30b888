"""LOG_SOFTMAX over the last axis: float32 ``x - max - log(sum(exp(x - max)))``; quantized
int8/uint8 as LiteRT's optimized kernel computes it, in float32 from an exponential table (see
``_qelementwise.prepare_log_softmax_8bit``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _qelementwise as q
from ._common import Kernel
from ._elementwise import check_types
from .registry import register


@register(Op.LOG_SOFTMAX)
class LogSoftmax(Kernel):
    def prepare(self):
        node = self.node
        x = node.inputs[0]
        self.qfn = None
        if x.dtype in (np.int8, np.uint8):
            if node.outputs[0].dtype != x.dtype:
                raise node.fail("input and output types differ")
            self.qfn = q.prepare_log_softmax_8bit(node, x, node.outputs[0])
        else:
            check_types(node, (np.float32,))
        if len(x.shape) == 0:
            raise node.fail("input must have at least one dimension")
        return [x.shape]

    def eval(self, inputs):
        if self.qfn is not None:
            return [self.qfn(inputs[0])]
        x = inputs[0]
        if x.size == 0:
            return [x.copy()]
        with np.errstate(all="ignore"):
            s = x - x.max(axis=-1, keepdims=True)
            y = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
        return [y.astype(np.float32)]
