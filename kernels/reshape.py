"""RESHAPE: the target shape from the shape input (constant or runtime) or, failing that,
``ReshapeOptions.new_shape``; one -1 is inferred."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


def resolve_shape(node, target, n: int) -> tuple[int, ...]:
    target = [int(v) for v in np.asarray(target).reshape(-1).tolist()]
    if target.count(-1) > 1:
        raise node.fail(f"shape {target} has more than one -1")
    if -1 in target:
        rest = math.prod(d for d in target if d != -1)
        if rest == 0 or n % rest:
            raise node.fail(f"cannot reshape {n} elements to {target}")
        target[target.index(-1)] = n // rest
    if any(d < 0 for d in target) or math.prod(target) != n:
        raise node.fail(f"cannot reshape {n} elements to {target}")
    return tuple(target)


@register(Op.RESHAPE)
class Reshape(Kernel):
    def _target(self, runtime=None):
        node = self.node
        if len(node.inputs) > 1 and node.inputs[1] is not None:
            s = node.inputs[1]
            if runtime is not None:
                return runtime
            if s.data is not None:
                return s.data
            return None
        if node.options is not None and node.options.new_shape is not None:
            return node.options.new_shape
        return node.outputs[0].shape

    def prepare(self):
        node = self.node
        n = math.prod(node.inputs[0].shape)
        t = self._target()
        if t is None:  # runtime shape tensor: known at eval
            return [node.outputs[0].shape]
        self.shape = resolve_shape(node, t, n)
        return [self.shape]

    def eval(self, inputs):
        x = inputs[0]
        node = self.node
        if len(inputs) > 1 and inputs[1] is not None and node.inputs[1].data is None:
            return [x.reshape(resolve_shape(node, inputs[1], x.size))]
        return [x.reshape(self.shape)]
