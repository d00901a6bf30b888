"""CAST between numeric types, bool and complex64, as LiteRT's kernel converts:

* float -> integer saturates: truncation toward zero, clamped to the target's range, NaN to
  the maximum (LiteRT >= 2.x semantics, e.g. 300.5 -> int8 127, -1 -> uint8 0);
* integer -> integer wraps (two's complement), anything -> bool is ``!= 0``;
* complex64 -> real types takes the real part.
Quantization parameters are ignored (stored values are converted). Sub-byte types
(INT4/UINT4/INT2) and strings are not supported yet.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register


def saturating_float_to_int(x: np.ndarray, to: np.dtype) -> np.ndarray:
    info = np.iinfo(to)
    x = x.astype(np.float64)
    # float(info.max) + 1 is a power of two, exact in float64 (unlike info.max for int64)
    below_max = x < float(info.max) + 1.0  # False for NaN
    above_min = x >= float(info.min)
    ok = below_max & above_min
    y = np.trunc(np.where(ok, x, 0.0)).astype(to)
    y[~below_max] = info.max
    y[below_max & ~above_min] = info.min
    return y


def cast_array(x: np.ndarray, to: np.dtype) -> np.ndarray:
    to = np.dtype(to)
    if x.dtype.kind == "c" and to.kind != "c":
        x = x.real
    if to.kind in "iu" and (x.dtype.kind == "f" or x.dtype.name == "bfloat16"):
        return saturating_float_to_int(x, to)
    if to == np.bool_:
        return x != 0
    if x.dtype.name == "bfloat16" or to.name == "bfloat16":
        x = x.astype(np.float32)  # bfloat16 converts through float32
    return x.astype(to)


@register(Op.CAST)
class Cast(Kernel):
    def prepare(self):
        node = self.node
        src, dst = node.inputs[0], node.outputs[0]
        for t, what in ((src, "input"), (dst, "output")):
            if t.dtype is None:
                raise UnsupportedOpError(node.op.name, node.path,
                                         f"{t.tensor.type_name} {what} is not supported yet")
        self.to = dst.dtype
        return [src.shape]

    def eval(self, inputs):
        with np.errstate(all="ignore"):
            return [np.asarray(cast_array(inputs[0], self.to))]
