"""TRANSPOSE_CONV: float32, int8 (per-channel int8 weights, int32 bias), uint8 (legacy,
per-tensor) and int16x8 (int64 or int32 bias). Inputs (output_shape int32 [4], weights
[OC, KH, KW, IC], input [N, H, W, IC], optional bias [OC]); TransposeConvOptions
padding/strides and a fused activation. TFLite derives the padding from the *output* size (as
if the output were the input of a forward conv) and crops only the leading pad; output
positions no tap reaches stay 0 + bias. One GEMM (exact integer GEMM on the quantized paths),
then a strided scatter-add per tap."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _qconv as q
from ._common import Kernel, mark_dynamic
from ._conv import conv_transpose, fused_activation, scatter_taps, transpose_pads
from ._float_only import require_float
from .registry import register


@register(Op.TRANSPOSE_CONV)
class TransposeConv(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) < 3:
            raise node.fail(f"expects 3 or 4 inputs, got {len(node.inputs)}")
        shape_t, w, x = node.inputs[0], node.inputs[1], node.inputs[2]
        if q.is_hybrid(x, w):
            return q.delegate(self, "HybridTransposeConv",
                              "hybrid (float input, integer weights) TRANSPOSE_CONV")
        quantized = x is not None and x.dtype in q.INT_DTYPES
        if not quantized:
            require_float(node, inputs=(1, 2, 3))
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and weights {list(w.shape)} must be 4-D")
        if shape_t.dtype != np.int32 or shape_t.shape != (4,):
            raise node.fail(f"output_shape must be int32 [4], got {shape_t.dtype}"
                            f"{list(shape_t.shape)}")
        if w.shape[3] != x.shape[3]:
            raise node.fail(f"input channels {x.shape[3]} != weights' {w.shape[3]}")
        if 0 in x.shape[1:]:  # LiteRT requires input height, width and channels above 0
            raise node.fail(f"input {list(x.shape)} has an empty height, width or channels")
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
        if quantized:
            self._prepare_quantized()
        self.out_shape = None
        if shape_t.data is not None:
            self.out_shape = self._check_shape(shape_t.data)
            return [self.out_shape]
        mark_dynamic(node)  # runtime output_shape: known at eval
        return [node.outputs[0].shape]

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

    # -- quantized -----------------------------------------------------------------------------
    def _prepare_quantized(self) -> None:
        """Integer TRANSPOSE_CONV: exact accumulators, requantized per channel. LiteRT's int8
        (and int16 with an int32 bias) output stage vectorizes over blocks of 8 channels (ties
        upward), the last oc % 8 channels round ties away from zero; uint8 rounds ties upward
        in blocks of 16 flat values and away from zero in the leftover ones; int16 with an int64
        bias runs the reference kernel (int64 accumulators)."""
        node = self.node
        w, x, out = node.inputs[1], node.inputs[2], node.outputs[0]
        b = node.inputs[3] if len(node.inputs) > 3 else None
        q.check_operand_types(node, x, w, out, b, weights="weights")
        oc, _, _, ic = w.shape
        sx, zx = q.scalar_qparams(node, x, "input")
        so, zo = q.scalar_qparams(node, out, "output")
        upward = None
        if x.dtype == np.uint8:
            sw, zw = q.scalar_qparams(node, w, "weights")
            mult = [q.legacy_multiplier(sx, sw, so)]
            rounding = q.UPWARD  # blocks of 16 flat values; the leftover ones: GEMMLOWP
        else:
            mult = q.per_channel_multipliers(sx, q.channel_scales(node, w, oc, 0), so)
            zw = 0
            if x.dtype == np.int16 and (zx or zo):
                raise node.fail("int16 input and output must have zero point 0")
            if x.dtype == np.int16 and (b is None or b.dtype == np.int64):
                rounding = q.INT64
            else:  # the optimized kernel's per-channel output stage
                rounding = q.GEMMLOWP
                upward = np.arange(oc) < oc - oc % 8
        self.zx, self.zw = zx, zw
        lo, hi = q.clamp_range(node, out.dtype, so, zo)
        self.x_max = q.raw_max(x.dtype) + abs(zx)
        self.gemm = None
        if w.data is not None:  # [IC, KH * KW * OC]
            wt = np.transpose(w.data.astype(np.int64) - zw, (3, 1, 2, 0)).reshape(ic, -1)
            self.gemm = q.ExactMatmul(wt, self.x_max)
        self.bias = None if b is None or b.data is None else b.data.astype(np.int64)
        self.runtime_bias = b is not None and b.data is None
        self.requant = q.Requantizer(np.broadcast_to(mult, (oc,)), rounding, zo, lo, hi,
                                     out.dtype, upward=upward)
        self.requant_tail = None
        if x.dtype == np.uint8:
            self.requant_tail = q.Requantizer(mult, q.GEMMLOWP, zo, lo, hi, out.dtype)
        self.eval = self._eval_quantized

    def _eval_quantized(self, inputs):
        node = self.node
        o = node.options
        out_shape = self.out_shape or self._check_shape(inputs[0])
        w, x = inputs[1], inputs[2]
        oc, kh, kw, ic = w.shape
        gemm = self.gemm
        if gemm is None:
            wt = np.transpose(w.astype(np.int64) - self.zw, (3, 1, 2, 0)).reshape(ic, -1)
            gemm = q.ExactMatmul(wt, self.x_max)
        strides = (o.stride_h, o.stride_w)
        pads = transpose_pads(o.padding, out_shape[1:3], (kh, kw), strides, (1, 1))
        n, h, wd = x.shape[:3]
        xs = x.astype(np.int32)
        if self.zx:
            xs -= self.zx
        cols = gemm(xs).reshape(n, h, wd, kh, kw, oc)
        acc = scatter_taps(cols, strides, (1, 1), pads, out_shape[1:3], np.int64)
        if self.bias is not None:
            acc += self.bias
        elif self.runtime_bias and inputs[3] is not None:
            acc += inputs[3].astype(np.int64)
        if self.requant_tail is not None:
            return [q.requantize_blocked(acc, self.requant, self.requant_tail, 16)]
        return [self.requant(acc)]
