"""CONCATENATION of N tensors along ``axis`` (negative counts from the end), any dtype.

Quantization as TFLite: int8 inputs must share the output's scale and zero point, int16 ones
must have zero point 0 (both are raw copies, int16 even when scales differ); uint8 inputs with
other parameters than the output's are requantized in float32 as LiteRT does
(``round(x * s + b) + zo`` with ``s = in_scale * (1 / out_scale)``, ``b = -in_zp * s``). A fused
activation (which LiteRT 2.x refuses at prepare) is applied on float outputs.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import ActivationFunctionType, Op

from ._common import Kernel, apply_activation
from ._qelementwise import f32, float_to_int32, round_away
from ._shape import quant_of, require_dense, require_same_dtype, require_same_quant
from .registry import register


@register(Op.CONCATENATION)
class Concatenation(Kernel):
    def prepare(self):
        node = self.node
        ins, out = node.inputs, node.outputs[0]
        if not ins or any(t is None for t in ins):
            raise node.fail("needs at least one input and no omitted inputs")
        require_dense(node, *range(len(ins)))
        t0 = ins[0]
        for t in ins:
            require_same_dtype(node, t, out)
        opts = node.options
        axis = int(opts.axis) if opts is not None else 0
        self.act = int(opts.fused_activation_function) if opts is not None else 0
        if self.act != ActivationFunctionType.NONE and out.dtype.kind != "f":
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"fused activation on {out.dtype} outputs")
        if out.dtype == np.int8:
            for t in ins:
                require_same_quant(node, t, out)
        elif out.dtype == np.int16 and any(quant_of(t)[1] != 0 for t in [*ins, out]):
            raise node.fail("int16 inputs and output must have zero point 0")
        self.rescale = None
        if out.dtype == np.uint8:
            so, zo = quant_of(out)
            inv = f32(1) / f32(so)
            self.rescale = [None if quant_of(t) == (so, zo) else
                            (f32(quant_of(t)[0]) * inv, quant_of(t)[1], zo) for t in ins]
            if all(r is None for r in self.rescale):
                self.rescale = None

        rank = len(t0.shape)
        if rank == 0:  # scalars become a vector
            if axis != 0 or any(len(t.shape) != 0 for t in ins):
                raise node.fail("scalars concatenate only along axis 0")
            self.axis = None
            return [(len(ins),)]
        if not -rank <= axis < rank:
            raise node.fail(f"axis {axis} is outside [{-rank}, {rank})")
        self.axis = axis % rank
        total = 0
        for k, t in enumerate(ins):
            if len(t.shape) != rank or any(a != b for d, (a, b) in
                                            enumerate(zip(t.shape, t0.shape)) if d != self.axis):
                raise node.fail(f"input {k} shape {list(t.shape)} does not match input 0 "
                                f"shape {list(t0.shape)} outside axis {self.axis}")
            total += t.shape[self.axis]
        shape = list(t0.shape)
        shape[self.axis] = total
        return [tuple(shape)]

    def eval(self, inputs):
        dtype = self.node.outputs[0].dtype
        if self.rescale is not None:
            inputs = [x if r is None else requantize_uint8(x, *r)
                      for x, r in zip(inputs, self.rescale)]
        if self.axis is None:
            out = np.stack(inputs).astype(dtype, copy=False)
        else:
            out = np.concatenate(inputs, axis=self.axis).astype(dtype, copy=False)
        if self.act:
            out = apply_activation(out, self.act)
        return [out]


def requantize_uint8(x: np.ndarray, scale: np.float32, zp: int, out_zp: int) -> np.ndarray:
    """TFLite's uint8 ConcatenationWithScaling of one input, in float32."""
    bias = np.float32(-zp) * scale
    v = float_to_int32(round_away(x.astype(np.float32) * scale + bias)) + out_zp
    return np.clip(v, 0, 255).astype(np.uint8)
