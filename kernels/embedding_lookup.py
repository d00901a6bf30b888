"""EMBEDDING_LOOKUP: inputs (lookup: int32 vector, value: rank >= 2); the rows of ``value``
named by ``lookup``: a raw copy (any dtype, output type = value type), or the hybrid path:
int8/uint8/int4 values with a float32 output are dequantized.

Hybrid, as LiteRT's EvalHybrid: ``out = float(int8 value * (double) scale)`` with one scale for
the tensor, or one per row when the tensor has a scale per row (quantized dimension 0). Zero
points are ignored (symmetric weights) and uint8 bytes are read as int8, as LiteRT does."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op, TensorType

from ._common import Kernel
from ._hybrid import constant_values, unpack_int4
from ._shape import require_dense
from .gather import check_indices
from .registry import register

_HYBRID_TYPES = (TensorType.INT8, TensorType.UINT8, TensorType.INT4)


@register(Op.EMBEDDING_LOOKUP)
class EmbeddingLookup(Kernel):
    def prepare(self):
        node = self.node
        lookup, value, out = node.inputs[0], node.inputs[1], node.outputs[0]
        if lookup.dtype != np.int32 or len(lookup.shape) != 1:
            raise node.fail("lookup must be an int32 vector")
        if len(value.shape) < 2:
            raise node.fail(f"value must have rank >= 2, got {list(value.shape)}")
        self.hybrid = (int(value.tensor.dtype) in _HYBRID_TYPES and out.dtype == np.float32)
        if self.hybrid:
            self._prepare_hybrid(value)
        else:
            require_dense(node, 1)
            if value.dtype != out.dtype:
                raise node.fail(f"output type {out.dtype} differs from value type "
                                f"{value.dtype}")
        return [(lookup.shape[0], *value.shape[1:])]

    def _prepare_hybrid(self, value):
        node = self.node
        q = value.quantization
        if q is None or q.scale.size == 0:
            raise node.fail("quantized value without a scale (hybrid lookup)")
        rows = value.shape[0]
        scale = np.asarray(q.scale, np.float64)
        if scale.size not in (1, rows) or (scale.size > 1 and q.quantized_dimension != 0):
            raise node.fail(f"{scale.size} scales for a value of {rows} rows; expected 1 or "
                            "one per row")
        self.row_scale = np.broadcast_to(scale, (rows,))
        self.table = None
        if value.data is not None:
            self.table = self._as_int8(constant_values(node, value))

    @staticmethod
    def _as_int8(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v)
        return v.view(np.int8) if v.dtype == np.uint8 else v.astype(np.int8, copy=False)

    def eval(self, inputs):
        lookup, value = inputs[0], inputs[1]
        rows = self.node.inputs[1].shape[0]
        check_indices(self.node, lookup, rows, "embedding index")
        idx = lookup.astype(np.intp)
        if not self.hybrid:
            return [value[idx]]
        table = self.table
        if table is None:  # values computed at run time
            vt = self.node.inputs[1]
            if int(vt.tensor.dtype) == TensorType.INT4:
                value = unpack_int4(value, vt.shape)
            table = self._as_int8(value)
        picked = table[idx].astype(np.float64)
        scale = self.row_scale[idx].reshape((-1,) + (1,) * (picked.ndim - 1))
        return [(picked * scale).astype(np.float32)]
