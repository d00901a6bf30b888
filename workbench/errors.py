"""One error hierarchy for the whole workbench.

Every failure a user can cause (a malformed file, an op we cannot run, a wrong input) surfaces as
one of these, with a message naming the place at fault, e.g.
``subgraphs[0].operators[12] (CONV_2D) input 3``.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error raised on purpose by workbench."""


class ModelError(WorkbenchError, ValueError):
    """A malformed or inconsistent model (file or IR).

    Parameters
    ----------
    message
        What is wrong.
    path
        Where: a path into the model such as ``subgraphs[0].tensors[3].shape``.
    """

    def __init__(self, message: str, path: str = ""):
        path = str(path)
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class UnsupportedOpError(WorkbenchError, NotImplementedError):
    """An operator (builtin or custom) that has no kernel here."""

    def __init__(self, op_name: str, path: str = "", detail: str = ""):
        self.op_name = op_name
        self.path = path
        where = f" at {path}" if path else ""
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"operator {op_name!r}{where} is not supported{more}; register a kernel with "
            f"workbench.register_custom_op({op_name!r}, kernel)"
        )


class OpError(WorkbenchError, RuntimeError):
    """An operator failed while preparing or running in a way its own checks did not foresee
    (for example running out of memory on an absurd shape). The message names the operator;
    the original exception is chained as ``__cause__``.

    Parameters
    ----------
    message
        What went wrong.
    path
        The operator, e.g. ``subgraphs[0].operators[4] (CONV_2D)``.
    """

    def __init__(self, message: str, path: str = ""):
        self.path = str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)

    @classmethod
    def wrap(cls, exc: BaseException, path: str, stage: str) -> "OpError":
        what = "out of memory" if isinstance(exc, MemoryError) else type(exc).__name__
        return cls(f"{stage} failed: {what}: {exc}", path)


class InputError(WorkbenchError, ValueError):
    """A wrong input given by the user (shape, dtype, index, name)."""
