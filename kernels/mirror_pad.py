"""MIRROR_PAD: pad by reflecting the input (``REFLECT``: the border element is not repeated,
so each padding must be < the dimension; ``SYMMETRIC``: it is, padding <= the dimension).
Paddings are an ``[rank, 2]`` int32/int64 tensor. Any dtype."""

from __future__ import annotations

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
from .pad import pad_pairs
from .registry import register


@register(Op.MIRROR_PAD)
class MirrorPad(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        if node.inputs[1] is None or node.inputs[1].dtype not in INDEX_DTYPES:
            raise node.fail("paddings must be an int32 or int64 tensor")
        mode = int(node.options.mode) if node.options is not None else 0
        if mode not in (0, 1):
            raise node.fail(f"unknown mirror pad mode {mode}")
        self.symmetric = mode == 1
        return super().prepare()

    def params(self, inputs):
        p = param_value(self.node, 1, inputs)
        if p is None:
            return None
        shape = self.node.inputs[0].shape if inputs is None else inputs[0].shape
        pairs = pad_pairs(self.node, p, shape)
        limit = 0 if self.symmetric else 1
        for d, (n, (a, b)) in enumerate(zip(shape, pairs)):
            if max(a, b) > n - limit:
                raise self.node.fail(f"padding {[a, b]} is too large for dimension {d} of size "
                                     f"{n} in {'SYMMETRIC' if self.symmetric else 'REFLECT'} "
                                     "mode")
        return pairs

    def shapes(self, pairs):
        shape = self.node.inputs[0].shape
        return [tuple(d + a + b for d, (a, b) in zip(shape, pairs))]

    def run(self, pairs, inputs):
        return [np.pad(inputs[0], pairs, mode="symmetric" if self.symmetric else "reflect")]
