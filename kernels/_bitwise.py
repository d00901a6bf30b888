"""Shared pieces of the integer bitwise ops (BITWISE_XOR, RIGHT_SHIFT): both inputs of one
8/16/32-bit signed or unsigned integer type, numpy broadcasting, output of the input type."""

from __future__ import annotations

import numpy as np

from ._common import Kernel, broadcast_shape
from ._elementwise import check_types, same_types

BIT_TYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32)


class BitwiseKernel(Kernel):
    @staticmethod
    def fn(a, b):
        raise NotImplementedError

    def prepare(self):
        node = self.node
        if len(node.inputs) != 2:
            raise node.fail(f"expects 2 inputs, got {len(node.inputs)}")
        # The stored integers are the operands even if a scale is attached.
        check_types(node, (), raw=BIT_TYPES, inputs=(0, 1))
        same_types(node)
        a, b = node.inputs
        return [broadcast_shape(a.shape, b.shape, node)]

    def eval(self, inputs):
        a, b = inputs
        return [np.asarray(self.fn(a, b), dtype=a.dtype)]
