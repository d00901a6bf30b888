"""RANK: the input's number of dimensions as an int32 scalar. Known at prepare and published as
a known value (like SHAPE), so shape arithmetic downstream resolves at prepare."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


@register(Op.RANK)
class Rank(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or node.inputs[0] is None:
            raise node.fail("takes one input")
        out = node.outputs[0]
        if out.dtype != np.int32:
            raise node.fail(f"output type must be int32, got {out.tensor.type_name}")
        self.value = np.array(len(node.inputs[0].shape), np.int32)
        self.value.flags.writeable = False
        out.data = self.value
        return [()]

    def eval(self, inputs):
        return [self.value.copy()]
