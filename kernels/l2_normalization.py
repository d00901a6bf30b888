"""L2_NORMALIZATION over the last axis. As in TFLite the input has rank <= 4 and no fused
activation is allowed.

* float32: ``x / max(sqrt(sum(x^2)), 1e-6)``.
* int8 / uint8 (LiteRT's integer kernels): the output scale must be 1/128 with zero point 0
  (int8) or 128 (uint8). Per row, ``acc = sum (x - zx)^2`` in int32, and its inverse square
  root as a fixed-point multiplier and shift (TFLite's GetInvSqrtQuantizedMultiplierExp,
  ``_qelementwise.inv_sqrt_multiplier``). int8: each ``x - zx`` goes through
  MultiplyByQuantizedMultiplier with that shift plus 7, clamped to int8. uint8:
  MultiplyByQuantizedMultiplierSmallerThanOneExp of ``128 * (x - zx)``, plus 128, clamped to
  [0, 255]."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import ActivationFunctionType, Op
from workbench.quantize import fixed_point as fp

from ._common import Kernel
from ._float_only import require_float
from ._qelementwise import _scale_smaller_than_one_exp, inv_sqrt_multiplier_array, qparams, wrap
from .registry import register

EPSILON = np.float32(1e-6)
_ZERO_POINT = {np.dtype(np.int8): 0, np.dtype(np.uint8): 128}


@register(Op.L2_NORMALIZATION)
class L2Normalization(Kernel):
    def prepare(self):
        node = self.node
        x, out = node.inputs[0], node.outputs[0]
        self.quantized = x.dtype in _ZERO_POINT
        if self.quantized:
            if out.dtype != x.dtype:
                raise node.fail(f"output type {out.tensor.type_name} differs from the input "
                                f"type {x.tensor.type_name}")
            (_, self.zx), (so, zo) = qparams(x), qparams(out)
            if abs(float(so) - 1 / 128) > 1e-12 or zo != _ZERO_POINT[x.dtype]:
                raise node.fail(f"quantized output must have scale 1/128 and zero point "
                                f"{_ZERO_POINT[x.dtype]}, got {float(so)} and {zo}")
        elif x.dtype == np.int16:
            raise UnsupportedOpError(node.op.name, node.path,
                                     "int16 L2_NORMALIZATION (LiteRT has int8 and uint8)")
        else:
            require_float(node)
        if not 1 <= len(x.shape) <= 4:
            raise node.fail(f"input {list(x.shape)} must have rank 1-4")
        act = node.options.fused_activation_function
        if act != ActivationFunctionType.NONE:
            raise node.fail(f"fused activation {ActivationFunctionType(act).name} is not "
                            "supported by L2_NORMALIZATION")
        return [x.shape]

    def eval(self, inputs):
        x = inputs[0]
        if self.quantized:
            return [self._quantized(x)]
        norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True, dtype=np.float32))
        return [(x / np.maximum(norm, EPSILON)).astype(np.float32, copy=False)]

    def _quantized(self, x: np.ndarray) -> np.ndarray:
        d = x.astype(np.int64) - self.zx
        rows = d.reshape(-1, x.shape[-1]) if x.size else d.reshape(0, max(x.shape[-1], 1))
        acc = wrap((rows * rows).sum(axis=-1), 32)  # the C++ int32 accumulator
        mult, shift = inv_sqrt_multiplier_array(acc[:, None])  # one Newton solve per sum
        if x.dtype == np.int8:
            y = np.clip(fp.multiply_by_quantized_multiplier(rows, mult, shift + 7), -128, 127)
        else:
            y = np.clip(_scale_smaller_than_one_exp(128 * rows, mult, shift) + 128, 0, 255)
        return y.astype(x.dtype).reshape(x.shape)
