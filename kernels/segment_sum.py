"""SEGMENT_SUM: inputs (data, segment_ids int32 vector of length ``data.shape[0]``); ``out[s]`` is
the sum of the rows of ``data`` whose id is ``s``, for ``s = 0 .. segment_ids[-1]``. float32 or
int32; rows are added in index order. As LiteRT, the ids must start at 0 and grow by 0 or 1
from one row to the next (no empty segment); other ids fail (at prepare when constant). The
output shape depends on the ids' values: with run-time ids it is known at eval."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types, runtime_error
from ._shape import ParamKernel, param_value
from .registry import register


@register(Op.SEGMENT_SUM)
class SegmentSum(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail("takes (data, segment_ids)")
        check_types(node, (np.float32, np.int32))
        data, ids = node.inputs
        if ids.dtype != np.int32 or len(ids.shape) != 1:
            raise node.fail("segment_ids must be an int32 vector")
        if not data.shape or ids.shape[0] != data.shape[0]:
            raise node.fail(f"{ids.shape[0]} segment ids for data of shape {list(data.shape)}")
        if node.outputs[0].dtype != data.dtype:
            raise node.fail("output type differs from the data type")
        return super().prepare()

    def params(self, inputs):
        ids = param_value(self.node, 1, inputs)
        if ids is None:
            return None
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids[0] != 0 or np.any((np.diff(ids) != 0) & (np.diff(ids) != 1))):
            err = self.node.fail if inputs is None else \
                lambda m: runtime_error(self.node, m)
            raise err(f"segment ids {ids.tolist()} must start at 0 and grow by 0 or 1")
        return ids, int(ids[-1]) + 1 if ids.size else 0

    def shapes(self, p):
        return [(p[1],) + tuple(self.node.inputs[0].shape[1:])]

    def run(self, p, inputs):
        ids, n = p
        data = inputs[0]
        out = np.zeros((n,) + data.shape[1:], data.dtype)
        with np.errstate(over="ignore"):
            np.add.at(out, ids, data)  # unbuffered, in index order
        return [out]
