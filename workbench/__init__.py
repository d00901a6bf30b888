"""workbench: a notebook-first workbench for on-device ML models (TensorFlow Lite format).

The core (``load``, the IR, the interpreter) imports without TensorFlow.
"""

from __future__ import annotations

from .errors import InputError, ModelError, UnsupportedOpError, WorkbenchError
from .ir.graph import Model, Operator, QuantParams, Subgraph, Tensor
from .ir.ops import ActivationFunctionType, Op, Padding, TensorType

__version__ = "0.1.0"


def load(source, *, verify: bool = True) -> Model:
    """Load a ``.tflite`` model from a path or bytes.

    The whole file is verified first (FlatBuffer bounds, indices, sizes, quantization, graph
    consistency); any fault raises :class:`ModelError` naming where it is. Constant buffers are
    zero-copy numpy views of the memory-mapped file.
    """
    from .schema.reader import read_model

    return read_model(source, verify=verify)


__all__ = [
    "load", "Model", "Subgraph", "Tensor", "Operator", "QuantParams", "Op", "TensorType",
    "Padding", "ActivationFunctionType", "WorkbenchError", "ModelError", "UnsupportedOpError",
    "InputError", "__version__",
]
