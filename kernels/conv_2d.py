"""CONV_2D (float32): NHWC input, OHWI filter, optional bias; groups when the filter's input
channels divide the input's. im2col as a strided view, then one BLAS matmul per group."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel, pad_nhwc, patches, same_or_valid
from ._conv import fused_activation
from .registry import register
from ._float_only import require_float


@register(Op.CONV_2D)
class Conv2D(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x, w = node.inputs[0], node.inputs[1]
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        o = node.options
        n, h, wd, c = x.shape
        oc, kh, kw, ic = w.shape
        if ic == 0 or c % ic:
            raise node.fail(f"input channels {c} are not a multiple of filter channels {ic}")
        self.groups = c // ic
        if oc % self.groups:
            raise node.fail(f"{oc} filters do not split into {self.groups} groups")
        oh, pt, pb = same_or_valid(o.padding, h, kh, o.stride_h, o.dilation_h_factor)
        ow, pl, pr = same_or_valid(o.padding, wd, kw, o.stride_w, o.dilation_w_factor)
        self.geom = (kh, kw, o.stride_h, o.stride_w, o.dilation_h_factor, o.dilation_w_factor,
                     oh, ow)
        self.pads = ((pt, pb), (pl, pr))
        # Constant weights: lay them out as the matmul's right operand once, here.
        self.wt = None
        if w.data is not None and self.groups == 1:
            self.wt = np.ascontiguousarray(w.data.reshape(oc, kh * kw * ic).T, np.float32)
        self.pointwise = (kh, kw, o.stride_h, o.stride_w, pt, pb, pl, pr) == (1, 1, 1, 1, 0, 0,
                                                                                0, 0)
        return [(n, oh, ow, oc)]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        if self.groups == 1:
            wt = self.wt if self.wt is not None else w.reshape(w.shape[0], -1).T
            if self.pointwise:  # 1x1, stride 1: the input already is the im2col matrix
                cols2d = x.reshape(-1, x.shape[3])
            else:
                cols = patches(pad_nhwc(x, *self.pads), kh, kw, sh, sw, dh, dw, oh, ow)
                cols2d = cols.reshape(-1, kh * kw * x.shape[3])
            out = (cols2d @ wt).reshape(x.shape[0], oh, ow, w.shape[0])
            if b is not None:
                out += b
            return [fused_activation(out, self.node.options.fused_activation_function)]
        xp = pad_nhwc(x, *self.pads)
        cols = patches(xp, kh, kw, sh, sw, dh, dw, oh, ow)  # N,OH,OW,KH,KW,C
        n, c, oc = x.shape[0], x.shape[3], w.shape[0]
        g = self.groups
        icg, ocg = c // g, oc // g
        out = np.empty((n, oh, ow, oc), np.float32)
        for gi in range(g):
            cg = cols[..., gi * icg:(gi + 1) * icg].reshape(n * oh * ow, kh * kw * icg)
            wg = w[gi * ocg:(gi + 1) * ocg].reshape(ocg, kh * kw * icg)
            out[..., gi * ocg:(gi + 1) * ocg] = (cg @ wg.T).reshape(n, oh, ow, ocg)
        if b is not None:
            out += b
        return [fused_activation(out, self.node.options.fused_activation_function)]
