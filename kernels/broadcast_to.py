"""BROADCAST_TO: broadcast the input to ``shape`` (an int32/int64 vector) with numpy's rules
(the input rank may be smaller; each input dimension is 1 or equal). Any dtype."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    INDEX_DTYPES,
    ParamKernel,
    int_list,
    param_value,
    require_dense,
    require_same_dtype,
)
from .registry import register


@register(Op.BROADCAST_TO)
class BroadcastTo(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        if node.inputs[1] is None or node.inputs[1].dtype not in INDEX_DTYPES:
            raise node.fail("shape must be an int32 or int64 tensor")
        s = param_value(node, 1, inputs)
        if s is None:
            return None
        x_shape = node.inputs[0].shape if inputs is None else inputs[0].shape
        shape = tuple(int_list(s))
        ok = len(x_shape) <= len(shape) and all(
            a == 1 or a == b for a, b in zip(reversed(x_shape), reversed(shape)))
        if not ok or any(d < 0 for d in shape):
            raise node.fail(f"cannot broadcast {list(x_shape)} to {list(shape)}")
        return shape

    def shapes(self, shape):
        return [shape]

    def run(self, shape, inputs):
        return [np.array(np.broadcast_to(inputs[0], shape))]
