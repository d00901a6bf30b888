"""CUMSUM along ``axis`` (input 1, a scalar int32 tensor, negative counts from the end) for
float32, int32 and int64 (integers wrap), with ``exclusive`` (start from 0, leave out the own
element) and ``reverse`` (accumulate from the end). Floats accumulate sequentially in float32,
as TFLite does."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from .registry import register


@register(Op.CUMSUM)
class Cumsum(Kernel):
    def prepare(self):
        node = self.node
        check_types(node, (np.float32, np.int32, np.int64))
        ax = node.inputs[1]
        if ax is None or ax.dtype not in (np.int32, np.int64) or np.prod(ax.shape) != 1:
            raise node.fail("axis must be a one-element int32 tensor")
        opts = node.options
        self.exclusive = bool(opts.exclusive) if opts is not None else False
        self.reverse = bool(opts.reverse) if opts is not None else False
        self.axis = None if ax.data is None else self._axis(ax.data)
        return [node.inputs[0].shape]

    def _axis(self, value) -> int:
        rank = len(self.node.inputs[0].shape)
        a = int(np.asarray(value).reshape(-1)[0])
        if not -rank <= a < rank:
            raise self.node.fail(f"axis {a} is outside rank {rank}")
        return a % rank

    def eval(self, inputs):
        x = inputs[0]
        axis = self.axis if self.axis is not None else self._axis(inputs[1])
        if self.reverse:
            x = np.flip(x, axis)
        y = np.cumsum(x, axis=axis, dtype=x.dtype)
        if self.exclusive and x.shape[axis]:
            # shift by one along the axis so that y[i] = sum(x[:i])
            pads = [(0, 0)] * x.ndim
            pads[axis] = (1, 0)
            cut = [slice(None)] * x.ndim
            cut[axis] = slice(0, -1)
            y = np.pad(y, pads)[tuple(cut)]
        if self.reverse:
            y = np.flip(y, axis)
        return [np.ascontiguousarray(y)]
