"""TILE: repeat the input ``multiples[i]`` times along each dimension (``multiples`` an
int32/int64 vector of length rank, values >= 0). Any dtype."""

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


@register(Op.TILE)
class Tile(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        if node.inputs[1] is None or node.inputs[1].dtype not in INDEX_DTYPES:
            raise node.fail("multiples must be an int32 or int64 tensor")
        m = param_value(node, 1, inputs)
        if m is None:
            return None
        rank = len(node.inputs[0].shape if inputs is None else inputs[0].shape)
        reps = tuple(int_list(m))
        if len(reps) != rank or any(r < 0 for r in reps):
            raise node.fail(f"multiples {list(reps)} must be {rank} non-negative values")
        return reps

    def shapes(self, reps):
        return [tuple(d * r for d, r in zip(self.node.inputs[0].shape, reps))]

    def run(self, reps, inputs):
        x = inputs[0]
        return [np.tile(x, reps) if reps else x.copy()]
