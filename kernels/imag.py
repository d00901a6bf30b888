"""IMAG: the imaginary part of complex64 / complex128, as float32 / float64."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._complex import ComplexToRealKernel
from .registry import register


@register(Op.IMAG)
class Imag(ComplexToRealKernel):
    @staticmethod
    def fn(z):
        return z.imag
