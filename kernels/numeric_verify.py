"""NumericVerify (custom op LiteRT runs by default; TF's quantization debugger inserts it after a
quantized tensor, with the float tensor it replaces as reference): input uint8/int8/int16
(quantized, per tensor or, for 8-bit, per channel) or float16, reference float32 with at least
as many elements; output float32 of the input's shape, ``dequantize(input) - reference`` (flat
order), dequantized as LiteRT's optimized DEQUANTIZE (per tensor: ``q * scale - zero_point *
scale`` in float32 on blocks of 8, ``(q - zero_point) * scale`` on the last ``size % 8``;
per channel ``(q - zero_point[c]) * scale[c]``). With ``log_if_failed`` and ``tolerance >= 0.1``
the invoke fails at the first element whose ``|difference|`` exceeds ``tolerance * scale``
(float32; the scale is 0 for per-channel and float16 inputs, so any difference fails); else
LiteRT only logs statistics. A constant input is verified at the first invoke only: later
invokes keep that output, as LiteRT's persistent output. Per-channel int16/float16 inputs fail
the invoke (LiteRT has no kernel for them). Options from the FlexBuffer map (``tolerance``
``AsFloat``, ``log_if_failed`` ``AsBool``, missing keys 0). An output stored with another type
(TF's quantization debugger writes the input's) becomes float32, as LiteRT retypes it."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import TensorType

from ._common import Kernel
from ._elementwise import runtime_error
from ._flex import custom_map, flex_bool, flex_float32
from .dequantize import dequantize_per_tensor, legacy_params
from .registry import register_litert_custom

F32 = np.float32
_TYPES = (np.uint8, np.int8, np.int16, np.float16)


@register_litert_custom("NumericVerify")
class NumericVerify(Kernel):
    def prepare(self):
        node = self.node
        opts = custom_map(node)
        self.tolerance = flex_float32(node, opts, "tolerance")
        self.log_if_failed = flex_bool(node, opts, "log_if_failed")
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail(f"takes 2 inputs (quantized, reference), got {len(node.inputs)}")
        if len(node.outputs) != 1 or node.outputs[0] is None:
            raise node.fail(f"has 1 output, got {len(node.outputs)}")
        x, ref = node.inputs
        if x.dtype is None or not any(x.dtype == d for d in _TYPES):
            raise node.fail(f"input must be uint8, int8, int16 or float16, got "
                            f"{x.tensor.type_name}")
        if ref.dtype != np.float32:
            raise node.fail(f"reference must be float32, got {ref.tensor.type_name}")
        out = node.outputs[0]
        if out.dtype != np.float32:
            # TF's quantization debugger writes the output with the input's type; LiteRT's
            # Prepare retypes the tensor to float32, and so does this (in the loaded model).
            out.tensor.dtype = TensorType.FLOAT32
            out.dtype = np.dtype(np.float32)
        n = int(np.prod(x.shape, dtype=np.int64))
        if int(np.prod(ref.shape, dtype=np.int64)) < n:
            raise node.fail(f"reference {list(ref.shape)} has fewer elements than the input "
                            f"{list(x.shape)} (LiteRT reads past its end)")
        self.scale, self.zero_point = legacy_params(x)
        self.max_diff = F32(self.tolerance * self.scale)
        q = x.quantization
        self.per_channel = None
        if q is not None and q.scale.size > 1:
            axis = q.quantized_dimension
            if not 0 <= axis < len(x.shape) or q.scale.size != x.shape[axis]:
                raise node.fail(f"{q.scale.size} scales do not match dimension {axis} of the "
                                f"input {list(x.shape)}")
            zp = q.zero_point
            if zp.size == 0:
                raise node.fail("per-channel input has no zero points")
            if zp.size != q.scale.size:
                zp = np.repeat(zp[:1], q.scale.size)
            shape = [1] * len(x.shape)
            shape[axis] = q.scale.size
            self.per_channel = (q.scale.astype(F32).reshape(shape),
                                zp.astype(np.int32).reshape(shape))
        self.verified = None  # the output of a constant input's first invoke
        return [tuple(x.shape)]

    def _dequantize(self, x: np.ndarray) -> np.ndarray:
        if self.per_channel is not None:
            if x.dtype not in (np.uint8, np.int8):
                raise self.node.fail(f"per-channel {x.dtype} input has no dequantization in "
                                     "LiteRT (it fails the invoke)")
            s, zp = self.per_channel
            return (x.astype(np.int32) - zp).astype(F32) * s
        if x.dtype == np.float16:
            return x.astype(F32)
        return dequantize_per_tensor(x, self.scale, self.zero_point)

    def eval(self, inputs):
        node = self.node
        constant = node.inputs[0].data is not None
        if constant and self.verified is not None:
            return [self.verified]
        x, ref = inputs
        diff = self._dequantize(x) - ref.reshape(-1)[:x.size].reshape(x.shape)
        if constant:
            self.verified = diff  # LiteRT marks it done before verifying
        if self.log_if_failed and self.tolerance >= 0.1:
            bad = np.flatnonzero(np.abs(diff) > self.max_diff)
            if bad.size:
                i = int(bad[0])
                raise runtime_error(
                    node, f"mismatch at element {i}: reference "
                    f"{float(ref.reshape(-1)[i]):g} is quantized to {x.reshape(-1)[i]} with "
                    f"(scale {float(self.scale):g}, zero point {self.zero_point}): |difference| "
                    f"{abs(float(diff.reshape(-1)[i])):g} > {float(self.max_diff):g} "
                    f"(tolerance {float(self.tolerance):g})")
        return [diff]
