"""LOCAL_RESPONSE_NORMALIZATION (float32, 4-D input): over the channel axis,
``out = x * (bias + alpha * sum(x[c - r .. c + r]^2)) ** -beta`` with the window clipped to
the channels that exist (TensorFlow's semantics, which LiteRT's built-in kernel follows)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._float_only import require_float
from .registry import register


@register(Op.LOCAL_RESPONSE_NORMALIZATION)
class LocalResponseNormalization(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x = node.inputs[0]
        if len(x.shape) != 4:
            raise node.fail(f"input {list(x.shape)} must be 4-D")
        o = node.options
        self.radius = int(o.radius)
        if self.radius < 0:
            raise node.fail(f"radius {self.radius} must be >= 0")
        self.bias, self.alpha, self.beta = (np.float32(o.bias), np.float32(o.alpha),
                                            np.float32(o.beta))
        return [x.shape]

    def eval(self, inputs):
        x = inputs[0]
        c, r = x.shape[-1], min(self.radius, max(x.shape[-1] - 1, 0))
        sq = x * x
        acc = sq.copy()
        for d in range(1, r + 1):  # add the channels d below and d above, where they exist
            acc[..., d:] += sq[..., :c - d]
            acc[..., :c - d] += sq[..., d:]
        mult = np.power(self.bias + self.alpha * acc, -self.beta, dtype=np.float32)
        return [(x * mult).astype(np.float32, copy=False)]
