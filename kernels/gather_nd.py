"""GATHER_ND: slices of ``params`` addressed by the last dimension of ``indices``
(int16/int32/int64); output shape ``indices.shape[:-1] + params.shape[indices.shape[-1]:]``.
Any params dtype. As LiteRT, every index component is checked against its dimension (a
negative or too large component is an error, even where the flat offset would fall inside
params)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import require_dense, require_same_dtype
from .gather import POSITION_DTYPES
from .registry import register


def flat_rows(node, idx: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Row numbers (in units of the slice size) of each index vector into ``shape``, checked
    the way LiteRT checks them: every component in ``[0, shape[j])``."""
    nd = idx.shape[-1]
    idx = idx.reshape(-1, nd).astype(np.int64)
    if idx.size and idx.min() < 0:
        raise node.fail(f"{what} has a negative index")
    if idx.size:
        over = idx >= np.asarray(shape[:nd], np.int64)
        if over.any():
            k, j = (int(v) for v in np.argwhere(over)[0])
            raise node.fail(f"{what} index out of bounds: index vector {k} "
                            f"{idx[k].tolist()} has {int(idx[k, j])} in dimension {j} of size "
                            f"{shape[j]}")
    rows_per = [math.prod(shape[j + 1:nd]) for j in range(nd)]
    return idx @ np.asarray(rows_per, np.int64) if nd else np.zeros(idx.shape[0], np.int64)


@register(Op.GATHER_ND)
class GatherNd(Kernel):
    def prepare(self):
        node = self.node
        x, idx = node.inputs[0], node.inputs[1]
        require_dense(node, 0)
        require_same_dtype(node, x, node.outputs[0])
        if idx.dtype not in POSITION_DTYPES:
            raise node.fail(f"indices must be int16, int32 or int64, got {idx.dtype}")
        if len(x.shape) < 1 or len(idx.shape) < 1:
            raise node.fail("params and indices must be at least vectors")
        nd = idx.shape[-1]
        if nd > len(x.shape):
            raise node.fail(f"index depth {nd} exceeds the params rank {len(x.shape)}")
        return [tuple(idx.shape[:-1]) + tuple(x.shape[nd:])]

    def eval(self, inputs):
        x, idx = inputs[0], inputs[1]
        nd = idx.shape[-1]
        out_shape = idx.shape[:-1] + x.shape[nd:]
        if x.size == 0:
            if idx.size:
                raise self.node.fail("cannot gather from empty params")
            return [np.zeros(out_shape, x.dtype)]
        rows = flat_rows(self.node, idx, x.shape, "gather_nd")
        flat = x.reshape(math.prod(x.shape[:nd]), -1)
        return [flat[rows].reshape(out_shape)]
