"""MATRIX_DIAG: ``[..., N]`` -> ``[..., N, N]`` matrices with the input on the diagonal and
zeros elsewhere. float32, int8, uint8, int16, int32, int64: LiteRT reads any other type as
float32, so those are refused."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from ._shape import require_same_dtype
from .registry import register

DIAG_TYPES = (np.float32, np.int8, np.uint8, np.int16, np.int32, np.int64)


@register(Op.MATRIX_DIAG)
class MatrixDiag(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or node.inputs[0] is None:
            raise node.fail("takes one input")
        check_types(node, (), raw=DIAG_TYPES)  # values are moved: stored integers as they are
        x = node.inputs[0]
        require_same_dtype(node, x, node.outputs[0])
        if not x.shape:
            raise node.fail("input must have rank >= 1")
        return [tuple(x.shape) + (x.shape[-1],)]

    def eval(self, inputs):
        x = inputs[0]
        n = x.shape[-1]
        out = np.zeros(x.shape + (n,), x.dtype)
        i = np.arange(n)
        out[..., i, i] = x
        return [out]
