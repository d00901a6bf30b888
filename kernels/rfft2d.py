"""RFFT2D: the 2-D real-to-complex FFT of the innermost two dimensions of a float32 tensor
(rank >= 2) over ``fft_length`` (int32 ``[2]``, both powers of two as LiteRT requires): each
slice is cropped or zero-padded to ``fft_length`` and transformed; output complex64
``[..., fft_length[0], fft_length[1] // 2 + 1]`` (tf.signal.rfft2d's layout). Computed in
float64 and rounded to complex64 once, as LiteRT's double-precision FFT does. A run-time
``fft_length`` gives a run-time output shape."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from ._shape import ParamKernel, int_list, param_value
from .registry import register


@register(Op.RFFT2D)
class Rfft2d(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail("takes (input, fft_length)")
        check_types(node, (np.float32,))
        x, n = node.inputs
        if len(x.shape) < 2:
            raise node.fail(f"input must have rank >= 2, got {list(x.shape)}")
        if n.dtype != np.int32 or tuple(n.shape) != (2,):
            raise node.fail("fft_length must be an int32 tensor of 2 values")
        if node.outputs[0].dtype != np.complex64:
            raise node.fail(f"output must be complex64, got {node.outputs[0].tensor.type_name}")
        return super().prepare()

    def params(self, inputs):
        v = param_value(self.node, 1, inputs)
        if v is None:
            return None
        h, w = int_list(v)
        for d in (h, w):
            if d <= 0 or d & (d - 1):
                raise self.node.fail(f"fft_length {[h, w]} must be powers of two")
        return h, w

    def shapes(self, p):
        h, w = p
        return [tuple(self.node.inputs[0].shape[:-2]) + (h, w // 2 + 1)]

    def run(self, p, inputs):
        h, w = p
        y = np.fft.rfft2(inputs[0].astype(np.float64), s=(h, w), axes=(-2, -1))
        return [y.astype(np.complex64)]
