"""COMPLEX_ABS: ``|z|`` (``hypot(re, im)``) of complex64 / complex128, as float32 / float64."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._complex import ComplexToRealKernel
from .registry import register


@register(Op.COMPLEX_ABS)
class ComplexAbs(ComplexToRealKernel):
    @staticmethod
    def fn(z):
        return np.hypot(z.real, z.imag)
