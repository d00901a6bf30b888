"""NOT_EQUAL: ``a != b`` elementwise with broadcasting, bool output. bool, float32/float16, int16
(as stored, or rescaled when quantized), int32, int64; quantized int8/uint8 compared after
rescaling both sides (see ``_qelementwise.prepare_comparison``); STRING tensors compared
byte for byte."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import ComparisonKernel
from .registry import register


@register(Op.NOT_EQUAL)
class NotEqual(ComparisonKernel):
    dtypes = ComparisonKernel.dtypes + (np.bool_, np.object_)
    quantized = (np.int8, np.uint8, np.int16)
    fn = staticmethod(np.not_equal)
