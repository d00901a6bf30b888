"""BROADCAST_ARGS: the broadcast of two shapes given as int32/int64 vectors (one type for both
and the output), e.g. ``[2, 1, 3]`` and ``[4, 1]`` give ``[2, 4, 3]``. Incompatible shapes fail
(at prepare when both are known, which is the usual case: the inputs come from SHAPE)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import runtime_error
from ._shape import INDEX_DTYPES, ParamKernel, int_list, param_value
from .registry import register


@register(Op.BROADCAST_ARGS)
class BroadcastArgs(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail("takes two shapes")
        a, b = node.inputs
        if a.dtype not in INDEX_DTYPES or b.dtype != a.dtype or node.outputs[0].dtype != a.dtype:
            raise node.fail("both shapes and the output must be int32, or all int64")
        if len(a.shape) != 1 or len(b.shape) != 1:
            raise node.fail("shapes must be vectors")
        return super().prepare()

    def params(self, inputs):
        a, b = param_value(self.node, 0, inputs), param_value(self.node, 1, inputs)
        if a is None or b is None:
            return None
        sa, sb = int_list(a), int_list(b)
        try:
            return tuple(np.broadcast_shapes(tuple(sa), tuple(sb)))
        except ValueError:
            msg = f"shapes {sa} and {sb} do not broadcast"
            raise (self.node.fail(msg) if inputs is None else runtime_error(self.node, msg)) \
                from None

    def shapes(self, shape):
        return [(len(shape),)]

    def run(self, shape, inputs):
        return [np.asarray(shape, self.node.outputs[0].dtype).reshape(len(shape))]
