"""ADD: float32/float16, int32/int64 and non-quantized int16, numpy broadcasting, fused activation
as a clamp (see ``_binary``). ``pot_scale_int16`` only matters on the quantized int16 path."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import FLOAT, INTS
from .registry import register


@register(Op.ADD)
class Add(BinaryKernel):
    dtypes = FLOAT + INTS + (np.float16, np.int16)
    clamps = True
    fn = staticmethod(np.add)
