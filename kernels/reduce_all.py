"""REDUCE_ALL (bool) over constant or run-time axes with ``keep_dims``; empty gives True."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel
from .registry import register


@register(Op.REDUCE_ALL)
class ReduceAll(ReduceKernel):
    dtypes = (np.bool_,)

    def reduce(self, x, axes):
        return np.all(x, axis=axes)
