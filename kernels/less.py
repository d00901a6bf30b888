"""LESS: ``a < b`` elementwise with broadcasting, bool output. float32/float16, int16 (as
stored), int32, int64; quantized int8/uint8 compared after
rescaling both sides to a common fixed-point scale (see ``_qelementwise.prepare_comparison``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import ComparisonKernel
from .registry import register


@register(Op.LESS)
class Less(ComparisonKernel):
    fn = staticmethod(np.less)
