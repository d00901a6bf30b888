"""ARG_MAX along one axis (input 1: a one-element int32/int64 tensor, negative from the end),
output int32 or int64 (``ArgMaxOptions.output_type``, the output tensor's type). Ties give the
first index. For floats, NaNs are skipped (the first index holding the largest non-NaN value;
0 when all are NaN). LiteRT's C++ loop keeps the first element unless a later one compares
greater, but its x86 build does not behave that way with NaNs (``[NaN, 1, 2, 3, 0]`` gives 4,
``[NaN, inf, -inf, 0.1, -0.5]`` gives 4 for ARG_MIN too), so with NaN inputs the two can
differ; without NaNs they agree. float32, bool and every integer type (quantized integers are
compared as stored). An empty axis is an error, as in LiteRT."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from .registry import register

DTYPES = (np.float32, np.float16, np.bool_)
RAW = (np.int8, np.uint8, np.int16, np.int32, np.int64)


class ArgMinMax(Kernel):
    largest = True

    def prepare(self):
        node = self.node
        check_types(node, DTYPES, RAW)
        ax, out = node.inputs[1], node.outputs[0]
        if ax is None or ax.dtype not in (np.int32, np.int64) or np.prod(ax.shape) != 1:
            raise node.fail("axis must be a one-element int32 or int64 tensor")
        if out.dtype not in (np.int32, np.int64):
            raise node.fail(f"output type must be int32 or int64, got {out.dtype}")
        if ax.data is None:  # run-time axis: the output shape depends on its value
            self.axis = None
            return [out.shape]
        self.axis = self._axis(ax.data)
        shape = node.inputs[0].shape
        return [shape[:self.axis] + shape[self.axis + 1:]]

    def _axis(self, value) -> int:
        rank = len(self.node.inputs[0].shape)
        a = int(np.asarray(value).reshape(-1)[0])
        if not -rank <= a < rank:
            raise self.node.fail(f"axis {a} is outside rank {rank}")
        return a % rank

    def eval(self, inputs):
        x = inputs[0]
        axis = self.axis if self.axis is not None else self._axis(inputs[1])
        if x.shape[axis] == 0:
            raise self.node.fail(f"cannot take the arg {'max' if self.largest else 'min'} over "
                                 f"axis {axis} of size 0 (input {list(x.shape)})")
        if x.dtype.kind == "f":
            fill = -np.inf if self.largest else np.inf
            xf = np.where(np.isnan(x), fill, x)
            best = xf.max(axis=axis, keepdims=True) if self.largest else \
                xf.min(axis=axis, keepdims=True)
            idx = np.argmax(x == best, axis=axis)  # first hit, 0 if none (all NaN)
        else:
            idx = np.argmax(x, axis=axis) if self.largest else np.argmin(x, axis=axis)
        return [np.asarray(idx, dtype=self.node.outputs[0].dtype)]


@register(Op.ARG_MAX)
class ArgMax(ArgMinMax):
    largest = True
