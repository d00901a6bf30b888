"""What every delegate's op-support rules share: the verdict record and a view of one op.

Words matter here: a rejection's ``reason`` uses the sentences users already know from TFLite's
delegate logs (e.g. "OP is supported, but tensor type/shape isn't compatible.", "Max version
supported: 2. Requested version 3.", "Android sdk version less than 29"), so a notebook answer
can be searched for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.ir.graph import Model, Operator, Subgraph, Tensor
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import Op, TensorType

T = TensorType

# TFLite's refusal of a static-shape delegate (Subgraph::ModifyGraphWithDelegate).
DYNAMIC = ("Attempting to use a delegate that only supports static-sized tensors with a graph "
           "that has dynamic-sized tensors (tensor#{t} is a dynamic-sized tensor).")

ACT_NAMES = {int(a): a.name for a in Act}


@dataclass(frozen=True)
class Verdict:
    """Whether a delegate claims one op, and if not, why (TFLite's words)."""

    supported: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.supported


OK = Verdict(True, None)


def no(reason: str) -> Verdict:
    # Some TFLite messages end in a space or newline; they are compared and grouped stripped.
    return Verdict(False, reason.strip())


# Ops whose output shape depends on the *values* of a runtime input: TFLite makes their output
# a dynamic tensor (kTfLiteDynamic), which static-shape delegates cannot take.
_VALUE_SHAPED = {
    Op.RESHAPE: (1,), Op.TILE: (1,), Op.PAD: (1,), Op.PADV2: (1,), Op.MIRROR_PAD: (1,),
    Op.SLICE: (1, 2), Op.STRIDED_SLICE: (1, 2, 3), Op.BROADCAST_TO: (1,), Op.FILL: (0,),
    Op.RESIZE_BILINEAR: (1,), Op.RESIZE_NEAREST_NEIGHBOR: (1,), Op.RANGE: (0, 1, 2),
    Op.EXPAND_DIMS: (1,), Op.SPLIT_V: (1, 2), Op.TRANSPOSE: (1,),
    Op.SUM: (1,), Op.MEAN: (1,), Op.REDUCE_MAX: (1,), Op.REDUCE_MIN: (1,),
    Op.REDUCE_PROD: (1,), Op.REDUCE_ANY: (1,), Op.ONE_HOT: (1,), Op.SPLIT: (0,),
    Op.TRANSPOSE_CONV: (0,),
}
_ALWAYS_DYNAMIC = {Op.WHERE, Op.UNIQUE, Op.NON_MAX_SUPPRESSION_V4, Op.NON_MAX_SUPPRESSION_V5}


# Small integer shape arithmetic TFLite evaluates at prepare time when its inputs are known
# there (constants, or SHAPE of a tensor), marking the result persistent instead of dynamic.
_SHAPE_ARITH = {Op.SHAPE, Op.STRIDED_SLICE, Op.PACK, Op.CONCATENATION, Op.GATHER, Op.CAST,
                Op.RESHAPE, Op.SQUEEZE, Op.EXPAND_DIMS, Op.ADD, Op.SUB, Op.MUL, Op.SLICE,
                Op.FLOOR_DIV, Op.MAXIMUM, Op.MINIMUM, Op.REDUCE_PROD, Op.FILL, Op.RANGE}


def dynamic_tensors(sg: Subgraph) -> set[int]:
    """ids (``id(tensor)``) of tensors TFLite allocates as dynamic: outputs of ops whose output
    shape depends on values only known at run time (a RESHAPE to a computed shape, WHERE, ...).
    Shape tensors computed from constants and SHAPE ops count as known, as TFLite folds them
    while preparing."""
    known: set[int] = set()
    dyn: set[int] = set()
    for op in sg.operators:
        ins = [t for t in op.inputs if t is not None]

        def is_known(t: Tensor) -> bool:
            return t.is_constant or id(t) in known

        if op.code == Op.SHAPE or (op.code in _SHAPE_ARITH and ins and
                                   all(is_known(t) for t in ins) and
                                   all(int(t.dtype) in (T.INT32, T.INT64)
                                       for t in op.outputs if t is not None)):
            known.update(id(t) for t in op.outputs if t is not None)
            continue
        data_dep = op.code in _ALWAYS_DYNAMIC
        for k in _VALUE_SHAPED.get(op.code, ()):
            t = op.inputs[k] if k < len(op.inputs) else None
            if t is None or is_known(t):
                continue
            data_dep = True  # RESHAPE too: a runtime shape input wins over new_shape
        # String tensors are always sized at run time.
        data_dep = data_dep or any(t is not None and int(t.dtype) == T.STRING
                                   for t in op.outputs)
        if data_dep:
            dyn.update(id(t) for t in op.outputs if t is not None)
    return dyn


class OpView:
    """One operator of a model, with the questions delegate rules ask about it."""

    def __init__(self, model: Model, sg: Subgraph, index: int, op: Operator,
                 producers: dict[int, Operator], consumers: dict[int, list[Operator]],
                 dynamic: set[int], folded: set[int] | None = None):
        self.model = model
        self.sg = sg
        self.index = index
        self.op = op
        self.code = op.code
        self.version = op.version
        self.options = op.options
        self._producers = producers
        self._consumers = consumers
        self._dynamic = dynamic
        # Outputs of DEQUANTIZE(constant) that the delegate folds into constants.
        self._folded = folded or set()

    # -- tensors -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.op.name

    def input(self, i: int) -> Tensor | None:
        return self.op.inputs[i] if i < len(self.op.inputs) else None

    def output(self, i: int = 0) -> Tensor | None:
        return self.op.outputs[i] if i < len(self.op.outputs) else None

    @property
    def inputs(self) -> list[Tensor]:
        return [t for t in self.op.inputs if t is not None]

    @property
    def outputs(self) -> list[Tensor]:
        return [t for t in self.op.outputs if t is not None]

    def role(self, t: Tensor) -> str:
        """``"input 1"`` / ``"output 0"``: where ``t`` sits on this op (for reasons)."""
        for i, u in enumerate(self.op.inputs):
            if u is t:
                return f"input {i}"
        for i, u in enumerate(self.op.outputs):
            if u is t:
                return f"output {i}"
        return "a"

    def is_const(self, t: Tensor | None) -> bool:
        """Constant weights (including constants behind a DEQUANTIZE the delegate folds)."""
        return t is not None and (t.is_constant or id(t) in self._folded)

    def is_folded_const(self, t: Tensor | None) -> bool:
        """Output of a DEQUANTIZE(constant) the delegate folds (float16/int8 weights)."""
        return t is not None and id(t) in self._folded

    def const_value(self, t: Tensor | None) -> np.ndarray | None:
        if t is None or not t.is_constant:
            return None
        return t.data

    @property
    def runtime_inputs(self) -> list[Tensor]:
        return [t for t in self.inputs if not self.is_const(t)]

    def is_dynamic(self, t: Tensor | None) -> bool:
        return t is not None and id(t) in self._dynamic

    def producer(self, t: Tensor) -> Operator | None:
        return self._producers.get(id(t))

    def consumers(self, t: Tensor) -> list[Operator]:
        return self._consumers.get(id(t), [])

    def tensor_index(self, t: Tensor) -> int:
        return self.sg.tensor_index(t)

    # -- options -----------------------------------------------------------------------------
    def opt(self, name: str, default: Any = None) -> Any:
        return getattr(self.options, name, default) if self.options is not None else default

    @property
    def activation(self) -> int:
        return int(self.opt("fused_activation_function", 0) or 0)


def dtype(t: Tensor | None) -> int | None:
    return None if t is None else int(t.dtype)


def rank(t: Tensor | None) -> int:
    return 0 if t is None else len(t.shape)


def is_quantized(t: Tensor | None) -> bool:
    q = None if t is None else t.quantization
    return q is not None and q.scale is not None and len(q.scale) > 0


def per_channel(t: Tensor | None) -> bool:
    return is_quantized(t) and len(t.quantization.scale) > 1


def scale(t: Tensor) -> float:
    return float(t.quantization.scale[0])


def zero_point(t: Tensor) -> int:
    zp = t.quantization.zero_point
    return int(zp[0]) if zp is not None and len(zp) else 0


def type_name(t: Tensor | None) -> str:
    return "none" if t is None else t.type_name


def build_views(model: Model, subgraph: int, fold_dequant: str = "") -> list[OpView]:
    """An :class:`OpView` per operator of ``model.subgraphs[subgraph]``.

    ``fold_dequant``: which DEQUANTIZE(constant) outputs the delegate treats as constants:
    ``""`` none, ``"fp16"`` float16 only (GPU), ``"fp16+int8"`` (XNNPACK)."""
    sg = model.subgraphs[subgraph]
    producers = sg.producers()
    consumers = sg.consumers()
    dyn = dynamic_tensors(sg)
    folded = set()
    kinds = {"": (), "fp16": (T.FLOAT16,), "fp16+int8": (T.FLOAT16, T.INT8)}[fold_dequant]
    for op in sg.operators:
        if op.code == Op.DEQUANTIZE and op.inputs and op.inputs[0] is not None and \
                int(op.inputs[0].dtype) in kinds and op.inputs[0].is_constant and \
                op.inputs[0].sparsity is None:
            folded.update(id(t) for t in op.outputs if t is not None)
    return [OpView(model, sg, i, op, producers, consumers, dyn, folded)
            for i, op in enumerate(sg.operators)]
