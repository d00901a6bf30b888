"""L2_NORMALIZATION (float32) over the last axis: ``x / max(sqrt(sum(x^2)), 1e-6)``. As in
TFLite the input has rank <= 4 and no fused activation is allowed."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import ActivationFunctionType, Op

from ._common import Kernel
from ._float_only import require_float
from .registry import register

EPSILON = np.float32(1e-6)


@register(Op.L2_NORMALIZATION)
class L2Normalization(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x = node.inputs[0]
        if not 1 <= len(x.shape) <= 4:
            raise node.fail(f"input {list(x.shape)} must have rank 1-4")
        act = node.options.fused_activation_function if node.options is not None else 0
        if act != ActivationFunctionType.NONE:
            raise node.fail(f"fused activation {ActivationFunctionType(act).name} is not "
                            "supported by L2_NORMALIZATION")
        return [x.shape]

    def eval(self, inputs):
        x = inputs[0]
        norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True, dtype=np.float32))
        return [(x / np.maximum(norm, EPSILON)).astype(np.float32, copy=False)]
