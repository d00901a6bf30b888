"""REDUCE_ANY (bool) over constant or run-time axes with ``keep_dims``; empty gives False."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel
from .registry import register


@register(Op.REDUCE_ANY)
class ReduceAny(ReduceKernel):
    dtypes = (np.bool_,)

    def reduce(self, x, axes):
        return np.any(x, axis=axes)
