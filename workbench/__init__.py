"""workbench: a notebook-first workbench for on-device ML models (TensorFlow Lite format).

The core (``load``, the IR, the interpreter) imports without TensorFlow.
"""

from __future__ import annotations

# ``wb.quantize(...)`` calls the quantizer: the subpackage itself is callable (see its
# docstring), so ``workbench.quantize.<module>`` stays importable every way.
from . import quantize
from .errors import InputError, ModelError, OpError, UnsupportedOpError, WorkbenchError
from .interpreter import Interpreter
from .ir.graph import Model, Operator, QuantParams, Subgraph, Tensor
from .ir.ops import ActivationFunctionType, Op, Padding, TensorType

__version__ = "0.1.0"


def register_custom_op(name: str, kernel: type) -> None:
    """Supply the kernel of a custom op (by its ``custom_code`` name).

    ``kernel`` is a class like the built-in ones (see ``kernels/_common.py``): constructed with
    the node, ``prepare(self) -> list of output shapes`` once, ``eval(self, inputs) -> list of
    arrays`` per invoke::

        class TimesTwo(wb.kernels.Kernel):
            def prepare(self):
                return [self.node.inputs[0].shape]
            def eval(self, inputs):
                return [inputs[0] * 2]

        wb.register_custom_op("TimesTwo", TimesTwo)
    """
    from .kernels.registry import register_custom

    register_custom(name, kernel)


def load(source, *, verify: bool = True) -> Model:
    """Load a ``.tflite`` model from a path or bytes.

    The whole file is verified first (FlatBuffer bounds, indices, sizes, quantization, graph
    consistency); any fault raises :class:`ModelError` naming where it is. Constant buffers are
    zero-copy numpy views of the memory-mapped file.
    """
    from .schema.reader import read_model

    return read_model(source, verify=verify)


_LAZY = {"profile": "workbench.analysis.profile", "memory_report": "workbench.analysis.memory",
         "diff": "workbench.analysis.diff", "report": "workbench.analysis.report",
         "estimate": "workbench.delegates.estimate",
         "auto_mixed_precision": "workbench.quantize.mixed",
         "compare": "workbench.analysis.compare"}


def __getattr__(name: str):
    """``wb.profile`` / ``wb.memory_report`` / ``wb.diff`` / ``wb.report``, imported on first
    use (pandas)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "load", "Interpreter", "register_custom_op", "quantize", "auto_mixed_precision",
    "profile", "memory_report", "diff", "report", "estimate", "compare",
    "Model", "Subgraph", "Tensor", "Operator", "QuantParams", "Op", "TensorType", "Padding",
    "ActivationFunctionType", "WorkbenchError", "ModelError", "UnsupportedOpError", "InputError",
    "OpError",
    "__version__",
]
