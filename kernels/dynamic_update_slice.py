"""DYNAMIC_UPDATE_SLICE (XLA's DynamicUpdateSlice; ``xla.dynamic_update_slice``, KV caches of
converted transformers): a copy of ``operand`` with ``update`` written at ``start`` (one int32
or int64 index per dimension). As in XLA and LiteRT, each start index is clamped to
``[0, operand_dim - update_dim]`` so the update always fits. Elements are copied as stored
(quantized tensors are not rescaled)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import require_dense, require_same_dtype
from .registry import register


@register(Op.DYNAMIC_UPDATE_SLICE)
class DynamicUpdateSlice(Kernel):
    def prepare(self):
        node = self.node
        x, upd, start = node.inputs[0], node.inputs[1], node.inputs[2]
        require_dense(node, 0, 1)
        require_same_dtype(node, x, node.outputs[0])
        require_same_dtype(node, x, upd, "update")
        if len(upd.shape) != len(x.shape):
            raise node.fail(f"update rank {len(upd.shape)} differs from the operand rank "
                            f"{len(x.shape)}")
        if any(u > d for u, d in zip(upd.shape, x.shape)):
            raise node.fail(f"update {list(upd.shape)} does not fit in operand "
                            f"{list(x.shape)}")
        if start.dtype not in (np.int32, np.int64) or tuple(start.shape) != (len(x.shape),):
            raise node.fail(f"start indices must be int32/int64 [{len(x.shape)}], got "
                            f"{start.tensor.type_name}{list(start.shape)}")
        return [tuple(x.shape)]

    def eval(self, inputs):
        x, upd, start = inputs[0], inputs[1], inputs[2]
        out = np.array(x, copy=True)
        if upd.size:
            begin = [min(max(int(s), 0), d - u)
                     for s, d, u in zip(np.asarray(start).reshape(-1), x.shape, upd.shape)]
            out[tuple(slice(b, b + u) for b, u in zip(begin, upd.shape))] = upd
        return [out]
