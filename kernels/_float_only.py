"""Guard for kernels that so far implement the float32 path only.

A float kernel must never run on quantized or hybrid data (int8 weights of a dynamic-range
model, int32 quantized biases): that would be a silently wrong answer. So by default every
input is checked: it must be float32 unless it is a plain (unquantized) int32/int64 index or
shape tensor."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError

_INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def require_float(node, *, inputs=None) -> None:
    idx = range(len(node.inputs)) if inputs is None else inputs
    for i in idx:
        t = node.inputs[i] if i < len(node.inputs) else None
        if t is None or t.dtype == np.float32:
            continue
        q = t.quantization
        quantized = q is not None and q.scale.size > 0
        if t.dtype in _INDEX_TYPES and not quantized and i != 0:
            continue
        kind = "quantized " if quantized else ""
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"{kind}{t.dtype} input {i} is not supported yet "
                                 "(float32 only)")
