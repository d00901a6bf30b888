"""UNPACK: split a tensor into ``num`` tensors along ``axis``, removing that axis (any dtype;
outputs carry the input's quantization, as TFLite requires)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    norm_axis,
    require_dense,
    require_same_dtype,
    require_same_quant,
)
from .registry import register


@register(Op.UNPACK)
class Unpack(Kernel):
    def prepare(self):
        node = self.node
        x = node.inputs[0]
        require_dense(node, 0)
        num = int(node.options.num)
        axis = int(node.options.axis)
        if len(x.shape) == 0:
            raise node.fail("cannot unpack a scalar")
        self.axis = norm_axis(node, axis, len(x.shape))
        if num != len(node.outputs) or num != x.shape[self.axis]:
            raise node.fail(f"num {num} must equal the {len(node.outputs)} outputs and the "
                            f"input's dimension {x.shape[self.axis]} on axis {self.axis}")
        for o in node.outputs:
            require_same_dtype(node, x, o)
            require_same_quant(node, x, o)
        shape = tuple(d for i, d in enumerate(x.shape) if i != self.axis)
        return [shape] * num

    def eval(self, inputs):
        x = np.moveaxis(inputs[0], self.axis, 0)
        return [np.ascontiguousarray(x[i]) for i in range(x.shape[0])]
