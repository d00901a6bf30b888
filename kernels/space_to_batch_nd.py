"""SPACE_TO_BATCH_ND: inputs (tensor, block_shape [M], paddings [M, 2]); the M spatial
dimensions after the batch are zero-padded and cut into blocks that move into the batch
(output batch index ``block_offset * N + n``, TensorFlow's order). Any dtype; TFLite's 3-D
(NHC) and 4-D (NHWC) cases and any other rank >= M + 1.

Quantized (uint8/int8/int16) input and output must share scale and zero point (int16: zero
point 0) and padding writes the zero point, as TFLite does."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    INDEX_DTYPES,
    ParamKernel,
    int_list,
    param_value,
    quant_of,
    require_dense,
    require_same_dtype,
    require_same_quant,
)
from .registry import register


def check_block_quant(node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    if out.dtype in (np.uint8, np.int8, np.int16):
        require_same_quant(node, x, out)
    if out.dtype == np.int16 and quant_of(out)[1] != 0:
        raise node.fail("int16 input and output must have zero point 0")


def block_and_pairs(node, block, pairs, shape, what: str):
    block = int_list(block)
    m = len(block)
    arr = np.asarray(pairs)
    if m < 1 or len(shape) < m + 1 or arr.shape != (m, 2):
        raise node.fail(f"block_shape {block} and {what} {arr.tolist()} do not fit input "
                        f"{list(shape)}")
    vals = int_list(arr)
    pairs = [(vals[2 * i], vals[2 * i + 1]) for i in range(m)]
    if any(b < 1 for b in block):
        raise node.fail(f"block_shape {block} must be positive")
    if any(a < 0 or b < 0 for a, b in pairs):
        raise node.fail(f"negative {what} {pairs}")
    return tuple(block), tuple(pairs)


@register(Op.SPACE_TO_BATCH_ND)
class SpaceToBatchNd(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        for k in (1, 2):
            if node.inputs[k] is None or node.inputs[k].dtype not in INDEX_DTYPES:
                raise node.fail("block_shape and paddings must be int32 tensors")
        check_block_quant(node)
        out = node.outputs[0]
        self.fill = out.dtype.type(quant_of(out)[1]) if out.dtype.kind in "iu" else \
            out.dtype.type(0)
        return super().prepare()

    def params(self, inputs):
        b, p = param_value(self.node, 1, inputs), param_value(self.node, 2, inputs)
        if b is None or p is None:
            return None
        shape = self.node.inputs[0].shape if inputs is None else inputs[0].shape
        block, pairs = block_and_pairs(self.node, b, p, shape, "paddings")
        for i, (bs, (a, c)) in enumerate(zip(block, pairs)):
            if (shape[i + 1] + a + c) % bs:
                raise self.node.fail(f"padded dimension {i + 1} ({shape[i + 1] + a + c}) is "
                                     f"not a multiple of block size {bs}")
        return block, pairs

    def shapes(self, p):
        block, pairs = p
        shape = self.node.inputs[0].shape
        m = len(block)
        spatial = [(shape[i + 1] + a + c) // bs for i, (bs, (a, c)) in enumerate(zip(block, pairs))]
        return [(shape[0] * math.prod(block), *spatial, *shape[m + 1:])]

    def run(self, p, inputs):
        block, pairs = p
        x = inputs[0]
        m = len(block)
        rest = x.shape[m + 1:]
        x = np.pad(x, [(0, 0), *pairs] + [(0, 0)] * len(rest), constant_values=self.fill)
        n = x.shape[0]
        split = [n]
        for i, bs in enumerate(block):
            split += [x.shape[i + 1] // bs, bs]
        x = x.reshape(*split, *rest)
        # [N, H1, b1, ..., Hm, bm, rest] -> [b1..bm, N, H1..Hm, rest]
        order = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + \
            list(range(1 + 2 * m, 1 + 2 * m + len(rest)))
        y = x.transpose(order)
        return [np.ascontiguousarray(y).reshape(n * math.prod(block), *y.shape[m + 1:2 * m + 1],
                                                *rest)]
