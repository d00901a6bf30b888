"""FULLY_CONNECTED: float32, int8 (int8 or packed int4 weights per-tensor or per-channel, int32
bias), uint8 (legacy, per-tensor, weight zero point; uint8 or int16 output) and int16x8 (int64
or int32 bias; int16 weights too, as TF's 16x8 converter emits for a product of two
activations, with no bias or an int32 one). Weights [units, in]; input flattened to
[-1, in] (or kept as [..., in] with keep_num_dims); exact integer GEMM through BLAS on the
quantized paths. Float input with integer (or sparse) weights runs in ``_hybrid``."""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from . import _qconv as q
from ._common import Kernel
from ._conv import fused_activation
from ._float_only import require_float
from .registry import register


@register(Op.FULLY_CONNECTED)
class FullyConnected(Kernel):
    def prepare(self):
        node = self.node
        x, w = node.inputs[0], node.inputs[1]
        if w is not None and w.tensor.sparsity is not None:
            return q.delegate(self, "SparseFullyConnected", "sparse FULLY_CONNECTED weights")
        if q.is_hybrid(x, w):
            return q.delegate(self, "HybridFullyConnected",
                              "hybrid (float input, integer weights) FULLY_CONNECTED")
        quantized = x.dtype in q.INT_DTYPES
        if quantized:
            q.int4_weights_as_int8(node, 1)
        else:
            require_float(node)
        if getattr(node.options, "weights_format", 0):
            raise UnsupportedOpError(node.op.name, node.path,
                                     "shuffled (SHUFFLED4x16INT8) weights are not supported")
        if len(w.shape) != 2:
            raise node.fail(f"weights {list(w.shape)} must be 2-D [units, in]")
        units, k = w.shape
        total = math.prod(x.shape)
        if k == 0 or total % k:
            raise node.fail(f"input {list(x.shape)} does not flatten into rows of {k}")
        if node.options.keep_num_dims:
            if x.shape[-1] != k:
                raise node.fail(f"last input dimension {x.shape[-1]} != weights' {k}")
            shape = tuple(x.shape[:-1]) + (units,)
        else:
            shape = (total // k, units)
        b = node.inputs[2] if len(node.inputs) > 2 else None
        if w.dtype == np.int16 and b is not None and b.dtype == np.int64:
            # measured: LiteRT's int16-weights path reads the bias buffer as int32 values (the
            # halves of the int64 ones): not reproduced, refused
            raise UnsupportedOpError(node.op.name, node.path, "int16 weights with an int64 "
                                     "bias (LiteRT reads that bias as int32 values)")
        if b is not None and math.prod(b.shape) != units:
            raise node.fail(f"bias {list(b.shape)} must have {units} elements")
        if quantized:
            self._prepare_quantized(units, k)
        elif b is not None and b.dtype != np.float32:
            raise node.fail(f"bias must be FLOAT32 with a float input, got {b.tensor.type_name}")
        return [shape]

    def eval(self, inputs):
        x, w = inputs[0], inputs[1]
        b = inputs[2] if len(inputs) > 2 else None
        k = w.shape[1]
        out = np.ascontiguousarray(x.reshape(-1, k) @ w.T, dtype=np.float32)
        if b is not None:
            out += b
        act = self.node.options.fused_activation_function if self.node.options else 0
        out = fused_activation(out, act)
        return [out.reshape(self.node.outputs[0].shape)]

    # -- quantized -----------------------------------------------------------------------------
    def _prepare_quantized(self, units: int, k: int) -> None:
        """Integer FULLY_CONNECTED. LiteRT's 8-bit paths run its ruy GEMM (``UPWARD``
        rounding); int16 activations run the reference kernel with int64 accumulators and a
        single rounding (``SINGLE``), or with int16 weights the reduced 16-bit multiplier
        (``INT64``)."""
        node = self.node
        x, w, out = node.inputs[0], node.inputs[1], node.outputs[0]
        b = node.inputs[2] if len(node.inputs) > 2 else None
        outs = {np.dtype(np.int8): (np.int8,), np.dtype(np.uint8): (np.uint8, np.int16),
                np.dtype(np.int16): (np.int16,)}[x.dtype]
        # int16 weights with int16 input: what TF's 16x8 converter emits for a matmul of two
        # activations (an outer product); LiteRT runs it on the same int64 reference path.
        q.check_operand_types(node, x, w, out, b, weights="weights", outs=outs,
                              int16_weights=True)
        if w.dtype == np.int16 and b is not None and b.dtype == np.int64:
            # measured: LiteRT's int16-weights path reads the bias buffer as int32 values (the
            # halves of the int64 ones): not reproduced, refused
            raise UnsupportedOpError(node.op.name, node.path, "int16 weights with an int64 "
                                     "bias (LiteRT reads that bias as int32 values)")
        if b is not None and math.prod(b.shape) != units:
            raise node.fail(f"bias {list(b.shape)} must have {units} elements")
        sx, zx = q.scalar_qparams(node, x, "input")
        so, zo = q.scalar_qparams(node, out, "output")
        sw_all, zw_all = q.qparams(node, w, "weights")
        if sw_all.size > 1:
            if x.dtype == np.uint8:
                raise node.fail("uint8 FULLY_CONNECTED needs per-tensor weights")
            mult = q.per_channel_multipliers(sx, q.channel_scales(node, w, units, 0), so)
            zw = 0  # per-channel weights are symmetric: LiteRT ignores their zero point
        elif x.dtype == np.int16:  # measured: the double product, as for per-channel weights
            mult = q.per_channel_multipliers(sx, sw_all[:1], so)
            zw = int(zw_all[0])
        else:
            mult = [q.legacy_multiplier(sx, sw_all[0], so)]
            zw = int(zw_all[0])
        if x.dtype == np.int16:
            if zx or zo:
                raise node.fail("int16 input and output must have zero point 0")
            # measured: int8 weights round once (not the reduced 16-bit multiplier of
            # CONV_2D); int16 weights take the reduced multiplier (``INT64``)
            rounding = q.INT64 if w.dtype == np.int16 else q.SINGLE
        else:
            rounding = q.UPWARD
        self.zx, self.zw, self.k = zx, zw, k
        lo, hi = q.clamp_range(node, out.dtype, so, zo)
        x_max = q.raw_max(x.dtype)
        bias_val = None if b is None else b.data
        self.gemm = None
        if w.data is not None:
            wt = w.data.astype(np.int64).T - zw  # [K, units]
            self.gemm = q.ExactMatmul(wt, x_max)
            self.corr = -zx * wt.sum(axis=0)
            if bias_val is not None:
                self.corr = self.corr + bias_val.reshape(-1).astype(np.int64)
        self.runtime_bias = b is not None and (bias_val is None or w.data is None)
        self.static = self.gemm is not None and not self.runtime_bias
        acc_max = q.acc_bound(x_max + abs(zx), None if w.data is None else
                              w.data.astype(np.int64).T - zw,
                              bias_val if b is not None else None, k,
                              q.raw_max(w.dtype) + abs(zw))
        wrap = rounding == q.UPWARD and acc_max >= 2**31
        # Constant weights and bias: the requantizer adds the offset (exact float64 path).
        self.requant = q.Requantizer(mult, rounding, zo, lo, hi, out.dtype, wrap_acc=wrap,
                                     offset=self.corr if self.static else None,
                                     bound=self.gemm.bound if self.static else None)
        self.eval = self._eval_quantized
        self.vnni = None
        if self.static and x.dtype == np.int8 and w.dtype == np.int8 and zw == 0:
            self.vnni = q.VnniGemm.build(w.data.reshape(units, k), self.requant)
            if self.vnni is not None:
                self.eval = self._eval_vnni

    def _eval_vnni(self, inputs):
        """int8 with constant weights on an AVX-512 VNNI CPU (``q.VnniGemm``)."""
        x = inputs[0]
        out = np.empty((x.size // self.k, self.vnni.n), self.vnni.dtype)
        self.vnni(x, out)
        return [out.reshape(self.node.outputs[0].shape)]

    def _eval_quantized(self, inputs):
        x, w = inputs[0], inputs[1]
        shape = self.node.outputs[0].shape
        if self.static:
            return [self.requant(self.gemm.dot(x.reshape(-1, self.k))).reshape(shape)]
        if self.gemm is not None:
            gemm, corr = self.gemm, self.corr
        else:
            wt = w.astype(np.int64).T - self.zw
            gemm = q.ExactMatmul(wt, q.raw_max(x.dtype))
            corr = -self.zx * wt.sum(axis=0)
        if self.runtime_bias:
            corr = corr + inputs[2].reshape(-1).astype(np.int64)
        acc = gemm(x.reshape(-1, self.k))
        acc += corr
        return [self.requant(acc).reshape(shape)]
