"""ADD_N: the sum of N >= 2 tensors of one shape and type (float32 or int32), added one input
after the other as LiteRT does (so float rounding matches); int32 wraps."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from .registry import register


@register(Op.ADD_N)
class AddN(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) < 2:  # as LiteRT
            raise node.fail(f"needs at least 2 inputs, got {len(node.inputs)}")
        check_types(node, (np.float32, np.int32), inputs=range(len(node.inputs)))
        first = node.inputs[0]
        for k, t in enumerate(node.inputs[1:], 1):
            if t.dtype != first.dtype or tuple(t.shape) != tuple(first.shape):
                raise node.fail(f"input {k} is {t.dtype}{list(t.shape)}, input 0 is "
                                f"{first.dtype}{list(first.shape)}: all must match")
        return [first.shape]

    def eval(self, inputs):
        out = np.array(inputs[0], copy=True)
        with np.errstate(over="ignore"):
            for x in inputs[1:]:
                out += x
        return [out]
