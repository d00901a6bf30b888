"""TOPK_V2: the ``k`` largest entries along the last axis, in descending order, and their
indices (int32 or int16, the output tensor's type). Equal values keep the lower index first;
NaNs sort after every number. float32 and integer types (quantized integers as stored).
``k`` (input 1) is a scalar int32/int16; when it is not constant the output shape is known only
at run time."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel, mark_dynamic
from ._elementwise import check_types
from .registry import register


@register(Op.TOPK_V2)
class TopKV2(Kernel):
    def prepare(self):
        node = self.node
        check_types(node, (np.float32,), (np.int8, np.uint8, np.int16, np.int32, np.int64))
        x, k = node.inputs[0], node.inputs[1]
        if len(x.shape) == 0:
            raise node.fail("input must have at least one dimension")
        if k is None or k.dtype not in (np.int32, np.int16) or np.prod(k.shape) != 1:
            raise node.fail("k must be a scalar int32 or int16 tensor")
        if node.outputs[1].dtype not in (np.int32, np.int16):
            raise node.fail(f"indices must be int32 or int16, got {node.outputs[1].dtype}")
        if k.data is None:
            self.k = None
            mark_dynamic(node)  # runtime k: the output shapes are known at eval
            return [node.outputs[0].shape, node.outputs[1].shape]
        self.k = self._k(k.data, x.shape)
        shape = x.shape[:-1] + (self.k,)
        return [shape, shape]

    def _k(self, value, shape) -> int:
        k = int(np.asarray(value).reshape(-1)[0])
        if not 0 <= k <= shape[-1]:
            raise self.node.fail(f"k = {k} must be in [0, {shape[-1]}]")
        return k

    def eval(self, inputs):
        x = inputs[0]
        k = self.k if self.k is not None else self._k(inputs[1], x.shape)
        # a stable ascending sort of a strictly decreasing key keeps lower indices first among
        # equals; ~x is decreasing for integers (no overflow), -x for floats (NaN goes last)
        key = -x if x.dtype.kind == "f" else np.invert(x)
        order = np.argsort(key, axis=-1, kind="stable")[..., :k]
        values = np.take_along_axis(x, order, axis=-1)
        return [values, order.astype(self.node.outputs[1].dtype)]
