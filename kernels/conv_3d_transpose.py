"""CONV_3D_TRANSPOSE (float32): inputs (output_shape int32 [5], filter [KD, KH, KW, OC, IC],
input [N, D, H, W, IC], optional bias [OC]); Conv3DOptions padding, strides, dilations, fused
activation. Padding comes from the output size as in TFLite; the forward output size implied by
the output shape must equal the input's spatial size."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel, mark_dynamic
from ._conv import conv_transpose, forward_geometry, fused_activation
from ._float_only import require_float
from .registry import register


@register(Op.CONV_3D_TRANSPOSE)
class Conv3DTranspose(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) < 3:
            raise node.fail(f"expects 3 or 4 inputs, got {len(node.inputs)}")
        require_float(node, inputs=(1, 2, 3))
        shape_t, w, x = node.inputs[0], node.inputs[1], node.inputs[2]
        if len(x.shape) != 5 or len(w.shape) != 5:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 5-D")
        if shape_t.dtype != np.int32 or shape_t.shape != (5,):
            raise node.fail(f"output_shape must be int32 [5], got {shape_t.dtype}"
                            f"{list(shape_t.shape)}")
        if x.shape[4] != w.shape[4]:
            raise node.fail(f"input channels {x.shape[4]} != filter's {w.shape[4]}")
        bias = node.inputs[3] if len(node.inputs) > 3 else None
        if bias is not None and bias.shape != (w.shape[3],):
            raise node.fail(f"bias {list(bias.shape)} must be [{w.shape[3]}]")
        o = node.options
        self.strides = (o.stride_d, o.stride_h, o.stride_w)
        self.dilations = (o.dilation_d_factor, o.dilation_h_factor, o.dilation_w_factor)
        if min(self.strides) < 1 or min(self.dilations) < 1:
            raise node.fail(f"strides {self.strides} and dilations {self.dilations} must be >= 1")
        self.out_shape = self.pads = None
        if shape_t.data is not None:
            self.out_shape, self.pads = self._geometry(shape_t.data)
            return [self.out_shape]
        mark_dynamic(node)  # runtime output_shape: known at eval
        return [node.outputs[0].shape]

    def _geometry(self, value):
        node = self.node
        w, x = node.inputs[1], node.inputs[2]
        shape = tuple(int(v) for v in np.asarray(value).reshape(-1))
        if len(shape) != 5 or any(d < 0 for d in shape) or shape[0] != x.shape[0] or \
                shape[4] != w.shape[3]:
            raise node.fail(f"output_shape {list(shape)} does not match batch {x.shape[0]} and "
                            f"{w.shape[3]} output channels")
        fwd, pads = forward_geometry(node.options.padding, shape[1:4], w.shape[:3], self.strides,
                                     self.dilations)
        if fwd != tuple(x.shape[1:4]):
            raise node.fail(f"output_shape {list(shape)} implies input size {list(fwd)}, "
                            f"got {list(x.shape[1:4])}")
        return shape, tuple(p[0] for p in pads)

    def eval(self, inputs):
        if self.out_shape is not None:
            out_shape, pads = self.out_shape, self.pads
        else:
            out_shape, pads = self._geometry(inputs[0])
        w, x = inputs[1], inputs[2]
        out = conv_transpose(x, w, self.strides, self.dilations, pads, out_shape[1:4])
        if len(inputs) > 3 and inputs[3] is not None:
            out += inputs[3]
        return [fused_activation(out, self.node.options.fused_activation_function)]
