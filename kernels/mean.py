"""MEAN (float32) over constant or runtime axes, with keep_dims."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._float_only import require_float
from .registry import register


def reduce_axes(node, axes_value, rank: int) -> tuple[int, ...]:
    axes = np.asarray(axes_value).reshape(-1).tolist()
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise node.fail(f"reduction axis {a} is outside rank {rank}")
        out.append(a % rank)
    return tuple(sorted(set(out)))


@register(Op.MEAN)
class Mean(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x, ax = node.inputs[0], node.inputs[1]
        self.axes = None
        keep = bool(node.options.keep_dims) if node.options is not None else False
        if ax.data is None:
            return [node.outputs[0].shape]
        self.axes = reduce_axes(node, ax.data, len(x.shape))
        if keep:
            return [tuple(1 if i in self.axes else d for i, d in enumerate(x.shape))]
        return [tuple(d for i, d in enumerate(x.shape) if i not in self.axes)]

    def eval(self, inputs):
        x = inputs[0]
        axes = self.axes if self.axes is not None else reduce_axes(self.node, inputs[1], x.ndim)
        keep = bool(self.node.options.keep_dims) if self.node.options is not None else False
        return [np.mean(x, axis=axes, keepdims=keep, dtype=np.float32)]
