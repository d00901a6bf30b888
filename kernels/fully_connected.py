"""FULLY_CONNECTED (float32): weights [units, in]; input flattened to [-1, in] (or kept as
[..., in] with keep_num_dims)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._conv import fused_activation
from ._float_only import require_float
from .registry import register


@register(Op.FULLY_CONNECTED)
class FullyConnected(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x, w = node.inputs[0], node.inputs[1]
        if len(w.shape) != 2:
            raise node.fail(f"weights {list(w.shape)} must be 2-D [units, in]")
        units, k = w.shape
        total = math.prod(x.shape)
        if k == 0 or total % k:
            raise node.fail(f"input {list(x.shape)} does not flatten into rows of {k}")
        if node.options is not None and node.options.keep_num_dims:
            if x.shape[-1] != k:
                raise node.fail(f"last input dimension {x.shape[-1]} != weights' {k}")
            return [tuple(x.shape[:-1]) + (units,)]
        return [(total // k, units)]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        k = w.shape[1]
        out = np.ascontiguousarray(x.reshape(-1, k) @ w.T, dtype=np.float32)
        if b is not None:
            out += b
        act = self.node.options.fused_activation_function if self.node.options else 0
        out = fused_activation(out, act)
        return [out.reshape(self.node.outputs[0].shape)]
