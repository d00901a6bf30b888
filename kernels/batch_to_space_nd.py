"""BATCH_TO_SPACE_ND: inputs (tensor, block_shape [M], crops [M, 2]); the inverse of
SPACE_TO_BATCH_ND: batch blocks move back into the M spatial dimensions, which are then
cropped. Any dtype (quantized input and output must share scale and zero point)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    INDEX_DTYPES,
    ParamKernel,
    param_value,
    require_dense,
    require_same_dtype,
)
from .registry import register
from .space_to_batch_nd import block_and_pairs, check_block_quant


@register(Op.BATCH_TO_SPACE_ND)
class BatchToSpaceNd(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        for k in (1, 2):
            if node.inputs[k] is None or node.inputs[k].dtype not in INDEX_DTYPES:
                raise node.fail("block_shape and crops must be int32 tensors")
        check_block_quant(node)
        return super().prepare()

    def params(self, inputs):
        b, c = param_value(self.node, 1, inputs), param_value(self.node, 2, inputs)
        if b is None or c is None:
            return None
        shape = self.node.inputs[0].shape if inputs is None else inputs[0].shape
        block, crops = block_and_pairs(self.node, b, c, shape, "crops")
        if shape[0] % math.prod(block):
            raise self.node.fail(f"batch {shape[0]} is not a multiple of the block size "
                                 f"{math.prod(block)}")
        for i, (bs, (a, z)) in enumerate(zip(block, crops)):
            if a + z > shape[i + 1] * bs:
                raise self.node.fail(f"crops {[a, z]} exceed dimension {i + 1} "
                                     f"({shape[i + 1] * bs})")
        return block, crops

    def shapes(self, p):
        block, crops = p
        shape = self.node.inputs[0].shape
        m = len(block)
        spatial = [shape[i + 1] * bs - a - z for i, (bs, (a, z)) in enumerate(zip(block, crops))]
        return [(shape[0] // math.prod(block), *spatial, *shape[m + 1:])]

    def run(self, p, inputs):
        block, crops = p
        x = inputs[0]
        m = len(block)
        rest = x.shape[m + 1:]
        n = x.shape[0] // math.prod(block)
        spatial = x.shape[1:m + 1]
        y = x.reshape(*block, n, *spatial, *rest)
        # [b1..bm, N, H1..Hm, rest] -> [N, H1, b1, ..., Hm, bm, rest]
        order = [m]
        for i in range(m):
            order += [m + 1 + i, i]
        order += list(range(2 * m + 1, 2 * m + 1 + len(rest)))
        y = y.transpose(order).reshape(n, *(h * bs for h, bs in zip(spatial, block)), *rest)
        idx = (slice(None),) + tuple(slice(a, y.shape[i + 1] - z)
                                     for i, (a, z) in enumerate(crops))
        return [np.ascontiguousarray(y[idx])]
