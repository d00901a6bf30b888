"""LOGICAL_NOT of a bool tensor."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register


@register(Op.LOGICAL_NOT)
class LogicalNot(UnaryKernel):
    dtypes = (np.bool_,)
    fn = staticmethod(np.logical_not)
