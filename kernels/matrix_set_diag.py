"""MATRIX_SET_DIAG: inputs (``[..., M, N]`` matrices, ``[..., min(M, N)]`` diagonals); a copy of
the matrices with their main diagonal replaced. float32, int8, uint8, int16, int32, int64 (LiteRT
reads any other type as float32, so those are refused)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from ._shape import require_same_dtype
from .matrix_diag import DIAG_TYPES
from .registry import register


@register(Op.MATRIX_SET_DIAG)
class MatrixSetDiag(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail("takes (input, diagonal)")
        check_types(node, (), raw=DIAG_TYPES, inputs=(0, 1))  # values are moved as stored
        x, d = node.inputs
        require_same_dtype(node, x, node.outputs[0])
        require_same_dtype(node, x, d, "diagonal")
        if len(x.shape) < 2:
            raise node.fail("input must have rank >= 2")
        want = tuple(x.shape[:-2]) + (min(x.shape[-2:]),)
        if tuple(d.shape) != want:
            raise node.fail(f"diagonal shape {list(d.shape)} should be {list(want)}")
        return [x.shape]

    def eval(self, inputs):
        x, d = inputs
        out = np.array(x, copy=True)
        i = np.arange(d.shape[-1])
        out[..., i, i] = d
        return [out]
