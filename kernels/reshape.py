"""RESHAPE, following TFLite's rules for where the target shape comes from:

* the second input when there are two inputs and it is a 1-D int32 tensor (constant or a
  value known at prepare, e.g. from SHAPE arithmetic: resolved in prepare; computed at run
  time: resolved per invoke, the output marked dynamic);
* otherwise ``ReshapeOptions.new_shape``, where an absent option means a scalar and the legacy
  ``[0]`` also means a scalar.

One ``-1`` is inferred from the element count; zero-sized dimensions are skipped when inferring
(so ``[0, 3] -> [-1, 3]`` gives ``[0, 3]``), as TFLite does.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import mark_dynamic
from .registry import register


def resolve_shape(node, target, in_shape) -> tuple[int, ...]:
    """The output shape for ``target`` (a list that may hold one -1) and the input shape."""
    target = [int(v) for v in np.asarray(target).reshape(-1).tolist()]
    n = math.prod(in_shape)
    if target.count(-1) > 1:
        raise node.fail(f"shape {target} has more than one -1")
    if any(d < -1 for d in target):
        raise node.fail(f"shape {target} has a negative dimension")
    if -1 in target:
        k = target.index(-1)
        rest = [d for i, d in enumerate(target) if i != k]
        n_out = math.prod(rest)
        if n == 0 and n_out != 0:
            target[k] = 0
        else:
            nz_in = math.prod(d for d in in_shape if d != 0)
            nz_out = math.prod(d for d in rest if d != 0)
            target[k] = nz_in // nz_out
    if math.prod(target) != n:
        raise node.fail(f"cannot reshape {list(in_shape)} ({n} elements) to {target}")
    return tuple(target)


@register(Op.RESHAPE)
class Reshape(Kernel):
    def _uses_shape_tensor(self) -> bool:
        node = self.node
        if len(node.inputs) != 2 or node.inputs[1] is None:
            return False
        s = node.inputs[1]
        return len(s.shape) == 1 and s.dtype == np.int32

    def prepare(self):
        node = self.node
        x = node.inputs[0]
        if node.outputs[0].dtype != x.dtype:
            raise node.fail(f"output type {node.outputs[0].tensor.type_name} differs from "
                            f"input type {x.tensor.type_name}")
        self.runtime_shape = False
        if self._uses_shape_tensor():
            t = node.inputs[1].data
            if t is None and node.inputs[1].shape == (0,):
                t = []  # an empty constant (its buffer is empty): a scalar
            if t is None:  # computed at run time: known at eval
                self.runtime_shape = True
                mark_dynamic(node)
                return [node.outputs[0].shape]
        else:
            opt = node.options.new_shape
            t = list(opt) if opt is not None else []
            if t == [0]:  # legacy encoding of a scalar
                t = []
        self.shape = resolve_shape(node, t, x.shape)
        return [self.shape]

    def eval(self, inputs):
        x = inputs[0]
        if self.runtime_shape:
            return [x.reshape(resolve_shape(self.node, inputs[1], x.shape))]
        return [x.reshape(self.shape)]
