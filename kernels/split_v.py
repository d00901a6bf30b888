"""SPLIT_V: inputs (tensor, size_splits, axis); parts of the given sizes along the axis, one
size may be -1 (the remainder). Any dtype."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    ParamKernel,
    int_list,
    norm_axis,
    param_value,
    require_dense,
    require_same_dtype,
)
from .registry import register


@register(Op.SPLIT_V)
class SplitV(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        if len(node.inputs) != 3:
            raise node.fail("takes (input, size_splits, axis)")
        require_dense(node, 0)
        for o in node.outputs:
            require_same_dtype(node, node.inputs[0], o)
        sizes, a = param_value(node, 1, inputs), param_value(node, 2, inputs)
        if sizes is None or a is None:
            return None
        shape = node.inputs[0].shape if inputs is None else inputs[0].shape
        axis_v = int_list(a)
        if len(axis_v) != 1:
            raise node.fail(f"axis must hold one value, got {axis_v}")
        axis = norm_axis(node, axis_v[0], len(shape))
        sizes = int_list(sizes)
        if len(sizes) != len(node.outputs):
            raise node.fail(f"{len(sizes)} split sizes for {len(node.outputs)} outputs")
        if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
            raise node.fail(f"invalid split sizes {sizes}")
        if -1 in sizes:
            rest = shape[axis] - sum(s for s in sizes if s != -1)
            if rest < 0:
                raise node.fail(f"split sizes {sizes} exceed dimension {shape[axis]}")
            sizes[sizes.index(-1)] = rest
        if sum(sizes) != shape[axis]:
            raise node.fail(f"split sizes {sizes} do not add up to dimension {shape[axis]}")
        return axis, sizes

    def shapes(self, p):
        axis, sizes = p
        out = []
        for s in sizes:
            shape = list(self.node.inputs[0].shape)
            shape[axis] = s
            out.append(tuple(shape))
        return out

    def run(self, p, inputs):
        axis, sizes = p
        cuts = np.cumsum(sizes)[:-1]
        return [np.ascontiguousarray(a) for a in np.split(inputs[0], cuts, axis=axis)]
