"""SQUEEZE: drop the size-1 dimensions listed in ``squeeze_dims`` (negative allowed), or all
size-1 dimensions when the list is absent or empty. Any dtype."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import norm_axis, require_dense, require_same_dtype
from .registry import register


@register(Op.SQUEEZE)
class Squeeze(Kernel):
    def prepare(self):
        node = self.node
        x = node.inputs[0]
        require_dense(node, 0)
        require_same_dtype(node, x, node.outputs[0])
        dims = node.options.squeeze_dims
        rank = len(x.shape)
        if dims:
            drop = {norm_axis(node, d, rank, "squeeze dimension") for d in dims}
            for d in sorted(drop):
                if x.shape[d] != 1:
                    raise node.fail(f"cannot squeeze dimension {d} of size {x.shape[d]}")
        else:
            drop = {i for i, d in enumerate(x.shape) if d == 1}
        self.shape = tuple(d for i, d in enumerate(x.shape) if i not in drop)
        return [self.shape]

    def eval(self, inputs):
        return [inputs[0].reshape(self.shape)]
