"""PACK: stack ``values_count`` equally shaped tensors along a new ``axis`` (any dtype; every
input must carry the output's quantization, as TFLite requires)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import require_dense, require_same_dtype, require_same_quant
from .registry import register


@register(Op.PACK)
class Pack(Kernel):
    def prepare(self):
        node = self.node
        ins, out = node.inputs, node.outputs[0]
        count = int(node.options.values_count)
        if count != len(ins) or count == 0 or any(t is None for t in ins):
            raise node.fail(f"values_count {count} does not match the {len(ins)} inputs")
        require_dense(node, *range(len(ins)))
        t0 = ins[0]
        rank = len(t0.shape) + 1
        axis = int(node.options.axis)
        if not -rank <= axis < rank:
            raise node.fail(f"axis {axis} is outside [{-rank}, {rank})")
        self.axis = axis % rank
        for k, t in enumerate(ins):
            if tuple(t.shape) != tuple(t0.shape):
                raise node.fail(f"input {k} shape {list(t.shape)} differs from input 0 shape "
                                f"{list(t0.shape)}")
            require_same_dtype(node, t, out)
            require_same_quant(node, t, out)
        shape = list(t0.shape)
        shape.insert(self.axis, count)
        return [tuple(shape)]

    def eval(self, inputs):
        return [np.stack(inputs, axis=self.axis)]
