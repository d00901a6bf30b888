"""REDUCE_MIN over constant or run-time axes with ``keep_dims``; conventions as REDUCE_MAX (an
empty reduction gives the largest value, FLT_MAX for floats)."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._elementwise import FLOAT, INTS, SMALL_INTS, ReduceKernel
from .reduce_max import nan_fold, require_same_params
from .registry import register


@register(Op.REDUCE_MIN)
class ReduceMin(ReduceKernel):
    dtypes = FLOAT
    raw = INTS + SMALL_INTS

    def prepare(self):
        require_same_params(self.node)
        return super().prepare()

    def reduce(self, x, axes):
        return nan_fold(x, axes, largest=False)
