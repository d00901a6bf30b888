"""LOGICAL_AND of two bool tensors, with broadcasting."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import ComparisonKernel
from .registry import register


@register(Op.LOGICAL_AND)
class LogicalAnd(ComparisonKernel):
    dtypes = (np.bool_,)
    raw = ()
    fn = staticmethod(np.logical_and)
