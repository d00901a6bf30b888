"""Shared piece of the complex-to-real ops (COMPLEX_ABS, REAL, IMAG): complex64 -> float32 and
complex128 -> float64, same shape."""

from __future__ import annotations

import numpy as np

from ._common import Kernel
from ._elementwise import check_types

REAL_OF = {np.dtype(np.complex64): np.dtype(np.float32),
           np.dtype(np.complex128): np.dtype(np.float64)}


class ComplexToRealKernel(Kernel):
    @staticmethod
    def fn(z):
        raise NotImplementedError

    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or node.inputs[0] is None:
            raise node.fail("takes one input")
        check_types(node, tuple(REAL_OF))
        x, out = node.inputs[0], node.outputs[0]
        if out.dtype != REAL_OF[x.dtype]:
            raise node.fail(f"output of {x.tensor.type_name} must be "
                            f"{REAL_OF[x.dtype].name}, got {out.tensor.type_name}")
        return [x.shape]

    def eval(self, inputs):
        z = inputs[0]
        with np.errstate(over="ignore"):  # |z| of huge parts is inf, as in C++
            y = self.fn(z)
        return [np.ascontiguousarray(y).astype(REAL_OF[z.dtype], copy=False)]
