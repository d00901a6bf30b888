"""REDUCE_PROD over constant or run-time axes with ``keep_dims`` (float32, int32, int64;
integers wrap; an empty reduction gives 1). Quantized int8/int16: each partial product
rescaled as LiteRT does (see ``_qelementwise.prepare_reduce_prod``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import ReduceKernel, move_to_end
from ._qelementwise import prepare_reduce_prod
from .registry import register


@register(Op.REDUCE_PROD)
class ReduceProd(ReduceKernel):
    quantized = (np.int8, np.uint8, np.int16)

    def prepare_quantized(self, x, out):
        return prepare_reduce_prod(self.node, x, out)

    def reduce(self, x, axes):
        if x.dtype.kind == "f":  # one element at a time, in row-major order, as TFLite
            y = move_to_end(x, axes)
            if y.shape[-1] == 0:
                return np.ones(y.shape[:-1], x.dtype)
            return np.cumprod(y, axis=-1, dtype=x.dtype)[..., -1]
        return np.prod(x, axis=axes, dtype=x.dtype)
