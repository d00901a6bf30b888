"""TRANSPOSE_CONV (float32): inputs (output_shape int32 [4], weights [OC, KH, KW, IC],
input [N, H, W, IC], optional bias [OC]); TransposeConvOptions padding/strides and a fused
activation. TFLite derives the padding from the *output* size (as if the output were the input of
a forward conv) and crops only the leading pad; output positions no tap reaches stay 0 + bias."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._conv import conv_transpose, fused_activation, transpose_pads
from ._float_only import require_float
from .registry import register


@register(Op.TRANSPOSE_CONV)
class TransposeConv(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) < 3:
            raise node.fail(f"expects 3 or 4 inputs, got {len(node.inputs)}")
        require_float(node, inputs=(1, 2, 3))
        shape_t, w, x = node.inputs[0], node.inputs[1], node.inputs[2]
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and weights {list(w.shape)} must be 4-D")
        if shape_t.dtype != np.int32 or shape_t.shape != (4,):
            raise node.fail(f"output_shape must be int32 [4], got {shape_t.dtype}"
                            f"{list(shape_t.shape)}")
        if w.shape[3] != x.shape[3]:
            raise node.fail(f"input channels {x.shape[3]} != weights' {w.shape[3]}")
        o = node.options
        if o.stride_h < 1 or o.stride_w < 1:
            raise node.fail(f"strides must be >= 1, got {o.stride_h}x{o.stride_w}")
        # Taps as [KH, KW, OC, IC] so each tap's GEMM result is a contiguous channel run.
        self.w_taps = None
        if w.data is not None:
            self.w_taps = np.ascontiguousarray(np.transpose(w.data, (1, 2, 0, 3)))
        bias = node.inputs[3] if len(node.inputs) > 3 else None
        if bias is not None and bias.shape != (w.shape[0],):
            raise node.fail(f"bias {list(bias.shape)} must be [{w.shape[0]}]")
        self.out_shape = None
        if shape_t.data is not None:
            self.out_shape = self._check_shape(shape_t.data)
            return [self.out_shape]
        return [node.outputs[0].shape]  # runtime output_shape: known at eval

    def _check_shape(self, value) -> tuple[int, ...]:
        node = self.node
        shape = tuple(int(v) for v in np.asarray(value).reshape(-1))
        n, oc = node.inputs[2].shape[0], node.inputs[1].shape[0]
        if len(shape) != 4 or any(d < 0 for d in shape) or shape[0] != n or shape[3] != oc:
            raise node.fail(f"output_shape {list(shape)} does not match batch {n} and "
                            f"{oc} filters")
        return shape

    def eval(self, inputs):
        node = self.node
        o = node.options
        out_shape = self.out_shape or self._check_shape(inputs[0])
        w, x = inputs[1], inputs[2]
        w_taps = self.w_taps if self.w_taps is not None else np.transpose(w, (1, 2, 0, 3))
        kernel, strides, dil = w.shape[1:3], (o.stride_h, o.stride_w), (1, 1)
        pads = transpose_pads(o.padding, out_shape[1:3], kernel, strides, dil)
        out = conv_transpose(x, w_taps, strides, dil, pads, out_shape[1:3])
        if len(inputs) > 3 and inputs[3] is not None:
            out += inputs[3]
        return [fused_activation(out, o.fused_activation_function)]
