"""UNIQUE of a 1-D tensor (int8, uint8, int16, int32, int64, float32): the distinct values in
order of first appearance, and for each element the position of its value among them (int32
or int64: ``idx_out_type``). As LiteRT's ordered map, -0.0 and 0.0 are one value (the first
seen is kept). The number of distinct values is known only at eval (a run-time shape)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op, TensorType

from ._common import Kernel
from ._elementwise import check_types
from ._shape import INDEX_DTYPES, mark_dynamic
from .registry import register

TYPES = (np.int8, np.uint8, np.int16, np.int32, np.int64, np.float32)


@register(Op.UNIQUE)
class Unique(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or node.inputs[0] is None or len(node.outputs) != 2 or \
                any(o is None for o in node.outputs):
            raise node.fail("takes one input and has two outputs")
        check_types(node, (), raw=TYPES)  # stored values are compared, scale or not
        x = node.inputs[0]
        if len(x.shape) != 1:
            raise node.fail(f"input must be 1-D, got {list(x.shape)}")
        vals, idx = node.outputs
        if vals.dtype != x.dtype:
            raise node.fail("the values output must have the input's type")
        want = node.options.idx_out_type
        want = np.dtype(np.int64 if want == TensorType.INT64 else np.int32)
        if idx.dtype not in INDEX_DTYPES or idx.dtype != want:
            raise node.fail(f"index output must be {want.name} (idx_out_type), got "
                            f"{idx.tensor.type_name}")
        mark_dynamic(node)
        return [tuple(vals.shape), tuple(x.shape)]

    def eval(self, inputs):
        x = inputs[0]
        first: dict = {}
        idx = np.empty(x.shape, self.node.outputs[1].dtype)
        keep = []
        for k, v in enumerate(x.tolist()):  # Python numbers: -0.0 == 0.0 is one key
            pos = first.get(v)
            if pos is None:
                pos = first[v] = len(keep)
                keep.append(k)
            idx[k] = pos
        return [x[np.array(keep, np.int64)], idx]
