"""Quantization: fixed-point arithmetic shared by the integer kernels (``fixed_point``),
calibration (``calibrate``), the post-training quantizer (``quantizer``, ``rules``) and
automatic mixed precision (``mixed``).

The package is also callable: ``wb.quantize(model, mode, representative_dataset, ...)`` is
:func:`workbench.quantize.quantizer.quantize`. A module cannot normally be called, and a
function bound to the name ``workbench.quantize`` would hide the package (``import
workbench.quantize.fixed_point as fp`` would fail), so the package's module type gets a
``__call__`` instead.
"""

from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .quantizer import quantize

        return quantize(*args, **kwargs)

    @property
    def __signature__(self):
        import inspect

        from .quantizer import quantize

        return inspect.signature(quantize)


sys.modules[__name__].__class__ = _CallablePackage
