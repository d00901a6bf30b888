"""REAL: the real part of complex64 / complex128, as float32 / float64."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._complex import ComplexToRealKernel
from .registry import register


@register(Op.REAL)
class Real(ComplexToRealKernel):
    @staticmethod
    def fn(z):
        return z.real
