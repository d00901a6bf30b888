"""EMBEDDING_LOOKUP: inputs (lookup: int32 vector, value: rank >= 2); the rows of ``value``
named by ``lookup`` (a raw copy, any dtype). Quantized int8/uint8 weights with a float output
are the hybrid path (dequantizing), not supported yet."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import folds_constants, require_dense
from .gather import check_indices
from .registry import register


@register(Op.EMBEDDING_LOOKUP)
@folds_constants
class EmbeddingLookup(Kernel):
    def prepare(self):
        node = self.node
        lookup, value, out = node.inputs[0], node.inputs[1], node.outputs[0]
        if lookup.dtype != np.int32 or len(lookup.shape) != 1:
            raise node.fail("lookup must be an int32 vector")
        require_dense(node, 1)
        if value.dtype != out.dtype:
            if value.dtype in (np.int8, np.uint8) and out.dtype in (np.float32, np.float16):
                raise UnsupportedOpError(node.op.name, node.path,
                                         f"{value.dtype} weights with {out.dtype} output "
                                         "(hybrid) are not supported yet")
            raise node.fail(f"output type {out.dtype} differs from value type {value.dtype}")
        if len(value.shape) < 2:
            raise node.fail(f"value must have rank >= 2, got {list(value.shape)}")
        return [(lookup.shape[0], *value.shape[1:])]

    def eval(self, inputs):
        lookup, value = inputs[0], inputs[1]
        check_indices(self.node, lookup, value.shape[0], "embedding index")
        return [value[lookup.astype(np.intp)]]
