"""BITCAST (``tf.bitcast``): the input's bytes read as another element type, as TensorFlow
defines it. Same element size: the same shape. A wider input element: one more trailing
dimension of ``in_size / out_size``. A narrower one: the last dimension must be
``out_size / in_size``, and it goes away. Only plain (unquantized) numeric types."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


@register(Op.BITCAST)
class Bitcast(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        for t, what in ((x, "input"), (out, "output")):
            if t.dtype is None or t.dtype.kind not in "biufc":
                raise node.fail(f"{what} type {t.tensor.type_name} cannot be bitcast")
        a, b = x.dtype.itemsize, out.dtype.itemsize
        shape = tuple(x.shape)
        if a > b:
            shape = shape + (a // b,)
        elif a < b:
            if not shape or shape[-1] != b // a:
                raise node.fail(f"input {list(shape)} of {x.tensor.type_name} must end in "
                                f"{b // a} to bitcast to {out.tensor.type_name}")
            shape = shape[:-1]
        self.shape = shape
        return [shape]

    def eval(self, inputs):
        x = np.ascontiguousarray(inputs[0])
        return [x.view(self.node.outputs[0].dtype).reshape(self.shape)]
