"""PAD: constant padding by ``paddings`` (an ``[rank, 2]`` int32/int64/int8/int16 tensor of
non-negative before/after counts). Any dtype.

The pad value is 0, except for quantized tensors where TFLite pads with the stored value of
real zero: the output zero point (uint8 always, int8/int16 when quantized)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    ParamKernel,
    int_list,
    is_quantized,
    param_value,
    quant_of,
    require_dense,
    require_same_dtype,
)
from .registry import register

PADDING_DTYPES = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.int8),
                  np.dtype(np.int16), np.dtype(np.bool_))


def pad_pairs(node, value, shape) -> tuple[tuple[int, int], ...]:
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape != (len(shape), 2):
        raise node.fail(f"paddings of shape {list(arr.shape)} do not match input rank "
                        f"{len(shape)} (expected [{len(shape)}, 2])")
    vals = int_list(arr)
    pairs = tuple((vals[2 * i], vals[2 * i + 1]) for i in range(len(shape)))
    if any(a < 0 or b < 0 for a, b in pairs):
        raise node.fail(f"negative padding in {[list(p) for p in pairs]}")
    return pairs


def zero_pad_value(node):
    """What PAD (no constant input) fills with, in the output's dtype."""
    out = node.outputs[0]
    if out.dtype == np.uint8 or (out.dtype in (np.int8, np.int16) and is_quantized(out)):
        zp = quant_of(out)[1]
        info = np.iinfo(out.dtype)
        if not info.min <= zp <= info.max:
            raise node.fail(f"zero point {zp} is not representable in {out.dtype}")
        return out.dtype.type(zp)
    return out.dtype.type(0)


class PadBase(ParamKernel, Kernel):
    def check(self):
        node = self.node
        require_dense(node, 0)
        require_same_dtype(node, node.inputs[0], node.outputs[0])
        p = node.inputs[1]
        if p is None or p.dtype not in PADDING_DTYPES:
            raise node.fail("paddings must be an int32, int64, int8, int16 or bool tensor")

    def params(self, inputs):
        p = param_value(self.node, 1, inputs)
        if p is None:
            return None
        shape = self.node.inputs[0].shape if inputs is None else inputs[0].shape
        return pad_pairs(self.node, p, shape)

    def shapes(self, pairs):
        shape = self.node.inputs[0].shape
        return [tuple(d + a + b for d, (a, b) in zip(shape, pairs))]

    def fill_value(self, inputs):
        raise NotImplementedError

    def run(self, pairs, inputs):
        return [np.pad(inputs[0], pairs, mode="constant",
                       constant_values=self.fill_value(inputs))]


@register(Op.PAD)
class Pad(PadBase):
    def prepare(self):
        self.check()
        if len(self.node.inputs) > 2 and self.node.inputs[2] is not None:
            raise self.node.fail("PAD takes (input, paddings); use PADV2 for a pad value")
        self.value = zero_pad_value(self.node)
        return super().prepare()

    def fill_value(self, inputs):
        return self.value
