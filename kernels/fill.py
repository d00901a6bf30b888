"""FILL: a tensor of shape ``dims`` (an int32/int64 vector) filled with the scalar ``value``
(any dtype; a quantized value must carry the output's scale and zero point)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    INDEX_DTYPES,
    ParamKernel,
    is_quantized,
    require_dense,
    require_same_dtype,
    require_same_quant,
    shape_param,
)
from .registry import register


@register(Op.FILL)
class Fill(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        dims, value = node.inputs[0], node.inputs[1]
        require_dense(node, 1)
        require_same_dtype(node, value, node.outputs[0])
        if dims.dtype not in INDEX_DTYPES or len(dims.shape) != 1:
            raise node.fail("dims must be an int32 or int64 vector")
        if int(np.prod(value.shape)) != 1 or len(value.shape) != 0 and value.shape != (1,):
            raise node.fail(f"value must be a scalar, got shape {list(value.shape)}")
        if is_quantized(value) or is_quantized(node.outputs[0]):
            require_same_quant(node, value, node.outputs[0])
        return super().prepare()

    def params(self, inputs):
        return shape_param(self.node, 0, inputs)

    def shapes(self, shape):
        return [shape]

    def run(self, shape, inputs):
        return [np.full(shape, np.asarray(inputs[1]).reshape(-1)[0],
                        dtype=self.node.outputs[0].dtype)]
