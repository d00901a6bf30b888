"""DIV: float32 and int32. int32 division truncates toward zero (C++ semantics) and a zero
divisor fails the invoke, as in LiteRT; float x/0 is clamped to +-FLT_MAX (NaN for 0/0).
Quantized int8/uint8/int16: TFLite's fixed-point reciprocal and rescaling (see
``_qelementwise.prepare_div``); a divisor at its zero point fails the invoke."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._binary import BinaryKernel
from ._elementwise import runtime_error
from ._qelementwise import prepare_div
from .registry import register


def truncating_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer a / b rounded toward zero (b != 0)."""
    q = np.floor_divide(a, b)
    # floor and truncation differ when the remainder is non-zero and the signs differ
    return q + ((a - q * b != 0) & ((a < 0) != (b < 0)))


@register(Op.DIV)
class Div(BinaryKernel):
    dtypes = (np.float32, np.int32)
    quantized = (np.int8, np.uint8, np.int16)
    clamps = True

    def prepare_quantized(self, a, b, out):
        return prepare_div(self.node, a, b, out)

    def check_values(self, a, b):
        if b.dtype.kind in "iu" and not np.all(b):
            raise runtime_error(self.node, "integer division by zero")

    @staticmethod
    def fn(a, b):
        if a.dtype.kind in "iu":
            return truncating_divide(a, b).astype(a.dtype)
        return np.divide(a, b)
