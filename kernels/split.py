"""SPLIT: inputs (axis, tensor); ``num_splits`` equal parts along the axis (any dtype).

The axis is a scalar input: a constant is resolved in prepare, a runtime value per invoke."""

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


@register(Op.SPLIT)
class Split(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        if len(node.inputs) != 2:
            raise node.fail("takes (axis, input)")
        require_dense(node, 1)
        for o in node.outputs:
            require_same_dtype(node, node.inputs[1], o)
        a = param_value(node, 0, inputs)
        if a is None:
            return None
        shape = node.inputs[1].shape if inputs is None else inputs[1].shape
        vals = int_list(a)
        if len(vals) != 1:
            raise node.fail(f"axis must hold one value, got {vals}")
        axis = norm_axis(node, vals[0], len(shape))
        n = int(node.options.num_splits)
        if n != len(node.outputs) or n <= 0 or shape[axis] % n:
            raise node.fail(f"cannot split dimension {shape[axis]} (axis {axis}) into "
                            f"{len(node.outputs)} outputs (num_splits {n})")
        return axis, n

    def shapes(self, p):
        axis, n = p
        shape = list(self.node.inputs[1].shape)
        shape[axis] //= n
        return [tuple(shape)] * n

    def run(self, p, inputs):
        axis, n = p
        x = inputs[1]
        size = x.shape[axis] // n
        index = [slice(None)] * x.ndim
        outs = []
        for k in range(n):  # plain slices: np.split's Python wrapper costs ~10 us per call
            index[axis] = slice(k * size, (k + 1) * size)
            outs.append(np.ascontiguousarray(x[tuple(index)]))
        return outs
