"""ADD: float32/float16, int32/int64 and non-quantized int16, numpy broadcasting, fused activation
as a clamp (see ``_binary``). Quantized int8/uint8/int16: TFLite's general rescaling add (left
shift 20 for 8-bit types, 15 for int16), or for int16 with power-of-two scales and
``pot_scale_int16`` the saturating shift-and-add path (see ``_qelementwise.prepare_add_sub``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS
from ._qelementwise import prepare_add_sub
from .registry import register


@register(Op.ADD)
class Add(BinaryKernel):
    dtypes = FLOAT + INTS + (np.float16, np.int16)
    quantized = (np.int8, np.uint8, np.int16)
    clamps = True
    fn = staticmethod(np.add)

    def prepare_quantized(self, a, b, out):
        return prepare_add_sub(self.node, a, b, out, subtract=False)
