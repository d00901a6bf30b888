"""RANDOM_STANDARD_NORMAL: float32 standard normal values of the shape given by an int32
vector (a constant or a run-time value): LiteRT's Philox words (bit-exact, ``_random``) through
TensorFlow's Box-Muller transform in float32 (numpy's float32 sin/cos/log may differ from the
C library's in the last bit); each invoke continues the sequence."""

from __future__ import annotations

from workbench.ir.ops import Op

from . import _random
from .registry import register


@register(Op.RANDOM_STANDARD_NORMAL)
class RandomStandardNormal(_random.RandomShapeKernel):
    draw = staticmethod(_random.standard_normal)
