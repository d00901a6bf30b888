"""CONV_3D (float32): input [N, D, H, W, C], filter [KD, KH, KW, C, OC], optional bias [OC];
Conv3DOptions padding, strides, dilations and a fused activation. One GEMM over a strided
im2col view. A NaN input gives NaN outputs here; LiteRT's x86 kernel writes FLT_MAX for them
(an effect of its activation clamp), which is not emulated."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel, trim_taps
from ._conv import conv_forward, forward_geometry, fused_activation
from ._float_only import require_float
from .registry import register


@register(Op.CONV_3D)
class Conv3D(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x, w = node.inputs[0], node.inputs[1]
        if len(x.shape) != 5 or len(w.shape) != 5:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 5-D")
        if x.shape[4] != w.shape[3]:
            raise node.fail(f"input channels {x.shape[4]} != filter's {w.shape[3]}")
        bias = node.inputs[2] if len(node.inputs) > 2 else None
        if bias is not None and bias.shape != (w.shape[4],):
            raise node.fail(f"bias {list(bias.shape)} must be [{w.shape[4]}]")
        o = node.options
        self.kernel = tuple(w.shape[:3])
        self.strides = (o.stride_d, o.stride_h, o.stride_w)
        self.dilations = (o.dilation_d_factor, o.dilation_h_factor, o.dilation_w_factor)
        if min(self.strides) < 1 or min(self.dilations) < 1:
            raise node.fail(f"strides {self.strides} and dilations {self.dilations} must be >= 1")
        self.out, self.pads = forward_geometry(o.padding, x.shape[1:4], self.kernel,
                                               self.strides, self.dilations)
        # Taps that read padding alone (a huge dilation) dropped, the input cropped to what the
        # others read: _common.trim_taps.
        self.taps = self.crop = None
        t = trim_taps(x.shape[1:4], self.kernel, self.strides, self.dilations, self.out,
                      [p[0] for p in self.pads])
        if t is not None:
            self.kernel, self.pads, self.taps, crop = t
            self.crop = (slice(None), *crop)
        wk = w.data if w.data is None or self.taps is None else w.data[self.taps]
        self.w2d = wk.reshape(-1, w.shape[4]) if wk is not None else None
        return [(x.shape[0], *self.out, w.shape[4])]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        if self.crop is not None:
            x, w = x[self.crop], w[self.taps]
        w2d = self.w2d if self.w2d is not None else w.reshape(-1, w.shape[4])
        out = conv_forward(x, w2d, self.kernel, self.strides, self.dilations, self.pads, self.out)
        if len(inputs) > 2 and inputs[2] is not None:
            out += inputs[2]
        return [fused_activation(out, self.node.options.fused_activation_function)]
