"""ZEROS_LIKE: zeros of the input's shape and dtype (non-quantized dtypes; for a quantized
tensor real zero is the zero point, which is not supported yet). TFLite has no ONES_LIKE
builtin: the converter lowers ``tf.ones_like`` to FILL/BROADCAST_TO."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import is_quantized, require_dense, require_same_dtype
from .registry import register


@register(Op.ZEROS_LIKE)
class ZerosLike(Kernel):
    def prepare(self):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        if is_quantized(node.inputs[0]) or is_quantized(node.outputs[0]):
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{node.outputs[0].dtype} quantized inputs are not "
                                     "supported yet")
        return [node.inputs[0].shape]

    def eval(self, inputs):
        return [np.zeros(inputs[0].shape, dtype=self.node.outputs[0].dtype)]
