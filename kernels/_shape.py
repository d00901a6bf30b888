"""Shared helpers of the shape and data-movement kernels.

These ops only move elements, so they run on every dtype the interpreter can hold (float,
integer, bool, quantized int8/uint8/int16): the raw values are copied and the quantization
parameters must simply carry over. Where TFLite insists that input and output parameters are
equal, :func:`require_same_quant` says so (a :class:`ModelError`, as LiteRT refuses such a model);
where TFLite would requantize instead, the kernel raises :class:`UnsupportedOpError` (quantized
arithmetic comes later).

Many of these ops take their shape-defining values (axes, paddings, begin/end, multiples, ...)
from an input tensor. When that tensor is a constant, ``prepare`` decodes it once and computes the
output shape; when it is computed at run time, ``prepare`` returns the shape recorded in the
model and ``eval`` decodes the value per invoke (see :func:`param_value`).
"""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import check_allocation, mark_dynamic  # noqa: F401 (re-exported)

INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def require_dense(node, *indices: int, outputs: bool = True) -> None:
    """Refuse tensors with no numpy element type (STRING, RESOURCE, INT4...)."""
    infos = [node.inputs[i] for i in indices if i < len(node.inputs)]
    if outputs:
        infos += list(node.outputs)
    for t in infos:
        if t is not None and t.dtype is None:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{t.tensor.type_name} tensors are not supported yet")


def require_same_dtype(node, a, b, what: str = "output") -> None:
    if a is not None and b is not None and a.dtype != b.dtype:
        raise node.fail(f"{what} type {b.tensor.type_name} differs from input type "
                        f"{a.tensor.type_name}")


def quant_of(info) -> tuple[float, int]:
    """(scale, zero point) of a tensor as TFLite's per-tensor ``params`` see it; (0, 0) when the
    tensor is not quantized."""
    q = info.quantization if info is not None else None
    if q is None or q.scale.size == 0:
        return 0.0, 0
    zp = int(q.zero_point[0]) if q.zero_point.size else 0
    return float(q.scale[0]), zp


def is_quantized(info) -> bool:
    q = info.quantization if info is not None else None
    return q is not None and q.scale.size > 0


def require_same_quant(node, a, b, what: str = "output") -> None:
    """TFLite refuses to run the op unless the two tensors share scale and zero point."""
    qa, qb = quant_of(a), quant_of(b)
    if qa != qb:
        raise node.fail(f"{what} quantization (scale {qb[0]:g}, zero point {qb[1]}) differs "
                        f"from the input's (scale {qa[0]:g}, zero point {qa[1]}); this op does "
                        "not rescale")


def unsupported_requant(node, a, b) -> None:
    """For op variants where TFLite would requantize between two different parameter sets."""
    if quant_of(a) != quant_of(b):
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"{b.dtype} quantized inputs are not supported yet (requantizing "
                                 "between different scales)")


def norm_axis(node, axis: int, rank: int, what: str = "axis") -> int:
    """A possibly negative axis in ``[-rank, rank)`` as a non-negative index."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise node.fail(f"{what} {axis} is outside [{-rank}, {rank}) for rank {rank}")
    return axis % rank


def int_list(value) -> list[int]:
    """A constant/runtime integer tensor as a flat list of Python ints."""
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


def param_value(node, index: int, inputs=None):
    """The value of input ``index``: its constant data in ``prepare`` (``inputs`` None), or the
    runtime array in ``eval``. None when it is not known yet (runtime tensor during prepare) or
    the optional input is absent."""
    if index >= len(node.inputs) or node.inputs[index] is None:
        return None
    t = node.inputs[index]
    if t.data is None and t.dtype is not None and 0 in t.shape:
        return np.zeros(t.shape, t.dtype)  # no elements: the value is known (constants of
        # zero elements have an empty buffer, so they do not look constant)
    if inputs is None:
        return t.data
    return inputs[index]


def shape_param(node, index: int, inputs=None) -> tuple[int, ...] | None:
    """An output shape given as the values of input ``index`` (FILL's dims, the random ops'
    shape): a tuple of non-negative ints, or None while the values are not known (see
    :func:`param_value`)."""
    d = param_value(node, index, inputs)
    if d is None:
        return None
    shape = tuple(int_list(d))
    if any(n < 0 for n in shape):
        raise node.fail(f"negative dimension in {list(shape)}")
    return shape


def count_param(node, index: int, what: str, inputs=None) -> int | None:
    """A count given as the (scalar) value of input ``index`` (ONE_HOT's depth, MULTINOMIAL's
    num_samples): a non-negative int, or None while the value is not known."""
    v = param_value(node, index, inputs)
    if v is None:
        return None
    n = int(np.asarray(v).reshape(-1)[0])
    if n < 0:
        raise node.fail(f"{what} {n} is negative")
    return n


class ParamKernel:
    """Mixin for kernels whose output shape depends on the values of some inputs.

    Subclasses implement ``params(self, inputs)`` -> a parameter object decoded from the
    inputs (``inputs`` None during prepare, when constants are read from the node) or None if a
    needed value is not known, ``shapes(self, p)`` -> output shapes, and ``run(self, p, inputs)``
    -> output arrays. Constant parameters are decoded once, in prepare.

    Run-time parameters (a loop counter in a Keras RNN body, one value per step) are decoded
    once per distinct value when the subclass declares ``param_inputs``: the indices of the
    inputs whose *values* ``params`` reads (it may read any input's shape). Up to
    ``PARAM_MEMO_LIMIT`` decodings are kept, so every step of the next invoke hits them too.
    """

    #: Inputs whose values ``params`` reads (None: no memo, decode on every eval).
    param_inputs: tuple[int, ...] | None = None

    def prepare(self):
        self._p = self.params(None)
        self._memo = {}
        if self._p is None:
            mark_dynamic(self.node)
            return [o.shape if o is not None else () for o in self.node.outputs]
        shapes = self.shapes(self._p)
        check_allocation(self.node, shapes, runtime=False)
        return shapes

    def eval(self, inputs):
        p = self._p
        if p is None:
            if self.param_inputs is None:
                p = self._decoded(inputs)
            else:
                key = (tuple(None if x is None else np.shape(x) for x in inputs),
                       *((np.asarray(inputs[i]).dtype.char, np.asarray(inputs[i]).tobytes())
                         for i in self.param_inputs))
                p = self._memo.get(key)
                if p is None:
                    if len(self._memo) >= PARAM_MEMO_LIMIT:
                        self._memo.clear()
                    p = self._memo[key] = self._decoded(inputs)
        return self.run(p, inputs)

    def _decoded(self, inputs):
        """Run-time parameters, with the outputs they ask for checked to fit in memory."""
        p = self.params(inputs)
        check_allocation(self.node, self.shapes(p), runtime=True)
        return p


#: Run-time parameter decodings a ``ParamKernel`` node keeps before starting over.
PARAM_MEMO_LIMIT = 256


#: Largest output (in elements) computed at prepare time by :func:`fold_known_values`.
FOLD_LIMIT = 1 << 16

#: Ops never evaluated at prepare: their eval does more than compute outputs from inputs
#: (control flow runs subgraphs, variables and random generators hold state, custom
#: kernels are the user's).
_NO_FOLD = frozenset({Op.WHILE, Op.IF, Op.CALL_ONCE, Op.ASSIGN_VARIABLE, Op.READ_VARIABLE,
                      Op.VAR_HANDLE, Op.CUSTOM, Op.RANDOM_UNIFORM, Op.RANDOM_STANDARD_NORMAL,
                      Op.MULTINOMIAL})


def fold_known_values(kernel, shapes) -> None:
    """After ``kernel.prepare()`` returned ``shapes``: when every input of the node is known at
    prepare time (a constant, or a value an upstream kernel published), run ``eval`` once and
    publish the outputs as known values (``TensorInfo.data``) for the kernels downstream.

    This is what lets shape arithmetic resolve at prepare (``SHAPE -> GATHER -> REDUCE_PROD ->
    PACK -> RESHAPE``, as Keras emits for ``Dense`` on 3-D inputs or a dynamic batch), so what
    follows is prepared, checked and planned with its real shapes: TFLite resolves it at eval
    with dynamic tensors instead. Any op qualifies except those in ``_NO_FOLD``; only small
    outputs (``FOLD_LIMIT`` elements) are published. The node still runs at every invoke (the
    same values), so hooks and profiles see it as LiteRT runs it."""
    node = kernel.node
    ins = [t for t in node.inputs if t is not None]
    outs = list(node.outputs)
    if (not ins or not outs or node.op.code in _NO_FOLD
            or not all(t.data is not None for t in ins)
            or not all(o is not None and o.dtype is not None and o.data is None for o in outs)
            or node.state.get("dynamic_outputs")
            or all(0 in tuple(sh) for sh in shapes)  # all empty: not run (_skip_if_empty)
            or sum(math.prod(sh) for sh in shapes) > FOLD_LIMIT):
        return
    values = kernel.eval([None if t is None else t.data for t in node.inputs])
    for o, v, sh in zip(outs, values, shapes):
        v = np.asarray(v)
        if tuple(v.shape) != tuple(sh) or v.dtype != o.dtype:
            raise node.fail(f"kernel produced {v.dtype}{list(v.shape)} at prepare, "
                            f"expected {o.dtype}{list(sh)}")
        v.flags.writeable = False
        o.data = v
