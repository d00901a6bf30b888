"""GATHER: ``params`` rows picked by ``positions`` (int16/int32/int64) along ``axis``, with
``batch_dims`` leading dimensions shared by params and positions (negative values count from
the end, as TFLite). Any params dtype. Negative or out-of-range positions are an error, as in
TFLite (it does not wrap negative indices)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import require_dense, require_same_dtype
from .registry import register

POSITION_DTYPES = (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64))


def check_indices(node, idx: np.ndarray, limit: int, what: str = "index") -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= limit):
        bad = idx[(idx < 0) | (idx >= limit)].reshape(-1)[0]
        raise node.fail(f"{what} {int(bad)} is outside [0, {limit})")


@register(Op.GATHER)
class Gather(Kernel):
    def prepare(self):
        node = self.node
        x, pos = node.inputs[0], node.inputs[1]
        require_dense(node, 0)
        require_same_dtype(node, x, node.outputs[0])
        if pos.dtype not in POSITION_DTYPES:
            raise node.fail(f"positions must be int16, int32 or int64, got {pos.dtype}")
        o = node.options
        axis = int(o.axis) if o is not None else 0
        bd = int(o.batch_dims) if o is not None else 0
        xr, pr = len(x.shape), len(pos.shape)
        if axis < 0:
            axis += xr
        if bd < 0:
            bd += pr
        if not 0 <= axis < xr:
            raise node.fail(f"axis {o.axis if o else 0} is outside the params rank {xr}")
        if not (0 <= bd <= axis and bd < xr and bd <= pr):
            raise node.fail(f"batch_dims {o.batch_dims if o else 0} is invalid for axis {axis}, "
                            f"params rank {xr} and positions rank {pr}")
        if tuple(x.shape[:bd]) != tuple(pos.shape[:bd]):
            raise node.fail(f"the first {bd} dimensions of params {list(x.shape)} and positions "
                            f"{list(pos.shape)} differ")
        self.axis, self.bd = axis, bd
        return [tuple(x.shape[:axis]) + tuple(pos.shape[bd:]) + tuple(x.shape[axis + 1:])]

    def eval(self, inputs):
        x, pos = inputs[0], inputs[1]
        axis, bd = self.axis, self.bd
        n = x.shape[axis]
        check_indices(self.node, pos, n, "gather index")
        out_shape = x.shape[:axis] + pos.shape[bd:] + x.shape[axis + 1:]
        if bd == 0:
            return [np.take(x, pos.astype(np.intp), axis=axis)]
        b = math.prod(x.shape[:bd])
        outer = math.prod(x.shape[bd:axis])
        inner = math.prod(x.shape[axis + 1:])
        x4 = x.reshape(b, outer, n, inner)
        p2 = pos.reshape(b, -1).astype(np.intp)
        y = x4[np.arange(b)[:, None, None], np.arange(outer)[None, :, None], p2[:, None, :]]
        return [y.reshape(out_shape)]
