"""SCATTER_ND: inputs (indices, updates, shape); a zero tensor of ``shape`` with each update
slice added at its index (duplicates accumulate; bool updates are or-ed), as TFLite's
reference kernel does, integers wrapping on overflow. Raw values are scattered, so quantized
int8/uint8 updates work on their stored integers exactly as LiteRT does."""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    INDEX_DTYPES,
    ParamKernel,
    int_list,
    param_value,
    require_dense,
    require_same_dtype,
)
from .gather_nd import flat_rows
from .registry import register


@register(Op.SCATTER_ND)
class ScatterNd(ParamKernel, Kernel):
    def params(self, inputs):
        node = self.node
        idx, upd, shp = node.inputs[0], node.inputs[1], node.inputs[2]
        require_dense(node, 1)
        require_same_dtype(node, upd, node.outputs[0])
        if upd.dtype == np.uint16:
            raise UnsupportedOpError(node.op.name, node.path,
                                     "uint16 updates are not supported yet")
        if idx.dtype not in INDEX_DTYPES or shp.dtype != idx.dtype:
            raise node.fail("indices and shape must be int32 (or both int64)")
        s = param_value(node, 2, inputs)
        if s is None:
            return None
        shape = tuple(int_list(s))
        ishape = node.inputs[0].shape if inputs is None else inputs[0].shape
        ushape = node.inputs[1].shape if inputs is None else inputs[1].shape
        if len(ishape) < 1 or len(ushape) < 1 or len(shp.shape) != 1:
            raise node.fail("indices and updates must be at least vectors, shape a vector")
        outer = len(ishape) - 1
        nd = ishape[-1]
        if (tuple(ishape[:outer]) != tuple(ushape[:outer]) or nd > len(shape)
                or len(ushape) - outer != len(shape) - nd
                or tuple(ushape[outer:]) != shape[nd:]):
            raise node.fail(f"indices {list(ishape)} and updates {list(ushape)} do not fit "
                            f"shape {list(shape)}")
        if any(d < 0 for d in shape):
            raise node.fail(f"negative dimension in shape {list(shape)}")
        return shape

    def shapes(self, shape):
        return [shape]

    def run(self, shape, inputs):
        idx, upd = inputs[0], inputs[1]
        nd = idx.shape[-1]
        out = np.zeros(shape, upd.dtype)
        if out.size == 0 or upd.size == 0:
            return [out]
        rows = flat_rows(self.node, idx, shape, "scatter_nd")
        flat = out.reshape(math.prod(shape[:nd]), -1)
        src = upd.reshape(rows.shape[0], -1)
        if upd.dtype == np.bool_:
            np.logical_or.at(flat, rows, src)
        else:
            np.add.at(flat, rows, src)
        return [out]
