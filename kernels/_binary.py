"""Shared shape/activation logic of elementwise binary ops (non-quantized paths)."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError

from ._common import Kernel, apply_activation, broadcast_shape


class BinaryKernel(Kernel):
    fn = None
    dtypes = (np.float32, np.int32, np.int64)

    def prepare(self):
        node = self.node
        a, b = node.inputs[0], node.inputs[1]
        if a.dtype not in self.dtypes or (a.quantization is not None and a.quantization.scale.size):
            raise UnsupportedOpError(node.op.name, node.path, f"{a.dtype} inputs not supported yet")
        return [broadcast_shape(a.shape, b.shape, node)]

    def eval(self, inputs):
        out = self.fn(inputs[0], inputs[1])
        out = np.asarray(out, dtype=self.node.outputs[0].dtype)
        act = getattr(self.node.options, "fused_activation_function", 0) if self.node.options \
            else 0
        if act:
            if out.dtype == np.float32:
                out = apply_activation(out, act)
            else:
                out = apply_activation(out.astype(np.float64), act).astype(out.dtype)
        return [out]
