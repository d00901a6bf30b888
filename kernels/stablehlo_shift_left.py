"""STABLEHLO_SHIFT_LEFT of int8/int16/int32 tensors: ``lhs << rhs`` elementwise, both inputs of
one type and shape, the result wrapping to the type. A shift in ``[0, 31]`` shifts the value
(promoted to 32 bits, so int8/int16 shifted by their width or more give 0). Other shift amounts
are undefined in C++; LiteRT 2.3.0 (x86-64) gives, and we reproduce bit for bit: for the
elements its vectorized loop handles (the first ``n - n % 8`` of ``n``, when ``n`` is at least
8, 16 or 12 for int8, int16, int32) the value times ``2**rhs`` computed through float32 bits
(0 for a negative shift, ``value * INT32_MIN`` for 31 or more), for the rest ``rhs & 31``.
Other types fail the invoke, as in LiteRT.

LiteRT does not check the second input's shape (it reads as many elements as the first has);
differing shapes are refused at prepare here, and an output declared with another type than
the inputs (LiteRT retypes it) too.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register
from .stablehlo_elementwise import check_same_operands

#: Smallest element count for which LiteRT's loop runs vectorized, per type (measured).
_VECTOR_FROM = {np.dtype(np.int8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 12}
_VECTOR_STEP = 8


def _power_of_two(s: np.ndarray) -> np.ndarray:
    """``2**s`` as SSE computes it for a variable shift: the float32 with bits
    ``(s << 23) + 0x3f800000`` (32-bit wrapping) converted by truncation (``cvttps2dq``: values
    out of int32 range, infinities and NaN give INT32_MIN), as uint32 bits."""
    bits = (s.astype(np.uint32) << np.uint32(23)) + np.uint32(0x3F800000)
    f = bits.view(np.float32).astype(np.float64)
    fits = np.isfinite(f) & (f >= -2.0**31) & (f < 2.0**31)
    p = np.where(fits, np.trunc(np.where(fits, f, 0.0)), -2.0**31)
    return p.astype(np.int64).astype(np.uint32)


def shift_left(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """LiteRT's ``output[i] = x[i] << s[i]`` (flat order), of x's type."""
    dt = x.dtype
    xf = x.reshape(-1).astype(np.int32).view(np.uint32)  # promoted to int, as 32 bits
    sf = s.reshape(-1).astype(np.int32)
    out = xf << (sf & 31).astype(np.uint32)  # scalar code: x86 masks the count
    n = xf.size
    k = n - n % _VECTOR_STEP if n >= _VECTOR_FROM[dt] else 0
    if k:
        out[:k] = xf[:k] * _power_of_two(sf[:k])  # wraps modulo 2**32
    return out.view(np.int32).astype(dt).reshape(x.shape)  # truncation, as C's conversion


@register(Op.STABLEHLO_SHIFT_LEFT)
class StablehloShiftLeft(Kernel):
    def prepare(self):
        node = self.node
        check_same_operands(node)
        x = node.inputs[0]
        self.refusal = None
        if x.dtype not in _VECTOR_FROM:
            self.refusal = f"{x.tensor.type_name} inputs: int8, int16 and int32 only; " \
                           "LiteRT's kernel fails the invoke too"
        return [tuple(x.shape)]

    def eval(self, inputs):
        if self.refusal is not None:
            raise UnsupportedOpError(self.node.op.name, self.node.path, self.refusal)
        return [shift_left(np.asarray(inputs[0]), np.asarray(inputs[1]))]
