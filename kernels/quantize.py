"""QUANTIZE: float32 to int8/uint8/int16 (``round(x / scale) + zero_point``, clamped; per-tensor,
or per-channel along the output's quantized dimension), and requantization between integer
types (int8/uint8 to int8/uint8, int16 to int8/int16) with a fixed-point multiplier, all
bit-exact with LiteRT.

LiteRT's optimized float-to-integer path (measured, x86) runs in blocks of 8 values: each
block multiplies by the float32 reciprocal of the scale and rounds half to even; the last
``size % 8`` values divide by the scale in double and round half away from zero. Both turn NaN
and values beyond int32 into INT32_MIN (x86's conversion), which then clamps to the minimum.
8-bit requantization likewise runs blocks of 16 (ties of the final shift rounded upward) and a
scalar tail (ties away from zero); int16 input is scalar throughout.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from . import _qconv as q
from ._common import Kernel
from .registry import register

_REQUANT = {
    np.dtype(np.int8): (np.int8, np.uint8),
    np.dtype(np.uint8): (np.int8, np.uint8),
    np.dtype(np.int16): (np.int8, np.int16),
}


def round_half_away(t: np.ndarray) -> np.ndarray:
    """``std::round`` on a float64 array, exactly (no ``t + 0.5`` rounding error)."""
    a = np.abs(t)
    r = np.floor(a)
    r += (a - r) >= 0.5
    return np.copysign(r, t)


def to_int32(t: np.ndarray) -> np.ndarray:
    """``static_cast<int32_t>`` of integral doubles as x86 does it: NaN and values outside the
    int32 range become INT32_MIN (the 'integer indefinite' value of cvttsd2si)."""
    bad = ~(np.abs(t) < 2.0**31)  # also NaN
    out = np.where(bad, 0.0, t).astype(np.int64)
    out[bad] = -(2**31)
    return out


@register(Op.QUANTIZE)
class Quantize(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        if out.dtype not in q.INT_DTYPES:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"output type {out.dtype or out.tensor.dtype} is not "
                                     "supported")
        so, zo = q.qparams(node, out, "output")
        info = np.iinfo(out.dtype)
        self.lo, self.hi = int(info.min), int(info.max)
        if out.dtype == np.int16 and np.any(zo != 0):
            raise node.fail("int16 output must have zero point 0")
        if x.dtype == np.float32:
            if so.size > 1:
                axis = out.quantization.quantized_dimension
                if len(x.shape) == 0 or so.size != x.shape[axis]:
                    raise node.fail(f"{so.size} scales do not match dimension {axis} of "
                                    f"{list(x.shape)}")
                shape = [1] * len(x.shape)
                shape[axis] = so.size
                # Per-channel: the reference kernel divides in float32.
                self.scale = so.reshape(shape)
                self.zp = zo.reshape(shape)
                self.eval = self._eval_per_channel
            else:
                self.scale = np.float64(so[0])
                self.inv = np.float32(1) / so[0]
                self.zp = int(zo[0])
                self.eval = self._eval_float
            return [x.shape]
        if x.dtype not in _REQUANT or out.dtype not in _REQUANT[x.dtype]:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.dtype or x.tensor.dtype} to {out.dtype} is not "
                                     "supported")
        if so.size != 1:
            raise node.fail("requantization needs a per-tensor output scale")
        sx, zx = q.scalar_qparams(node, x, "input")
        if x.dtype == np.int16 and zx:
            raise node.fail("int16 input must have zero point 0")
        self.zx = zx
        mult = np.float64(sx) / np.float64(so[0])
        # Measured: 8-bit requantization runs in blocks of 16 values that round the final
        # shift's ties upward, and the last size % 16 values round them away from zero (the
        # scalar MultiplyByQuantizedMultiplier); int16 input is scalar throughout.
        self.block = 0 if x.dtype == np.int16 else 16
        self.requant = q.Requantizer([mult], q.UPWARD, int(zo[0]), self.lo, self.hi,
                                     out.dtype)
        self.requant_tail = q.Requantizer([mult], q.GEMMLOWP, int(zo[0]), self.lo, self.hi,
                                          out.dtype)
        self.eval = self._eval_requantize
        return [x.shape]

    def _finish(self, t: np.ndarray, zp) -> np.ndarray:
        """Integral doubles ``t`` -> int32 (x86 semantics) + zero point (wrapping), clamped."""
        v = to_int32(t)
        v += zp
        v = (v + 2**31) % 2**32 - 2**31  # int32 addition wraps
        np.clip(v, self.lo, self.hi, out=v)
        return v.astype(self.node.outputs[0].dtype)

    def _eval_float(self, inputs):
        x = inputs[0].reshape(-1)
        head = x.size - x.size % 8
        t = np.empty(x.size, np.float64)
        t[:head] = np.round(x[:head] * self.inv)  # float32 product, ties to even (exact)
        t[head:] = round_half_away(x[head:].astype(np.float64) / self.scale)
        return [self._finish(t, self.zp).reshape(inputs[0].shape)]

    def _eval_per_channel(self, inputs):
        t = (inputs[0] / self.scale).astype(np.float64)  # float32 division
        return [self._finish(round_half_away(t), self.zp)]

    def _eval_requantize(self, inputs):
        acc = inputs[0].astype(np.int64).reshape(-1)
        acc -= self.zx
        head = acc.size - acc.size % self.block if self.block else 0
        out = np.empty(acc.size, self.node.outputs[0].dtype)
        out[:head] = self.requant(acc[:head])
        out[head:] = self.requant_tail(acc[head:])
        return [out.reshape(inputs[0].shape)]
