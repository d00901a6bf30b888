"""Guard for kernels that so far implement the float32 path only."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError


def require_float(node, *, inputs=(0,)) -> None:
    for i in inputs:
        t = node.inputs[i] if i < len(node.inputs) else None
        if t is not None and t.dtype != np.float32:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{t.dtype} inputs are not supported yet (float32 only)")
