"""DENSIFY: a sparse constant (TFLite's sparsity format: traversal order, block map, DENSE /
SPARSE_CSR dimension metadata) expanded to the dense tensor of its shape, once at prepare; the
value is published to downstream kernels as known (the weights of the FULLY_CONNECTED after it)."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._hybrid import constant_values
from .registry import register


@register(Op.DENSIFY)
class Densify(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        if x is None or x.data is None:
            raise node.fail("DENSIFY needs a constant input")
        if x.dtype is None:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.tensor.type_name} tensors are not supported")
        if out.dtype != x.dtype:
            raise node.fail(f"output type {out.dtype} differs from input type {x.dtype}")
        try:
            self.value = np.ascontiguousarray(constant_values(node, x), dtype=x.dtype)
        except ValueError as e:
            raise node.fail(str(e)) from None
        self.value.flags.writeable = False
        out.data = self.value  # known at prepare: downstream kernels may treat it as constant
        return [tuple(x.shape)]

    def eval(self, inputs):
        return [self.value]
