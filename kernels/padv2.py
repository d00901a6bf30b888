"""PADV2: PAD with a scalar ``constant_values`` input of the input's dtype (absent: as PAD).
For uint8, and for quantized int8/int16, the constant must carry the output's scale and zero
point (TFLite's rule), and its stored value is used as is."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._shape import is_quantized, require_same_quant
from .pad import PadBase, zero_pad_value
from .registry import register


@register(Op.PADV2)
class PadV2(PadBase):
    def prepare(self):
        node = self.node
        self.check()
        c = node.inputs[2] if len(node.inputs) > 2 else None
        self.const = c
        self.value = None
        if c is None:
            self.value = zero_pad_value(node)
        else:
            out = node.outputs[0]
            if c.dtype != out.dtype:
                raise node.fail(f"constant_values type {c.dtype} differs from input type "
                                f"{out.dtype}")
            if int(np.prod(c.shape)) != 1:
                raise node.fail(f"constant_values must hold one value, shape {list(c.shape)}")
            if out.dtype == np.uint8 or (out.dtype in (np.int8, np.int16)
                                         and is_quantized(node.inputs[0])):
                require_same_quant(node, out, c, "constant_values")
            if c.data is not None:
                self.value = np.asarray(c.data).reshape(-1)[0]
        return super().prepare()

    def fill_value(self, inputs):
        if self.value is not None:
            return self.value
        return np.asarray(inputs[2]).reshape(-1)[0]
