"""DEQUANTIZE: float16 (usually constant weights) to float32, exact. Integer (int8/uint8/
int16) inputs need scales, not supported yet."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


@register(Op.DEQUANTIZE)
class Dequantize(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        if x.dtype != np.float16:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.dtype or x.tensor.type_name} quantized inputs are not "
                                     "supported yet")
        if out.dtype != np.float32:
            raise node.fail(f"output must be float32, got {out.dtype}")
        self.value = None
        if x.data is not None:
            self.value = x.data.astype(np.float32)
            self.value.flags.writeable = False
        return [x.shape]

    def eval(self, inputs):
        if self.value is not None:
            return [self.value]
        return [inputs[0].astype(np.float32)]
