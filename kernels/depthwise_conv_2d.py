"""DEPTHWISE_CONV_2D (float32): filter [1, KH, KW, C*M]; output channel c*M+m reads input
channel c. Accumulated tap by tap over strided views (KH*KW vectorized multiply-adds)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel, pad_nhwc, same_or_valid
from ._conv import fused_activation
from ._float_only import require_float
from .registry import register


@register(Op.DEPTHWISE_CONV_2D)
class DepthwiseConv2D(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        x, w = node.inputs[0], node.inputs[1]
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        o = node.options
        n, h, wd, c = x.shape
        _, kh, kw, oc = w.shape
        if c == 0 or oc % c:
            raise node.fail(f"filter channels {oc} are not a multiple of input channels {c}")
        self.mult = oc // c
        oh, pt, pb = same_or_valid(o.padding, h, kh, o.stride_h, o.dilation_h_factor)
        ow, pl, pr = same_or_valid(o.padding, wd, kw, o.stride_w, o.dilation_w_factor)
        self.geom = (kh, kw, o.stride_h, o.stride_w, o.dilation_h_factor, o.dilation_w_factor,
                     oh, ow)
        self.pads = ((pt, pb), (pl, pr))
        return [(n, oh, ow, oc)]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        xp = pad_nhwc(x, *self.pads)
        if self.mult > 1:
            xp = np.repeat(xp, self.mult, axis=3)  # channel c*M+m reads input channel c
        n, oc = x.shape[0], w.shape[3]
        out = np.empty((n, oh, ow, oc), np.float32)
        # Rows in blocks small enough to stay in cache across the KH*KW passes.
        rows = max(1, (1 << 17) // max(1, n * ow * oc))
        tmp = np.empty((n, min(rows, oh), ow, oc), np.float32)
        for r in range(0, oh, rows):
            re = min(r + rows, oh)
            o_blk, t_blk = out[:, r:re], tmp[:, :re - r]
            for i in range(kh):
                for j in range(kw):
                    r0, c0 = r * sh + i * dh, j * dw
                    tap = xp[:, r0:r0 + (re - r - 1) * sh + 1:sh,
                             c0:c0 + (ow - 1) * sw + 1:sw, :]
                    if i == 0 and j == 0:
                        np.multiply(tap, w[0, 0, 0], out=o_blk)
                    else:  # no temporaries: multiply into a reused buffer, then accumulate
                        np.multiply(tap, w[0, i, j], out=t_blk)
                        o_blk += t_blk
        if b is not None:
            out += b
        return [fused_activation(out, self.node.options.fused_activation_function)]
