"""MULTINOMIAL (``tf.random.categorical``): ``num_samples`` class indices per row of float32
logits ``[batch, classes]``, int64 or int32, drawn exactly as LiteRT draws them from the Philox
generator its ``RandomOptions`` seed (``_random.multinomial``); each invoke continues the
sequence. The cumulative weights are doubles from ``exp``: numpy's and the C library's ``exp``
may differ in the last bit, which moves a sample only when it falls exactly there."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from . import _random
from ._common import Kernel
from ._shape import ParamKernel, count_param
from .registry import register


@register(Op.MULTINOMIAL)
class Multinomial(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        logits, n, out = node.inputs[0], node.inputs[1], node.outputs[0]
        if logits.dtype != np.float32:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{logits.dtype or logits.tensor.type_name} logits are not "
                                     "supported (LiteRT takes float32)")
        if n.dtype != np.int32 or len(n.shape) != 0:
            raise node.fail(f"num_samples must be an int32 scalar, got {n.dtype} "
                            f"{list(n.shape)}")
        if len(logits.shape) != 2 or logits.shape[1] == 0:
            raise node.fail(f"logits must be [batch, classes] with classes > 0, got "
                            f"{list(logits.shape)}")
        if out.dtype not in (np.int64, np.int32):
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{out.dtype or out.tensor.type_name} output is not "
                                     "supported (int64 or int32)")
        _random.generator(node)  # seeded at prepare, as LiteRT
        return super().prepare()

    def params(self, inputs):
        return count_param(self.node, 1, "num_samples", inputs)

    def shapes(self, n):
        return [(self.node.inputs[0].shape[0], n)]

    def run(self, n, inputs):
        logits = np.asarray(inputs[0], np.float32)
        return [_random.multinomial(_random.generator(self.node), logits, n,
                                    self.node.outputs[0].dtype)]
