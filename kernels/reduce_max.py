"""REDUCE_MAX over constant or run-time axes with ``keep_dims``. float32 and every integer type
(quantized integers compared as stored). An empty reduction gives the lowest value (-FLT_MAX
for floats, while a reduction of -inf values is -inf). NaNs follow TFLite's sequential fold
``acc > x ? acc : x`` (see ``nan_fold``). Quantized int8/uint8/int16 compare the stored
integers and need equal input/output parameters, as in LiteRT."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import FLOAT, INTS, SMALL_INTS, ReduceKernel, move_to_end
from ._qelementwise import qparams
from .registry import register


def require_same_params(node) -> None:
    """LiteRT reduces int8/uint8/int16 as stored and refuses different input/output scales or
    zero points (REDUCE_MAX, REDUCE_MIN)."""
    x, out = node.inputs[0], node.outputs[0]
    if x is not None and x.dtype in SMALL_INTS and qparams(x) != qparams(out):
        raise node.fail("input and output quantization (scale, zero point) must be equal")


def nan_fold(x: np.ndarray, axes, largest: bool) -> np.ndarray:
    """TFLite's fold ``acc = keep(acc, x) ? acc : x`` over the reduced elements in row-major
    order, starting from the first one (an empty reduction gives the lowest/largest value).
    For floats a NaN makes ``acc`` NaN and the next element replaces it, so the result is the
    extreme of the elements after the last NaN, or NaN when the last element is NaN."""
    dt = x.dtype
    info = np.finfo(dt) if dt.kind == "f" else np.iinfo(dt)
    init = info.min if largest else info.max
    fold = np.max if largest else np.min
    if dt.kind != "f":
        return fold(x, axis=axes, initial=init)
    y = move_to_end(x, axes)
    n = y.shape[-1]
    if n == 0:
        return np.full(y.shape[:-1], init, dt)
    pos = np.arange(n)
    last_nan = np.max(np.where(np.isnan(y), pos, -1), axis=-1)
    fill = -np.inf if largest else np.inf
    tail = fold(np.where(pos > last_nan[..., None], y, fill), axis=-1, initial=fill)
    return np.where(last_nan == n - 1, np.nan, tail).astype(dt)


@register(Op.REDUCE_MAX)
class ReduceMax(ReduceKernel):
    dtypes = FLOAT
    raw = INTS + SMALL_INTS

    def prepare(self):
        require_same_params(self.node)
        return super().prepare()

    def reduce(self, x, axes):
        return nan_fold(x, axes, largest=True)
