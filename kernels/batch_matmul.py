"""BATCH_MATMUL (float32): ``lhs [..., M, K] @ rhs [..., K, N]`` with adj_x / adj_y transposing
the last two dims of an operand and the batch dims (ranks 2-5) broadcasting numpy-style."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel, broadcast_shape
from .registry import register


@register(Op.BATCH_MATMUL)
class BatchMatMul(Kernel):
    def prepare(self):
        node = self.node
        a, b = node.inputs[0], node.inputs[1]
        for t in (a, b):
            if t.dtype != np.float32:
                raise UnsupportedOpError(node.op.name, node.path,
                                         f"{t.dtype} inputs are not supported yet (float32 only)")
        if not (2 <= len(a.shape) <= 5 and 2 <= len(b.shape) <= 5):
            raise node.fail(f"operands {list(a.shape)} and {list(b.shape)} must have rank 2-5")
        o = node.options
        self.adj_x = bool(o.adj_x) if o is not None else False
        self.adj_y = bool(o.adj_y) if o is not None else False
        m, k = (a.shape[-1], a.shape[-2]) if self.adj_x else (a.shape[-2], a.shape[-1])
        k2, n = (b.shape[-1], b.shape[-2]) if self.adj_y else (b.shape[-2], b.shape[-1])
        if k != k2:
            raise node.fail(f"contraction sizes differ: {list(a.shape)} (adj_x={self.adj_x}) "
                            f"and {list(b.shape)} (adj_y={self.adj_y})")
        batch = broadcast_shape(a.shape[:-2], b.shape[:-2], node)
        return [(*batch, m, n)]

    def eval(self, inputs):
        a, b = inputs[0], inputs[1]
        if self.adj_x:
            a = np.swapaxes(a, -1, -2)
        if self.adj_y:
            b = np.swapaxes(b, -1, -2)
        return [np.ascontiguousarray(np.matmul(a, b), dtype=np.float32)]
