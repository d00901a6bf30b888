"""RANDOM_UNIFORM: float32 values uniform in [0, 1) of the shape given by an int32 vector (a
constant or a run-time value), drawn exactly as LiteRT draws them from the Philox generator its
``RandomOptions`` seed (``_random``); each invoke continues the sequence."""

from __future__ import annotations

from workbench.ir.ops import Op

from . import _random
from .registry import register


@register(Op.RANDOM_UNIFORM)
class RandomUniform(_random.RandomShapeKernel):
    draw = staticmethod(_random.uniform)
