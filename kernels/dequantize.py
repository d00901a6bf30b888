"""DEQUANTIZE: int8/uint8/int16 (per-tensor, or per-channel for 8-bit) to float32, bit-exact with
LiteRT; float16 (usually constant weights) to float32, exact.

Measured on LiteRT's per-tensor path: blocks of 8 values compute ``q * scale - zp * scale`` in
float32 (two roundings), the last ``size % 8`` values ``(q - zp) * scale``; per-channel is
``(q - zp[c]) * scale[c]`` throughout."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from . import _qconv as q
from ._common import Kernel
from .registry import register


def legacy_params(t) -> tuple[np.float32, int]:
    """(scale, zero point) as LiteRT's per-tensor ``params`` hold them: set only for exactly one
    scale and one zero point, else (0, 0)."""
    qp = t.quantization
    if qp is None or qp.scale.size != 1 or qp.zero_point.size != 1:
        return np.float32(0.0), 0
    return np.float32(qp.scale[0]), int(qp.zero_point[0])


def dequantize_per_tensor(x: np.ndarray, scale, zero_point: int) -> np.ndarray:
    """LiteRT's optimized per-tensor DEQUANTIZE, as float32: blocks of 8 values (in flat order)
    compute ``q * scale - zero_point * scale`` (two roundings), the last ``size % 8`` values
    ``(q - zero_point) * scale`` (one rounding)."""
    s = np.float32(scale)
    flat = x.reshape(-1)
    head = flat.size - flat.size % 8
    d = np.empty(flat.size, np.float32)
    np.multiply(flat[:head], s, out=d[:head], dtype=np.float32)
    d[:head] -= np.float32(zero_point) * s
    d[head:] = (flat[head:].astype(np.int32) - zero_point).astype(np.float32) * s
    return d.reshape(x.shape)


@register(Op.DEQUANTIZE)
class Dequantize(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        if out.dtype != np.float32:
            raise node.fail(f"output must be float32, got {out.dtype}")
        if x.dtype == np.float16:
            self.scale = None
        elif x.dtype in q.INT_DTYPES:
            s, z = q.qparams(node, x, "input")
            if x.dtype == np.int16 and np.any(z != 0):
                raise node.fail("int16 input must have zero point 0")
            if s.size > 1:
                if x.dtype == np.int16:
                    raise UnsupportedOpError(node.op.name, node.path,
                                             "per-channel int16 input is not supported "
                                             "(LiteRT has no kernel for it either)")
                axis = x.quantization.quantized_dimension
                if not len(x.shape) or s.size != x.shape[axis]:
                    raise node.fail(f"{s.size} scales do not match dimension {axis} of "
                                    f"{list(x.shape)}")
                shape = [1] * len(x.shape)
                shape[axis] = s.size
                s, z = s.reshape(shape), z.reshape(shape)
            else:
                s, z = s[0], int(z[0])
            self.scale, self.zp = s, z
        else:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.dtype or x.tensor.type_name} inputs are not "
                                     "supported")
        self.value = None
        if x.data is not None:
            # Computed once, as LiteRT keeps a constant input's result in a persistent tensor,
            # and published: the kernels downstream see constant float weights.
            self.value = self._dequantize(x.data)
            self.value.flags.writeable = False
            node.outputs[0].data = self.value
        return [x.shape]

    def _dequantize(self, x: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return x.astype(np.float32)
        if isinstance(self.scale, np.ndarray):  # per-channel
            d = (x.astype(np.int32) - self.zp).astype(np.float32)
            d *= self.scale
            return d
        return dequantize_per_tensor(x, self.scale, self.zp)

    def eval(self, inputs):
        if self.value is not None:
            return [self.value]
        return [self._dequantize(inputs[0])]
