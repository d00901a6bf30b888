"""TRANSPOSE: permute dimensions by ``perm`` (an int32/int64 input, a permutation of
``0..rank-1``). Any dtype."""

from __future__ import annotations

import numpy as np

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


@register(Op.TRANSPOSE)
class Transpose(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        p = param_value(node, 1, inputs)
        if p is None:
            return None
        rank = len(node.inputs[0].shape if inputs is None else inputs[0].shape)
        perm = int_list(p)
        if sorted(perm) != list(range(rank)):
            raise node.fail(f"perm {perm} is not a permutation of the {rank} dimensions")
        return tuple(perm)

    def shapes(self, perm):
        shape = self.node.inputs[0].shape
        return [tuple(shape[i] for i in perm)]

    def run(self, perm, inputs):
        return [np.ascontiguousarray(np.transpose(inputs[0], perm))]
