"""REVERSE_V2: reverse the input along the dimensions listed in ``axis`` (an int32/int64
vector; negative values count from the end). Any dtype."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    INDEX_DTYPES,
    ParamKernel,
    int_list,
    norm_axis,
    param_value,
    require_dense,
    require_same_dtype,
)
from .registry import register


@register(Op.REVERSE_V2)
class ReverseV2(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        if node.inputs[1] is None or node.inputs[1].dtype not in INDEX_DTYPES:
            raise node.fail("axis must be an int32 or int64 tensor")
        a = param_value(node, 1, inputs)
        if a is None:
            return None
        rank = len(node.inputs[0].shape if inputs is None else inputs[0].shape)
        axes = tuple(sorted({norm_axis(node, v, rank) for v in int_list(a)}))
        return axes

    def shapes(self, axes):
        return [self.node.inputs[0].shape]

    def run(self, axes, inputs):
        return [np.ascontiguousarray(np.flip(inputs[0], axes)) if axes else inputs[0].copy()]
