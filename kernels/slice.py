"""SLICE: inputs (tensor, begin, size), begin/size int32 or int64 with one value per dimension;
a size of -1 takes everything from begin to the end. Any dtype."""

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


@register(Op.SLICE)
class Slice(ParamKernel, Kernel):
    param_inputs = (1, 2)  # begin, size (and the input's shape)

    def params(self, inputs):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        b, s = param_value(node, 1, inputs), param_value(node, 2, inputs)
        if b is None or s is None:
            return None
        shape = node.inputs[0].shape if inputs is None else inputs[0].shape
        begin, size = int_list(b), int_list(s)
        if len(begin) != len(shape) or len(size) != len(shape):
            raise node.fail(f"begin {begin} and size {size} need one value per dimension of "
                            f"{list(shape)}")
        out = []
        for d, (n, b0, s0) in enumerate(zip(shape, begin, size)):
            if s0 == -1:
                s0 = n - b0
            if b0 < 0 or s0 < 0 or b0 + s0 > n:
                raise node.fail(f"slice [{b0}, {b0}+{s0}) is outside dimension {d} of size {n}")
            out.append((b0, s0))
        return tuple(out)

    def shapes(self, p):
        return [tuple(s for _, s in p)]

    def run(self, p, inputs):
        return [inputs[0][tuple(slice(b, b + s) for b, s in p)].copy()]
