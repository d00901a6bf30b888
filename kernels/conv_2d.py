"""CONV_2D: float32, int8 (per-channel or per-tensor int8 or packed int4 weights, int32 bias),
uint8 (legacy, per-tensor, weight zero point) and int16x8 (int64 or int32 bias). NHWC input, OHWI
filter, optional bias; groups when the filter's input channels divide the input's. im2col as a
strided view, then one BLAS matmul per group (exact integer GEMM on the quantized paths). Float
input with integer weights (dynamic range) runs in ``_hybrid``."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from . import _jit
from . import _qconv as q
from ._common import Kernel, PadBuffer, conv_window, pad_nhwc, patches
from ._conv import activation_range, add_bias, bias_row, fused_activation
from ._float_only import require_float
from .registry import register

_NO_BIAS = np.zeros(1, np.float32)


@register(Op.CONV_2D)
class Conv2D(Kernel):
    def prepare(self):
        node = self.node
        x, w = node.inputs[0], node.inputs[1]
        if q.is_hybrid(x, w):
            return q.delegate(self, "HybridConv2D", "hybrid (float input, integer weights) CONV_2D")
        if x.dtype in q.INT_DTYPES:
            q.int4_weights_as_int8(node, 1)
            return self._prepare_quantized()
        require_float(node)
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        o = node.options
        n, h, wd, c = x.shape
        oc, kh, kw, ic = w.shape
        if ic == 0 or c == 0 or c % ic:
            raise node.fail(f"input channels {c} are not a positive multiple of filter channels "
                            f"{ic}")
        self.groups = c // ic
        if oc % self.groups:
            raise node.fail(f"{oc} filters do not split into {self.groups} groups")
        self.geom, self.pads, self.taps, self.crop = conv_window(o, h, wd, kh, kw)
        kh, kw, oh, ow = self.geom[0], self.geom[1], self.geom[6], self.geom[7]
        (pt, pb), (pl, pr) = self.pads
        # Constant weights: lay them out as the matmul's right operand once, here.
        self.wt = None
        if w.data is not None and self.groups == 1:
            wk = w.data if self.taps is None else w.data[self.taps]
            self.wt = np.ascontiguousarray(wk.reshape(oc, kh * kw * ic).T, np.float32)
        self.pointwise = (kh, kw, o.stride_h, o.stride_w, pt, pb, pl, pr) == (1, 1, 1, 1, 0, 0,
                                                                                0, 0)
        b = node.inputs[2] if len(node.inputs) > 2 else None
        if b is not None and int(np.prod(b.shape)) != oc:  # LiteRT checks the element count
            raise node.fail(f"bias {list(b.shape)} must have {oc} elements")
        self.bias_row = bias_row(b, ow)
        # A constant bias rides in the GEMM as one more input column of ones (and one more
        # weight row) whenever the GEMM's left operand is copied anyway (im2col), or is
        # narrower than the output (expand convs): one more column then costs less than a
        # pass over the output to add the bias. Float32 sums in another order: within contract.
        self.wt_bias = None
        # Compiled loops: one pass adds the bias and clamps the GEMM's output (instead of the
        # bias column and/or numpy passes below).
        self.loops = _jit.loops() if self.groups == 1 and x.dtype == np.float32 and \
            (b is None or b.dtype == np.float32) else None
        if self.loops is not None:
            self.range = activation_range(o.fused_activation_function, np.float32)
            self.b_loop = None if b is None or b.data is None else \
                np.ascontiguousarray(b.data.reshape(-1), np.float32)
        elif self.wt is not None and b is not None and b.data is not None and \
                b.data.dtype == np.float32 and (not self.pointwise or ic < oc):
            self.wt_bias = np.vstack([self.wt, b.data.reshape(1, oc)]).astype(np.float32)
        self.pad = PadBuffer(*self.pads)
        # AVX-512: our float32 micro-kernel, bias and clamp fused (constant filter and bias)
        self.fgemm = None
        fg = _jit.float_gemm() if self.groups == 1 and x.dtype == np.float32 else None
        if fg is not None and w.data is not None and w.data.dtype == np.float32 and \
                (b is None or (b.data is not None and b.data.dtype == np.float32)):
            wk = w.data if self.taps is None else w.data[self.taps]
            packed = fg.PackedWeights(np.ascontiguousarray(wk.reshape(oc, kh * kw * ic)))
            bias = packed.padded(0 if b is None else b.data.reshape(-1), np.float32)
            self.fgemm = (fg, packed, bias,
                          *activation_range(o.fused_activation_function, np.float32))
            self.eval = self._eval_avx512
        return [(n, oh, ow, oc)]

    def _eval_avx512(self, inputs):
        """float32, constant filter and bias, on AVX-512: ``_avx512.gemm_bias_clamp`` over the
        im2col rows (the input itself for pointwise convs)."""
        x = inputs[0]
        if self.crop is not None:
            x = x[self.crop]
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        fg, packed, bias, lo, hi = self.fgemm
        n, k, oc = x.shape[0], packed.k, packed.n
        if self.pointwise:
            if x.shape[1:] != (oh, ow, k):  # (the micro-kernel writes through raw addresses)
                raise self.node.fail(f"input {list(x.shape)} does not match the prepared "
                                     f"[N, {oh}, {ow}, {k}]")
            rows = np.ascontiguousarray(x).reshape(-1, k)
        else:
            rows = np.empty((n * oh * ow, k), np.float32)
            rows.reshape(n, oh, ow, kh, kw, x.shape[3])[...] = patches(
                self.pad(x), kh, kw, sh, sw, dh, dw, oh, ow)
        out = np.empty((n, oh, ow, oc), np.float32)
        fg.gemm_bias_clamp(rows, rows.shape[0], k, packed.packed, packed.offsets,
                           packed.widths, packed.k_steps, oc, bias, lo, hi,
                           out.reshape(-1, oc))
        return [out]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        if self.crop is not None:  # taps reading padding alone dropped (conv_window)
            x, w = x[self.crop], w[self.taps]
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        if self.groups == 1:
            n, k, oc = x.shape[0], kh * kw * x.shape[3], w.shape[0]
            if self.wt_bias is not None:
                cols2d = np.empty((n * oh * ow, k + 1), np.float32)
                cols2d[:, k] = 1.0
                lhs = cols2d[:, :k].reshape(n, oh, ow, kh, kw, x.shape[3])
                lhs[...] = x.reshape(lhs.shape) if self.pointwise else patches(
                    self.pad(x), kh, kw, sh, sw, dh, dw, oh, ow)
                out = (cols2d @ self.wt_bias).reshape(n, oh, ow, oc)
                return [fused_activation(out, self.node.options.fused_activation_function)]
            wt = self.wt if self.wt is not None else w.reshape(oc, -1).T
            if self.pointwise:  # 1x1, stride 1: the input already is the im2col matrix
                cols2d = x.reshape(-1, x.shape[3])
            else:
                cols = patches(self.pad(x), kh, kw, sh, sw, dh, dw, oh, ow)
                cols2d = cols.reshape(-1, k)
            out = cols2d @ wt
            if self.loops is not None:
                bl = self.b_loop
                if bl is None:
                    bl = _NO_BIAS if b is None else np.ascontiguousarray(b.reshape(-1),
                                                                         np.float32)
                    if b is not None and bl.size != oc:  # (the loop reads bias[0:oc] unchecked)
                        raise self.node.fail(f"bias has {bl.size} elements, not {oc}")
                self.loops.bias_clamp_rows(out, bl, b is not None, *self.range)
                return [out.reshape(n, oh, ow, oc)]
            out = out.reshape(n, oh, ow, oc)
            add_bias(out, b, self.bias_row)
            return [fused_activation(out, self.node.options.fused_activation_function)]
        cols = patches(self.pad(x), kh, kw, sh, sw, dh, dw, oh, ow)  # N,OH,OW,KH,KW,C
        n, c, oc = x.shape[0], x.shape[3], w.shape[0]
        g = self.groups
        icg, ocg = c // g, oc // g
        out = np.empty((n, oh, ow, oc), np.float32)
        for gi in range(g):
            cg = cols[..., gi * icg:(gi + 1) * icg].reshape(n * oh * ow, kh * kw * icg)
            wg = w[gi * ocg:(gi + 1) * ocg].reshape(ocg, kh * kw * icg)
            out[..., gi * ocg:(gi + 1) * ocg] = (cg @ wg.T).reshape(n, oh, ow, ocg)
        add_bias(out, b, self.bias_row)
        return [fused_activation(out, self.node.options.fused_activation_function)]

    # -- quantized -----------------------------------------------------------------------------
    def _prepare_quantized(self):
        """Integer CONV_2D. LiteRT runs int8/uint8 (and int16 with an int32 bias and zero zero
        points) through its im2col + ruy GEMM path (``UPWARD`` rounding); grouped convs and the
        16x8 path with an int64 bias run the reference kernel (``GEMMLOWP`` / ``INT64``)."""
        node = self.node
        x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.inputs[2] if len(node.inputs) > 2 else None
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        q.check_operand_types(node, x, w, out, b)
        o = node.options
        n, h, wd, c = x.shape
        oc, kh, kw, ic = w.shape
        if ic == 0 or c == 0 or c % ic:
            raise node.fail(f"input channels {c} are not a positive multiple of filter channels "
                            f"{ic}")
        g = self.groups = c // ic
        if oc % g:
            raise node.fail(f"{oc} filters do not split into {g} groups")
        if b is not None and b.shape != (oc,):
            raise node.fail(f"bias {list(b.shape)} must be [{oc}]")
        self.geom, self.pads, self.taps, self.crop = conv_window(o, h, wd, kh, kw)
        kh, kw, oh, ow = self.geom[0], self.geom[1], self.geom[6], self.geom[7]
        (pt, pb), (pl, pr) = self.pads
        self.pointwise = (kh, kw, o.stride_h, o.stride_w, pt, pb, pl, pr) == (1, 1, 1, 1, 0, 0,
                                                                                0, 0)
        sx, zx = q.scalar_qparams(node, x, "input")
        so, zo = q.scalar_qparams(node, out, "output")
        if x.dtype == np.uint8:
            sw, zw = q.scalar_qparams(node, w, "filter")
            mult = [q.legacy_multiplier(sx, sw, so)]
        else:
            # Per-channel (or per-tensor broadcast) int8 filters; LiteRT ignores their zero point.
            mult = q.per_channel_multipliers(sx, q.channel_scales(node, w, oc, 0), so)
            zw = 0
        if x.dtype == np.int16:
            if zx or zo:
                raise node.fail("int16 input and output must have zero point 0")
            optimized = b is not None and b.dtype == np.int32 and g == 1
            rounding = q.UPWARD if optimized else q.INT64
        else:
            rounding = q.UPWARD if g == 1 else q.GEMMLOWP
        self.zx = zx
        lo, hi = q.clamp_range(node, out.dtype, so, zo)
        k = kh * kw * ic
        x_max = q.raw_max(x.dtype)
        bias_val = None if b is None else b.data
        self.static = w.data is not None and (b is None or bias_val is not None)
        w2d, offset, bound = None, None, None
        if w.data is not None:
            wk = w.data if self.taps is None else w.data[self.taps]
            w2d = wk.reshape(oc, k).astype(np.int64).T - zw  # [K, OC] of the kept taps
            ocg = oc // g
            self.gemms = [q.ExactMatmul(w2d[:, gi * ocg:(gi + 1) * ocg], x_max)
                          for gi in range(g)]
            # Padding holds zx, so every window sums zx * sum(w) (LiteRT skips those taps):
            # subtract it, and add the bias, as one per-channel offset.
            self.corr = -zx * w2d.sum(axis=0)
            if bias_val is not None:
                self.corr = self.corr + bias_val.astype(np.int64)
            if self.static:
                offset, bound = self.corr, max(gm.bound for gm in self.gemms)
        else:
            self.gemms = None
        acc_max = q.acc_bound(x_max + abs(zx), w2d, bias_val if b is not None else None, k, 255)
        wrap = rounding != q.INT64 and acc_max >= 2**31
        self.requant = q.Requantizer(mult, rounding, zo, lo, hi, out.dtype, wrap_acc=wrap,
                                     offset=offset, bound=bound)
        self.eval = self._eval_quantized
        # Compiled loops: the requantization in one pass over each accumulator block.
        self.loops = _jit.loops()
        self.loop_rq = None if self.loops is None else self.requant.loop_params(oc)
        self.loop_fq = None if self.loops is None else self.requant.loop_params_float(oc)
        self.vnni = None
        if x.dtype == np.int8 and g == 1 and self.static and w2d is not None:
            self.vnni = q.VnniGemm.build(wk.reshape(oc, k), self.requant)
            if self.vnni is not None:
                self.eval = self._eval_vnni
        return [(n, oh, ow, oc)]

    def _eval_vnni(self, inputs):
        """int8 with constant weights on an AVX-512 VNNI CPU: the fused GEMM + requantization
        of ``_avx512`` over im2col rows (the input itself for pointwise convs)."""
        x = inputs[0]
        if self.crop is not None:
            x = x[self.crop]
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        n, c = x.shape[0], x.shape[3]
        vg = self.vnni
        out = np.empty((n, oh, ow, vg.n), self.requant.dtype)
        flat = out.reshape(-1, vg.n)
        if self.pointwise:
            vg(x.reshape(-1, c), flat)
            return [out]
        cols = patches(pad_nhwc(x, *self.pads, value=self.zx), kh, kw, sh, sw, dh, dw, oh, ow)
        for bi in range(n):
            for r0, r1 in q.row_chunks(oh, ow * vg.kp):
                m0 = (bi * oh + r0) * ow
                vg(cols[bi, r0:r1], flat[m0:m0 + (r1 - r0) * ow])
        return [out]

    def _eval_quantized(self, inputs):
        x, w = inputs[0], inputs[1]
        if self.crop is not None:  # taps reading padding alone dropped (conv_window)
            x, w = x[self.crop], w[self.taps]
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        n, c, oc = x.shape[0], x.shape[3], self.node.inputs[1].shape[0]
        g = self.groups
        if self.static:
            gemms, corr = self.gemms, None  # the requantizer adds the offset
        else:  # runtime filter or bias: the same precomputation, per invoke
            if self.gemms is not None:
                gemms, corr = self.gemms, self.corr
            else:
                w2d = w.reshape(oc, -1).astype(np.int64).T - self._filter_zp()
                ocg = oc // g
                gemms = [q.ExactMatmul(w2d[:, gi * ocg:(gi + 1) * ocg], q.raw_max(x.dtype))
                         for gi in range(g)]
                corr = -self.zx * w2d.sum(axis=0)
            if len(inputs) > 2 and inputs[2] is not None and \
                    (self.gemms is None or self.node.inputs[2].data is None):
                corr = corr + inputs[2].astype(np.int64)
        if self.pointwise:
            cols = x.reshape(n, oh, ow, 1, 1, c)
        else:
            cols = patches(pad_nhwc(x, *self.pads, value=self.zx), kh, kw, sh, sw, dh, dw, oh, ow)
        out = np.empty((n, oh, ow, oc), self.requant.dtype)
        icg = c // g
        for bi in range(n):
            for r0, r1 in q.row_chunks(oh, ow * max(oc, kh * kw * c)):
                blk = cols[bi, r0:r1]
                if g == 1:
                    acc = gemms[0].dot(blk)
                else:
                    acc = np.concatenate([gm.dot(blk[..., gi * icg:(gi + 1) * icg])
                                          for gi, gm in enumerate(gemms)], axis=1)
                if corr is not None:
                    acc = acc.astype(np.int64)
                    acc += corr
                if self.loop_fq is not None and corr is None:  # exact float64 form
                    self.loops.requantize_rows_float(acc.reshape(-1, oc), self.loop_fq,
                                                     out[bi, r0:r1].reshape(-1, oc))
                elif self.loop_rq is not None:
                    self.loops.requantize_rows(acc.reshape(-1, oc), self.loop_rq,
                                               out[bi, r0:r1].reshape(-1, oc))
                else:
                    out[bi, r0:r1] = self.requant(acc).reshape(r1 - r0, ow, oc)
        return [out]

    def _filter_zp(self) -> int:
        t = self.node.inputs[1]
        if t.dtype == np.uint8:
            return q.scalar_qparams(self.node, t, "filter")[1]
        return 0
