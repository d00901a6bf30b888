"""SPARSE_TO_DENSE: inputs (indices int32/int64: a scalar, ``[N]`` for a 1-D output or
``[N, rank]``; output_shape int32/int64 ``[rank]`` (rank <= 4); values ``[N]`` or a scalar;
default_value, one element); the dense tensor filled with ``default_value`` with ``values``
written at ``indices``, in order (a repeated index keeps the last value). float32, int32,
int64, int8, uint8 values. As LiteRT, a scalar value goes with exactly one index; an index
outside the shape fails the invoke (LiteRT does not check it). A run-time ``output_shape``
gives a run-time output shape."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types, runtime_error
from ._shape import INDEX_DTYPES, ParamKernel, int_list, param_value
from .registry import register

VALUE_TYPES = (np.float32, np.int32, np.int64, np.int8, np.uint8)


@register(Op.SPARSE_TO_DENSE)
class SparseToDense(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 4 or any(t is None for t in node.inputs):
            raise node.fail("takes (indices, output_shape, values, default_value)")
        idx, shape, vals, default = node.inputs
        if idx.dtype not in INDEX_DTYPES or shape.dtype not in INDEX_DTYPES:
            raise node.fail("indices and output_shape must be int32 or int64")
        check_types(node, (), raw=VALUE_TYPES, inputs=(2,))  # values are moved as stored
        if default.dtype != vals.dtype or int(np.prod(default.shape)) != 1:
            raise node.fail("default_value must be one value of the values' type")
        if len(idx.shape) > 2 or len(shape.shape) != 1 or len(vals.shape) > 1:
            raise node.fail("indices must have rank <= 2, output_shape rank 1, values rank <= 1")
        rank = shape.shape[0]
        n = 1 if len(idx.shape) == 0 else idx.shape[0]
        if len(idx.shape) == 2 and idx.shape[1] != rank:
            raise node.fail(f"indices have {idx.shape[1]} coordinates for an output of rank "
                            f"{rank}")
        if len(idx.shape) < 2 and rank != 1:
            raise node.fail("indices of rank < 2 need a 1-D output")
        if rank > 4:
            raise node.fail(f"output rank {rank} is above 4")
        if len(vals.shape) == 0 and n != 1 or len(vals.shape) == 1 and vals.shape[0] != n:
            raise node.fail(f"{n} indices for values of shape {list(vals.shape)}")
        if node.outputs[0].dtype != vals.dtype:
            raise node.fail("output type differs from the values' type")
        return super().prepare()

    def params(self, inputs):
        s = param_value(self.node, 1, inputs)
        if s is None:
            return None
        shape = tuple(int_list(s))
        if any(d < 0 for d in shape):
            raise self.node.fail(f"output_shape {list(shape)} has a negative dimension")
        return shape

    def shapes(self, shape):
        return [shape]

    def run(self, shape, inputs):
        idx, _, vals, default = inputs
        idx = np.asarray(idx, np.int64).reshape(-1, len(shape))
        out = np.full(shape, np.asarray(default).reshape(()), dtype=vals.dtype)
        if idx.size and (np.any(idx < 0) or np.any(idx >= np.array(shape))):
            raise runtime_error(self.node, f"an index is outside the output shape {list(shape)}")
        vals = np.broadcast_to(np.asarray(vals).reshape(-1), (idx.shape[0],))
        for k in range(idx.shape[0]):  # in order: a repeated index keeps the last value
            out[tuple(idx[k])] = vals[k]
        return [out]
