"""BATCH_MATMUL: float32, int8 (per-tensor, both zero points) and int16 (zero points 0):
``lhs [..., M, K] @ rhs [..., K, N]`` with adj_x / adj_y transposing the last two dims of an
operand and the batch dims (ranks 2-5) broadcasting numpy-style; exact integer GEMM through
BLAS on the quantized paths. Float lhs with an integer rhs (dynamic range) runs in
``_hybrid``."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from . import _qconv as q
from ._common import Kernel, broadcast_shape
from .registry import register


@register(Op.BATCH_MATMUL)
class BatchMatMul(Kernel):
    def prepare(self):
        node = self.node
        a, b = node.inputs[0], node.inputs[1]
        if q.is_hybrid(a, b):
            return q.delegate(self, "HybridBatchMatMul",
                              "hybrid (float input, integer weights) BATCH_MATMUL")
        quantized = a.dtype in q.INT_DTYPES
        for t in (a, b):
            if t.dtype != np.float32 and not (quantized and t.dtype == a.dtype):
                raise UnsupportedOpError(node.op.name, node.path,
                                         f"{a.dtype} x {b.dtype} inputs are not supported")
        if not (2 <= len(a.shape) <= 5 and 2 <= len(b.shape) <= 5):
            raise node.fail(f"operands {list(a.shape)} and {list(b.shape)} must have rank 2-5")
        o = node.options
        self.adj_x = bool(o.adj_x) if o is not None else False
        self.adj_y = bool(o.adj_y) if o is not None else False
        m, k = (a.shape[-1], a.shape[-2]) if self.adj_x else (a.shape[-2], a.shape[-1])
        k2, n = (b.shape[-1], b.shape[-2]) if self.adj_y else (b.shape[-2], b.shape[-1])
        if k != k2:
            raise node.fail(f"contraction sizes differ: {list(a.shape)} (adj_x={self.adj_x}) "
                            f"and {list(b.shape)} (adj_y={self.adj_y})")
        batch = broadcast_shape(a.shape[:-2], b.shape[:-2], node)
        if quantized:
            self._prepare_quantized()
        return [(*batch, m, n)]

    def eval(self, inputs):
        a, b = inputs[0], inputs[1]
        if self.adj_x:
            a = np.swapaxes(a, -1, -2)
        if self.adj_y:
            b = np.swapaxes(b, -1, -2)
        return [np.ascontiguousarray(np.matmul(a, b), dtype=np.float32)]

    # -- quantized -----------------------------------------------------------------------------
    def _prepare_quantized(self) -> None:
        """Integer BATCH_MATMUL: one per-tensor multiplier ``float(s_a * s_b) / s_o``. LiteRT rounds
        int8 ties away from zero (``GEMMLOWP``, measured), int16 runs its reference kernel
        (``INT64``)."""
        node = self.node
        a, b, out = node.inputs[0], node.inputs[1], node.outputs[0]
        if out.dtype != a.dtype or a.dtype == np.uint8:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{a.dtype} inputs with {out.dtype} output are not "
                                     "supported")
        sa, za = q.scalar_qparams(node, a, "lhs")
        sb, zb = q.scalar_qparams(node, b, "rhs")
        so, zo = q.scalar_qparams(node, out, "output")
        if a.dtype == np.int16:
            if za or zb or zo:
                raise node.fail("int16 operands and output must have zero point 0")
            rounding = q.INT64
        else:
            rounding = q.GEMMLOWP
        self.za, self.zb = za, zb
        self.a_max = q.raw_max(a.dtype) + abs(za)
        self.b_max = q.raw_max(b.dtype) + abs(zb)
        self.rhs = None
        if b.data is not None:
            self.rhs = self._shifted(b.data, zb, self.adj_y)
        lo, hi = q.clamp_range(node, out.dtype, so, zo)
        k = a.shape[-2] if self.adj_x else a.shape[-1]
        wrap = rounding == q.GEMMLOWP and k * self.a_max * self.b_max >= 2**31
        self.requant = q.Requantizer([q.legacy_multiplier(sa, sb, so)], rounding, zo, lo, hi,
                                     out.dtype, wrap_acc=wrap)
        self.eval = self._eval_quantized

    @staticmethod
    def _shifted(x: np.ndarray, zp: int, adj: bool) -> np.ndarray:
        x = x.astype(np.int32)
        if zp:
            x -= zp
        return np.swapaxes(x, -1, -2) if adj else x

    def _eval_quantized(self, inputs):
        lhs = self._shifted(inputs[0], self.za, self.adj_x)
        rhs = self.rhs if self.rhs is not None else self._shifted(inputs[1], self.zb,
                                                                 self.adj_y)
        acc = q.exact_matmul(lhs, rhs, self.a_max, self.b_max)
        return [self.requant(acc)]
