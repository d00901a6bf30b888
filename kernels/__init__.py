"""numpy reference kernels, one operator per file; see ``registry.py`` for the list."""

from ._common import Kernel, Node, TensorInfo

__all__ = ["Kernel", "Node", "TensorInfo"]
