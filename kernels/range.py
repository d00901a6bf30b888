"""RANGE: ``start, start + delta, ...`` up to (excluding) ``limit``; scalar inputs of one type
(int32/int64/float32, also float16 and non-quantized int8/int16). As TFLite, values are
accumulated (``v += delta``, so float rounding matches) and the length is
``ceil(|limit - start| / |delta|)`` computed in the input type.

The output length depends on the input values: with constant inputs it is computed in
prepare; with runtime inputs prepare returns the model's recorded shape and the real length
appears at eval (a data-dependent shape)."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import ParamKernel, is_quantized, param_value
from .registry import register

DTYPES = tuple(np.dtype(d) for d in (np.int32, np.int64, np.float32, np.float16, np.int8,
                                     np.int16))


@register(Op.RANGE)
class Range(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 3:
            raise node.fail("takes (start, limit, delta)")
        dt = node.inputs[0].dtype
        if dt not in DTYPES:
            raise node.fail(f"type {dt} is not supported by RANGE")
        for t in node.inputs:
            if t.dtype != dt or len(t.shape) != 0:
                raise node.fail("start, limit and delta must be scalars of one type")
        if node.outputs[0].dtype != dt:
            raise node.fail(f"output type {node.outputs[0].dtype} differs from input type {dt}")
        if any(is_quantized(t) for t in node.inputs):
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{dt} quantized inputs are not supported yet")
        return super().prepare()

    def params(self, inputs):
        vals = [param_value(self.node, k, inputs) for k in range(3)]
        if any(v is None for v in vals):
            return None
        dt = self.node.outputs[0].dtype
        start, limit, delta = (np.asarray(v, dtype=dt).reshape(()) for v in vals)
        if delta == 0:
            raise self.node.fail("delta must not be zero")
        if not ((start >= limit and delta < 0) or (start <= limit and delta > 0)):
            raise self.node.fail(f"cannot go from {start} to {limit} by {delta}")
        with np.errstate(over="ignore"):
            if dt.kind == "f":
                n = int(np.ceil(np.abs((limit - start) / delta)))
            else:
                s, lim, d = int(start), int(limit), int(delta)
                n = (abs(lim - s) + abs(d) - 1) // abs(d)
        return start, delta, n

    def shapes(self, p):
        return [(p[2],)]

    def run(self, p, inputs):
        start, delta, n = p
        dt = self.node.outputs[0].dtype
        if n == 0:
            return [np.zeros(0, dt)]
        steps = np.full(n, delta, dtype=dt)
        steps[0] = start
        with np.errstate(over="ignore"):
            return [np.cumsum(steps, dtype=dt)]
