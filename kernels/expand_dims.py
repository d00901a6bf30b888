"""EXPAND_DIMS: insert a size-1 dimension at ``axis`` (an int32/int64 input holding one value
in ``[-rank-1, rank]``). Any dtype."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    ParamKernel,
    int_list,
    param_value,
    require_dense,
    require_same_dtype,
)
from .registry import register


@register(Op.EXPAND_DIMS)
class ExpandDims(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        a = param_value(node, 1, inputs)
        if a is None:
            return None
        shape = node.inputs[0].shape if inputs is None else inputs[0].shape
        vals = int_list(a)
        if len(vals) != 1:
            raise node.fail(f"axis must hold one value, got {vals}")
        rank = len(shape)
        axis = vals[0]
        if not -rank - 1 <= axis <= rank:
            raise node.fail(f"axis {axis} is outside [{-rank - 1}, {rank}]")
        if axis < 0:
            axis += rank + 1
        out = list(shape)
        out.insert(axis, 1)
        return tuple(out)

    def shapes(self, p):
        return [p]

    def run(self, p, inputs):
        return [inputs[0].reshape(p)]
