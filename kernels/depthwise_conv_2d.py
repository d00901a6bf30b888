"""DEPTHWISE_CONV_2D: float32, int8 (per-channel int8 or packed int4 filter, int32 bias), uint8
(legacy, per-tensor, filter zero point) and int16x8 (int64 bias). Filter [1, KH, KW, C*M];
output channel c*M+m reads input channel c. The tap sum is ``_depthwise.tap_sum`` (exact
float32, int32 or int64 accumulators on the quantized paths). Float input with integer weights
(dynamic range) runs in ``_hybrid``."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _depthwise as dw
from . import _jit
from . import _qconv as q
from ._common import Kernel, PadBuffer, conv_window, pad_nhwc
from ._conv import activation_range, add_bias, bias_row, fused_activation
from ._float_only import require_float
from .registry import register

_NO_BIAS = np.zeros(1, np.float32)
_NO_BIAS_INT = np.zeros(1, np.int64)
_NO_FQ = (np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.float64(0), np.int64(0))


@register(Op.DEPTHWISE_CONV_2D)
class DepthwiseConv2D(Kernel):
    def prepare(self):
        node = self.node
        x, w = node.inputs[0], node.inputs[1]
        if len(w.shape) == 4 and w.shape[0] != 1:  # LiteRT checks this first, for every type
            raise node.fail(f"filter {list(w.shape)} must be [1, height, width, channels]")
        if q.is_hybrid(x, w):
            return q.delegate(self, "HybridDepthwiseConv2D",
                              "hybrid (float input, integer weights) DEPTHWISE_CONV_2D")
        if x.dtype in q.INT_DTYPES:
            q.int4_weights_as_int8(node, 1)
            return self._prepare_quantized()
        require_float(node)
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        o = node.options
        n, h, wd, c = x.shape
        _, kh, kw, oc = w.shape
        if c == 0 or oc % c:
            raise node.fail(f"filter channels {oc} are not a multiple of input channels {c}")
        self.mult = oc // c
        self.geom, self.pads, self.taps, self.crop = conv_window(o, h, wd, kh, kw)
        kh, kw, sh, sw, _, _, oh, ow = self.geom
        self.strategy = dw.choose(sh, sw, oh, ow, kh * kw * ow * oc)
        self.tiled = None
        if w.data is not None and self.strategy in ("taps", "rows"):
            wk = w.data if self.taps is None else w.data[self.taps]
            self.tiled = dw.tile_weights(wk.reshape(kh, kw, oc).astype(np.float32), ow)
        b = node.inputs[2] if len(node.inputs) > 2 else None
        if b is not None and int(np.prod(b.shape)) != oc:  # LiteRT checks the element count
            raise node.fail(f"bias {list(b.shape)} must have {oc} elements")
        self.bias_row = bias_row(b, ow)
        self.pad = PadBuffer(*self.pads)
        self.loops = _jit.loops()
        if self.loops is not None and (x.dtype != np.float32 or w.dtype != np.float32 or
                                       b is not None and b.dtype != np.float32):
            self.loops = None
        if self.loops is not None:
            self.range = activation_range(o.fused_activation_function, np.float32)
            self.w_loop = None if w.data is None else np.ascontiguousarray(
                (w.data if self.taps is None else w.data[self.taps]).reshape(kh, kw, oc))
            self.b_loop = None if b is None or b.data is None else \
                np.ascontiguousarray(b.data.reshape(-1))
            self.eval = self._eval_loop
        return [(n, oh, ow, oc)]

    def _check_loop_operands(self, x, w, bias) -> None:
        """The compiled loops index without bounds checks: the operands' sizes must be the
        ones prepare checked (the numpy forms would fail on a mismatch by themselves)."""
        oc, kh, kw = w.shape[2], self.geom[0], self.geom[1]
        if x.ndim != 4 or x.shape[3] * self.mult != oc or w.shape[:2] != (kh, kw) or \
                bias is not None and bias.size != oc:
            raise self.node.fail(f"input {list(x.shape)}, filter taps {list(w.shape)} and "
                                 f"bias {None if bias is None else bias.size} do not match "
                                 f"the prepared depthwise geometry")

    def _eval_loop(self, inputs):
        """The compiled loop (``_loops.depthwise_float``): tap sums, bias and clamp in one
        pass, padding skipped rather than copied."""
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        if self.crop is not None:
            x, w = x[self.crop], w[self.taps]
        kh, kw, sh, sw, dh, dw_, oh, ow = self.geom
        wl = self.w_loop
        if wl is None:
            wl = np.ascontiguousarray(w.reshape(kh, kw, w.shape[3]), np.float32)
        bl = self.b_loop
        if bl is None:
            bl = _NO_BIAS if b is None else np.ascontiguousarray(b.reshape(-1), np.float32)
        oc = wl.shape[2]
        self._check_loop_operands(x, wl, bl if b is not None else None)
        out = np.empty((x.shape[0], oh, ow, oc), np.float32)
        lo, hi = self.range
        self.loops.depthwise_float(np.ascontiguousarray(x), wl, bl, b is not None, sh, sw, dh,
                                   dw_, self.pads[0][0], self.pads[1][0], self.mult, lo, hi,
                                   out)
        return [out]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        if self.crop is not None:  # taps reading padding alone dropped (conv_window)
            x, w = x[self.crop], w[self.taps]
        if self.mult > 1:  # channel c*M+m reads input channel c
            xp = np.repeat(pad_nhwc(x, *self.pads), self.mult, axis=3)
        else:
            xp = self.pad(x)
        kh, kw = self.geom[:2]
        act = self.node.options.fused_activation_function

        def finish(blk):
            add_bias(blk, b, self.bias_row)
            fused_activation(blk, act)

        w_taps = w.reshape(kh, kw, w.shape[3])
        # self.tiled: the constant filter, tiled once in prepare
        return [dw.tap_sum(xp, w_taps, self.geom, np.float32, self.strategy, self.tiled, finish)]

    # -- quantized -----------------------------------------------------------------------------
    def _prepare_quantized(self):
        """Integer DEPTHWISE_CONV_2D: int32 accumulators (int64 when a bound says int32 could
        overflow), requantized per channel."""
        node = self.node
        x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.inputs[2] if len(node.inputs) > 2 else None
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        q.check_operand_types(node, x, w, out, b, int16_bias=(np.int64,))
        o = node.options
        n, h, wd, c = x.shape
        _, kh, kw, oc = w.shape
        if c == 0 or oc % c:
            raise node.fail(f"filter channels {oc} are not a multiple of input channels {c}")
        if b is not None and b.shape != (oc,):
            raise node.fail(f"bias {list(b.shape)} must be [{oc}]")
        self.mult = oc // c
        self.geom, self.pads, self.taps, self.crop = conv_window(o, h, wd, kh, kw)
        kh, kw, oh, ow = self.geom[0], self.geom[1], self.geom[6], self.geom[7]
        sx, zx = q.scalar_qparams(node, x, "input")
        so, zo = q.scalar_qparams(node, out, "output")
        if x.dtype == np.uint8:
            sw, zw = q.scalar_qparams(node, w, "filter")
            mult = [q.legacy_multiplier(sx, sw, so)]
        else:
            mult = q.per_channel_multipliers(sx, q.channel_scales(node, w, oc, 3), so)
            zw = 0
        upward = None
        if x.dtype == np.int16:  # reference kernel
            if zx or zo:
                raise node.fail("int16 input and output must have zero point 0")
            rounding = q.INT64
        elif x.dtype == np.uint8:  # legacy optimized kernel: away from zero throughout
            rounding = q.GEMMLOWP
        else:
            # LiteRT's int8 output stage vectorizes over blocks of 8 channels (ties of the
            # final shift upward) and finishes the last oc % 8 channels one by one (ties away
            # from zero), measured.
            rounding = q.GEMMLOWP
            upward = np.arange(oc) < oc - oc % 8
        self.zx, self.zw = zx, zw
        lo, hi = q.clamp_range(node, out.dtype, so, zo)
        x_max = q.raw_max(x.dtype) + abs(zx)
        wk = w.data if w.data is None or self.taps is None else w.data[self.taps]
        taps = None if wk is None else wk.reshape(kh * kw, oc).astype(np.int64) - zw
        bias_val = None if b is None else b.data
        acc_max = q.acc_bound(x_max, taps, bias_val if b is not None else None, kh * kw, 255)
        # Tap sums below 2**24 are exact in float32 (numpy's fastest multiply-add here).
        sums = q.acc_bound(x_max, taps, None, kh * kw, 255)
        self.acc_dtype = (np.float32 if sums < 2**24 else
                          np.int32 if acc_max < 2**31 else np.int64)
        self.w_taps = None if taps is None else taps.astype(self.acc_dtype).reshape(kh, kw, oc)
        self.strategy = dw.choose(*self.geom[2:4], oh, ow, kh * kw * ow * oc)
        self.tiled = None
        if self.w_taps is not None and self.strategy in ("taps", "rows"):
            self.tiled = dw.tile_weights(self.w_taps, ow)
        # Constant bias: the requantizer adds it (and may run its exact float64 path).
        self.static = taps is not None and (b is None or bias_val is not None)
        offset = bound = None
        if self.static:
            offset = None if b is None else bias_val.astype(np.int64)
            bound = q.acc_bound(x_max, taps, None, kh * kw, 255)
        self.requant = q.Requantizer(np.broadcast_to(mult, (oc,)), rounding, zo, lo, hi,
                                     out.dtype, upward=upward, offset=offset, bound=bound)
        self.pad = PadBuffer(*self.pads, dtype=self.acc_dtype, minus=zx)
        self.eval = self._eval_quantized
        self.loops = _jit.loops()
        if self.loops is not None:
            # Accumulators: float32 when every tap sum is an integer below 2**24 (exact, and
            # numba keeps float32 lanes where it widens int32 arithmetic to int64), else int32
            # when the sums (and a run-time bias) provably fit, as LiteRT's own, else int64.
            self.loop_dtype = np.float32 if self.acc_dtype == np.float32 else \
                np.int32 if acc_max < 2**31 and self.acc_dtype != np.int64 else np.int64
            self.loop_rq = self.requant.loop_params(oc)
            self.loop_fq = self.requant.loop_params_float(oc)
            self.loop_w = None if taps is None else \
                np.ascontiguousarray(taps.reshape(kh, kw, oc), self.loop_dtype)
            self.eval = self._eval_quantized_loop
            self._prepare_avx512(x, taps, zx, oc)
        return [(n, oh, ow, oc)]

    def _prepare_avx512(self, x, taps, zx: int, oc: int) -> None:
        """int8, depth multiplier 1, constant filter and bias, float64 requantization proven
        exact, AVX-512 CPU: interior pixels through ``_avx512.depthwise_int8`` (int32 sums of
        16 channels at a time from ``-zx * sum_t w``, requantized in registers)."""
        self.dw512 = None
        av = _jit.float_gemm()
        if av is None or x.dtype != np.int8 or self.mult != 1 or not self.static or \
                self.loop_fq is None or not taps.size:
            return
        if (128 + abs(zx)) * int(np.abs(taps).sum(axis=0).max()) >= 2**31 or \
                int(np.abs(taps).max()) >= 2**15:
            return  # (int32 sums of int16 products: never out of range for real filters)
        width = -(-oc // 16) * 16

        wt = np.zeros((taps.shape[0], width), np.int32)
        wt[:, :oc] = av.int16_lanes(taps)
        self.dw512 = (av, wt, av.RequantBlock(-zx * taps.sum(axis=0), self.loop_fq, oc, width))
        self.dw512_offsets = (None, None)
        self.eval = self._eval_avx512

    def _eval_avx512(self, inputs):
        x = inputs[0]
        if self.crop is not None:
            x = x[self.crop]
        x = np.ascontiguousarray(x)
        kh, kw, sh, sw, dh, dw_, oh, ow = self.geom
        av, wt, rq = self.dw512
        oc = self.node.inputs[1].shape[3]
        self._check_loop_operands(x, self.loop_w, None)
        key, toff = self.dw512_offsets
        if key != x.shape[2:]:  # byte offsets of the taps from a window's first one
            toff = np.array([(i * dh * x.shape[2] + j * dw_) * x.shape[3]
                             for i in range(kh) for j in range(kw)], np.int64)
            self.dw512_offsets = (x.shape[2:], toff)
        out = np.empty((x.shape[0], oh, ow, oc), np.int8)
        av.depthwise_int8(x, self.loop_dtype(self.zx), self.loop_w,
                          np.empty(oc, self.loop_dtype), wt, toff, rq.block, *rq.f64, rq.span,
                          rq.lo, sh, sw, dh, dw_, self.pads[0][0], self.pads[1][0], out)
        return [out]

    def _eval_quantized_loop(self, inputs):
        """The compiled loop (``_loops.depthwise_quant``): tap sums and requantization in one
        pass, padding skipped."""
        x, w = inputs[0], inputs[1]
        if self.crop is not None:
            x, w = x[self.crop], w[self.taps]
        kh, kw, sh, sw, dh, dw_, oh, ow = self.geom
        oc = self.node.inputs[1].shape[3]
        wl = self.loop_w
        if wl is None:
            wl = np.ascontiguousarray(w.reshape(kh, kw, oc).astype(np.int64) - self.zw,
                                      self.loop_dtype)
        bias = _NO_BIAS_INT
        if not self.static and len(inputs) > 2 and inputs[2] is not None:
            bias = np.ascontiguousarray(inputs[2].reshape(-1), np.int64)
        # the float64 requantization only where prepare proved it exact (then no run-time bias)
        fq = self.loop_fq if bias is _NO_BIAS_INT and self.loop_fq is not None else _NO_FQ
        self._check_loop_operands(x, wl, None if bias is _NO_BIAS_INT else bias)
        out = np.empty((x.shape[0], oh, ow, oc), self.requant.dtype)
        self.loops.depthwise_quant(np.ascontiguousarray(x), self.loop_dtype(self.zx), wl, bias,
                                   bias is not _NO_BIAS_INT, sh, sw, dh, dw_, self.pads[0][0],
                                   self.pads[1][0], self.mult, np.empty(2 * oc, self.loop_dtype),
                                   self.loop_rq, fq, fq is not _NO_FQ, out)
        return [out]

    def _eval_quantized(self, inputs):
        x, w = inputs[0], inputs[1]
        if self.crop is not None:  # taps reading padding alone dropped (conv_window)
            x, w = x[self.crop], w[self.taps]
        kh, kw, oc = self.geom[0], self.geom[1], self.node.inputs[1].shape[3]
        wt = self.w_taps
        if wt is None:
            wt = (w.reshape(kh, kw, oc).astype(np.int64) - self.zw).astype(self.acc_dtype)
        bias = None
        if not self.static and len(inputs) > 2 and inputs[2] is not None:
            bias = inputs[2].astype(np.int64)
        if self.mult > 1:  # channel c*M+m reads input channel c
            xs = x.astype(self.acc_dtype)
            if self.zx:
                xs -= self.zx
            xp = np.repeat(pad_nhwc(xs, *self.pads), self.mult, axis=3)
        else:  # (x - zx) in the accumulator type; padding is (x - zx) == 0: skipped taps
            xp = self.pad(x)
        # One tap sum and one requantization over the whole tensor: numpy's per-call overhead
        # outweighs any cache gain from row blocks at these sizes (measured).
        acc = dw.tap_sum(xp, wt, self.geom, self.acc_dtype, self.strategy, self.tiled)
        if bias is not None:
            acc = acc.astype(np.int64)
            acc += bias
        return [self.requant(acc)]
