"""Elementwise binary ops: numpy broadcasting of the two inputs (TFLite broadcasts up to rank 4-6
depending on the op; we accept any rank).

Quantized inputs (int8/uint8, and int16 carrying quantization parameters) take the op's
quantized path when it has one: the op class lists the element types in ``quantized`` and
returns, from ``prepare_quantized``, the integer function eval applies (see ``_qelementwise``).

Fused activations of ADD/SUB/MUL/DIV are a clamp, as in TFLite's ``CalculateActivationRange``:
RELU -> [0, max], RELU6 -> [0, 6], RELU_N1_TO_1 -> [-1, 1]; TANH and SIGN_BIT clamp nothing
(LiteRT ignores them on these ops). Float results are always clamped to the finite range, so
overflow and x/0 give +-FLT_MAX, not infinity (NaN stays NaN).
"""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import ActivationFunctionType as Act

from ._common import Kernel, broadcast_shape
from ._elementwise import FLOAT, INTS, as_compute, check_types, finish, same_types
from ._qelementwise import is_quantized


def activation_range(act: int, dtype) -> tuple | None:
    """(low, high) clamp of a fused activation for outputs of ``dtype``, or None."""
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return None
    info = np.finfo(dt) if dt.kind == "f" else np.iinfo(dt)
    lo, hi = (-info.max, info.max) if dt.kind == "f" else (info.min, info.max)
    if act == Act.RELU:
        lo = 0
    elif act == Act.RELU6:
        lo, hi = 0, 6
    elif act == Act.RELU_N1_TO_1:
        lo, hi = -1, 1
    elif dt.kind != "f":
        return None
    return lo, hi


class BinaryKernel(Kernel):
    """``y = fn(a, b)`` broadcast; subclasses set ``fn`` and the dtype lists."""

    dtypes: tuple = FLOAT + INTS
    raw: tuple = ()
    #: Apply the fused activation / finite clamp (ADD, SUB, MUL, DIV).
    clamps: bool = False
    #: Element types with a quantized path (int16 only when the tensors carry quantization).
    quantized: tuple = ()
    #: The output has the inputs' type (comparisons and logical ops give bool instead).
    same_type_out: bool = True

    @staticmethod
    def fn(a, b):
        raise NotImplementedError

    def check_values(self, a, b) -> None:
        """Run-time checks of input values (division by zero)."""

    def takes_quantized_path(self) -> bool:
        """int8/uint8 listed in ``quantized`` always are; int16 when its tensors are quantized
        (LiteRT decides on the output, or on the inputs for comparisons)."""
        a, out = self.node.inputs[0], self.node.outputs[0]
        if a.dtype is None or not any(a.dtype == d for d in self.quantized):
            return False
        return a.dtype != np.int16 or is_quantized(out if out.dtype == a.dtype else a)

    def prepare_quantized(self, a, b, out):
        """Integer function ``(x, y) -> output array`` of the quantized path."""
        raise NotImplementedError

    def prepare(self):
        node = self.node
        if len(node.inputs) != 2:
            raise node.fail(f"expects 2 inputs, got {len(node.inputs)}")
        same_types(node)
        a, b = node.inputs
        self.qfn = None
        if self.takes_quantized_path():
            self.qfn = self.prepare_quantized(a, b, node.outputs[0])
            return [broadcast_shape(a.shape, b.shape, node)]
        check_types(node, self.dtypes, self.raw, inputs=(0, 1))
        out = node.outputs[0]
        if self.same_type_out and out.dtype is not None and out.dtype != a.dtype:
            raise node.fail(f"output type {out.tensor.type_name} differs from the input type "
                            f"{a.tensor.type_name}")
        self.range = None
        if self.clamps:
            act = getattr(node.options, "fused_activation_function", 0) if node.options \
                else 0
            self.range = activation_range(act, node.outputs[0].dtype)
        return [broadcast_shape(a.shape, b.shape, node)]

    def eval(self, inputs):
        a, b = inputs
        if self.qfn is not None:
            return [self.qfn(a, b)]
        self.check_values(a, b)
        # (no errstate here: the interpreter runs every kernel under errstate(all="ignore"))
        y = np.asarray(self.fn(as_compute(a), as_compute(b)))
        if self.range is not None:
            # In place when fn made a fresh array: a second output-sized allocation costs more
            # than the clamp itself on large tensors.
            fresh = y.base is None and y.flags.writeable and y is not a and y is not b
            # (the method: np.clip's Python wrapper costs more than the clamp on small tensors)
            y = y.clip(*self.range, out=y) if fresh else y.clip(*self.range)
        return [finish(self.node, y)]


class ComparisonKernel(BinaryKernel):
    """Bool-valued comparison. int8/uint8 (and quantized int16 for EQUAL/NOT_EQUAL) compare the
    inputs rescaled to a common fixed-point scale, as TFLite does (see ``_qelementwise``);
    other int16 is compared as stored."""

    same_type_out = False

    dtypes = FLOAT + INTS + (np.float16,)
    raw = (np.int16,)
    quantized = (np.int8, np.uint8)

    def prepare_quantized(self, a, b, out):
        from ._qelementwise import prepare_comparison

        return prepare_comparison(self.node, a, b, self.fn)

    def eval(self, inputs):
        if self.qfn is not None:
            return [self.qfn(*inputs)]
        return [np.asarray(self.fn(inputs[0], inputs[1]), dtype=np.bool_)]
