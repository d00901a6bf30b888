"""STABLEHLO_ADD, STABLEHLO_MULTIPLY, STABLEHLO_MAXIMUM, STABLEHLO_MINIMUM, STABLEHLO_AND: two
inputs of one type and the very same shape (no broadcasting), output of that type. ADD/MULTIPLY/
MAXIMUM/MINIMUM take float16/32/64, int8/16/32/64, uint8/16/32/64 and bool; AND takes the
integer types (bitwise) and bool (logical). As in LiteRT: integer arithmetic wraps, bool ADD is
OR and MULTIPLY is AND, float16 is computed in float32 and rounded back, MAXIMUM/MINIMUM return
the first operand unless the second compares greater/smaller (so a NaN or a signed zero in the
first operand wins), and quantization parameters are ignored (stored values are combined as
they are). Types LiteRT's kernel refuses (bfloat16, complex, float AND) fail the invoke.

LiteRT checks the input types and shapes at prepare and the element type only at invoke;
an output declared with another type than the inputs (which LiteRT would fill with the wrong
bytes) is refused at prepare here.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import require_dense
from .registry import register

_NUMERIC = frozenset(np.dtype(d) for d in (
    np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
    np.uint16, np.uint32, np.uint64, np.bool_))
_BITWISE = frozenset(d for d in _NUMERIC if d.kind in "iub")


def check_same_operands(node) -> None:
    """LiteRT's checks of a StableHLO elementwise op: two inputs, one output, one type and one
    shape for both inputs (a ModelError otherwise); the output must have the inputs' type."""
    if len(node.inputs) != 2 or len(node.outputs) != 1:
        raise node.fail(f"expects 2 inputs and 1 output, got {len(node.inputs)} and "
                        f"{len(node.outputs)}")
    a, b = node.inputs
    if a is None or b is None or node.outputs[0] is None:
        raise node.fail("an input or the output is missing")
    require_dense(node, 0, 1)
    if a.dtype != b.dtype:
        raise node.fail(f"input types differ: {a.tensor.type_name} and {b.tensor.type_name}")
    if tuple(a.shape) != tuple(b.shape):
        raise node.fail(f"input shapes differ: {list(a.shape)} and {list(b.shape)} (this op "
                        "does not broadcast)")
    out = node.outputs[0]
    if out.dtype != a.dtype:
        raise node.fail(f"output {out.name!r} is declared {out.tensor.type_name} but the op "
                        f"computes {a.tensor.type_name} (its inputs' type)")


class StablehloBinary(Kernel):
    #: Element types LiteRT's kernel computes; others fail the invoke.
    dtypes: frozenset = _NUMERIC

    @staticmethod
    def fn(a, b):
        raise NotImplementedError

    def prepare(self):
        node = self.node
        check_same_operands(node)
        dt = node.inputs[0].dtype
        self.refusal = None
        if dt not in self.dtypes:
            self.refusal = f"{node.inputs[0].tensor.type_name} inputs; LiteRT's kernel " \
                           "fails the invoke too"
        return [tuple(node.inputs[0].shape)]

    def eval(self, inputs):
        if self.refusal is not None:
            raise UnsupportedOpError(self.node.op.name, self.node.path, self.refusal)
        a, b = inputs
        return [np.asarray(self.fn(a, b), dtype=a.dtype)]


@register(Op.STABLEHLO_ADD)
class StablehloAdd(StablehloBinary):
    @staticmethod
    def fn(a, b):
        return np.add(a, b)  # wraps for integers; bool: OR (C++ true + true -> true)


@register(Op.STABLEHLO_MULTIPLY)
class StablehloMultiply(StablehloBinary):
    @staticmethod
    def fn(a, b):
        return np.multiply(a, b)


@register(Op.STABLEHLO_MAXIMUM)
class StablehloMaximum(StablehloBinary):
    @staticmethod
    def fn(a, b):
        return np.where(a < b, b, a)  # std::max(a, b)


@register(Op.STABLEHLO_MINIMUM)
class StablehloMinimum(StablehloBinary):
    @staticmethod
    def fn(a, b):
        return np.where(b < a, b, a)  # std::min(a, b)


@register(Op.STABLEHLO_AND)
class StablehloAnd(StablehloBinary):
    dtypes = _BITWISE

    @staticmethod
    def fn(a, b):
        return np.bitwise_and(a, b)
