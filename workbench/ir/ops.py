"""Operator, tensor-type and option vocabularies, derived from ``schema.fbs``.

* :data:`Op` (alias :data:`BuiltinOperator`): every builtin operator code, an ``IntEnum``.
* :data:`TensorType`, :data:`Padding`, :data:`ActivationFunctionType`, ... : the schema's enums.
* Typed operator options: one frozen dataclass per ``*Options`` table of the ``BuiltinOptions`` /
  ``BuiltinOptions2`` unions (``Conv2DOptions(padding=Padding.SAME, stride_w=1, ...)``), decoded
  once by the reader; vectors become tuples, enum fields become enum members.

Everything is generated from the one schema file at import time, so the vocabulary can never drift
from the format the reader and writer speak.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from workbench.schema.fbs import SCALARS, load_schema

_S = load_schema()


def _enum(name: str) -> type[enum.IntEnum]:
    return enum.IntEnum(name, _S.enums[name].values, module=__name__)


BuiltinOperator = _enum("BuiltinOperator")
Op = BuiltinOperator
TensorType = _enum("TensorType")
Padding = _enum("Padding")
ActivationFunctionType = _enum("ActivationFunctionType")
DimensionType = _enum("DimensionType")
ENUMS: dict[str, type[enum.IntEnum]] = {n: _enum(n) for n in _S.enums}
ENUMS.update(BuiltinOperator=BuiltinOperator, TensorType=TensorType, Padding=Padding,
             ActivationFunctionType=ActivationFunctionType, DimensionType=DimensionType)

#: Codes at or above this value are stored in ``OperatorCode.builtin_code`` with the legacy
#: byte field ``deprecated_builtin_code`` set to this placeholder.
PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def op_name(code: int) -> str:
    """``CONV_2D`` for a builtin code; ``BUILTIN_<n>`` for a code this schema does not know."""
    try:
        return BuiltinOperator(code).name
    except ValueError:
        return f"BUILTIN_{code}"


# --- tensor types ---------------------------------------------------------------------------

def _np(name: str) -> np.dtype | None:
    table = {
        "FLOAT32": "<f4", "FLOAT16": "<f2", "INT32": "<i4", "UINT8": "u1", "INT64": "<i8",
        "BOOL": "?", "INT16": "<i2", "COMPLEX64": "<c8", "INT8": "i1", "FLOAT64": "<f8",
        "COMPLEX128": "<c16", "UINT64": "<u8", "UINT32": "<u4", "UINT16": "<u2",
    }
    if name in table:
        return np.dtype(table[name])
    if name == "BFLOAT16":
        try:
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        except ImportError:  # raw bits remain usable
            return np.dtype("<u2")
    return None


#: TensorType -> numpy dtype of its elements (None for STRING, RESOURCE, VARIANT, INT4, INT2).
NUMPY_DTYPE: dict[int, np.dtype | None] = {t.value: _np(t.name) for t in TensorType}

#: TensorType -> storage bits per element in a buffer (None where the size is not per element).
ELEMENT_BITS: dict[int, int | None] = {}
for _t in TensorType:
    _d = NUMPY_DTYPE[_t.value]
    if _d is not None:
        ELEMENT_BITS[_t.value] = _d.itemsize * 8
    elif _t.name == "INT4":
        ELEMENT_BITS[_t.value] = 4
    elif _t.name == "INT2":
        ELEMENT_BITS[_t.value] = 2
    else:
        ELEMENT_BITS[_t.value] = None


def type_name(t: int) -> str:
    try:
        return TensorType(t).name
    except ValueError:
        return f"TYPE_{t}"


def numpy_dtype(t: int) -> np.dtype:
    d = NUMPY_DTYPE.get(int(t))
    if d is None:
        raise TypeError(f"tensor type {type_name(t)} has no numpy element type")
    return d


def tensor_type_of(dtype) -> int:
    """The TensorType for a numpy dtype (``np.float32`` -> ``TensorType.FLOAT32``)."""
    d = np.dtype(dtype)
    if d.kind in "US" or d == np.dtype(object):
        return TensorType.STRING
    d = d.newbyteorder("<") if d.byteorder == ">" else d
    for k, v in NUMPY_DTYPE.items():
        if v is not None and v == d:
            return TensorType(k)
    raise TypeError(f"no TensorType for numpy dtype {d}")


# --- typed options --------------------------------------------------------------------------

def _py_type(f) -> Any:
    if f.kind == "vector":
        return tuple
    if f.kind == "enum":
        return ENUMS[f.type]
    if f.kind == "string":
        return str
    if f.kind == "scalar":
        c = SCALARS[f.type][0]
        return bool if c == "?" else (float if c in "fd" else int)
    return Any


def _make_options(tname: str) -> type:
    table = _S.tables[tname]
    fields = []
    for f in table.fields:
        if f.deprecated:
            continue  # never written; readers of the format ignore it too
        if f.kind in ("union", "union_type", "table"):
            default = None
        elif f.kind == "vector":
            default = None  # absent; an empty tuple means "present and empty"
        elif f.kind == "enum":
            default = ENUMS[f.type](f.default) if f.default in ENUMS[f.type]._value2member_map_ \
                else f.default
        else:
            default = f.default
        fields.append((f.name, _py_type(f), dataclasses.field(default=default)))
    cls = dataclasses.make_dataclass(tname, fields, frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = f"Typed ``{tname}`` table of the TFLite schema (frozen)."
    return cls


OPTION_UNIONS = ("BuiltinOptions", "BuiltinOptions2")
#: Options table name -> frozen dataclass, for every member of both options unions.
OPTIONS: dict[str, type] = {}
for _u in OPTION_UNIONS:
    if _u in _S.unions:
        for _m in _S.unions[_u].members:
            OPTIONS[_m] = _make_options(_m)
globals().update(OPTIONS)


def options_from_dict(tname: str, values: dict) -> Any:
    """Build the typed options object of table ``tname`` from decoded field values."""
    cls = OPTIONS[tname]
    kw = {}
    for f in _S.tables[tname].fields:
        if f.deprecated or f.name not in values or f.kind in ("union", "union_type", "table"):
            continue
        v = values[f.name]
        if f.kind == "vector":
            v = tuple(v.tolist()) if isinstance(v, np.ndarray) else tuple(v)
        elif f.kind == "enum":
            e = ENUMS[f.type]
            v = e(v) if v in e._value2member_map_ else int(v)
        kw[f.name] = v
    return cls(**kw)


def options_to_dict(opts: Any) -> dict:
    """Field values of a typed options object (enums as ints, tuples kept)."""
    out = {}
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        out[f.name] = int(v) if isinstance(v, enum.IntEnum) else v
    return out


def options_table_name(opts: Any) -> str:
    return type(opts).__name__


def union_of(tname: str) -> tuple[str, int]:
    """(union name, type tag) under which options table ``tname`` is stored."""
    for u in OPTION_UNIONS:
        if u in _S.unions and tname in _S.unions[u].members:
            return u, _S.unions[u].members.index(tname) + 1
    raise KeyError(tname)


# Which options table each operator carries, where the name is not simply CamelCase + Options.
_OPTION_EXCEPTIONS = {
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions", "CONCATENATION": "ConcatenationOptions",
    "LOCAL_RESPONSE_NORMALIZATION": "LocalResponseNormalizationOptions",
    "L2_NORMALIZATION": "L2NormOptions", "LSTM": "LSTMOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "BidirectionalSequenceLSTMOptions",
    "BIDIRECTIONAL_SEQUENCE_RNN": "BidirectionalSequenceRNNOptions",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions", "RNN": "RNNOptions",
    "SVDF": "SVDFOptions", "MEAN": "ReducerOptions", "SUM": "ReducerOptions",
    "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
    "REDUCE_ALL": "ReducerOptions", "SPLIT_V": "SplitVOptions",
    "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "RESIZE_NEAREST_NEIGHBOR": "ResizeNearestNeighborOptions",
    "LOG_SOFTMAX": "LogSoftmaxOptions", "BATCH_MATMUL": "BatchMatMulOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions", "CONV_2D": "Conv2DOptions",
    "CONV_3D": "Conv3DOptions", "CONV_3D_TRANSPOSE": "Conv3DOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions", "EMBEDDING_LOOKUP_SPARSE":
    "EmbeddingLookupSparseOptions", "SPACE_TO_BATCH_ND": "SpaceToBatchNDOptions",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNDOptions", "FAKE_QUANT": "FakeQuantOptions",
    "ARG_MAX": "ArgMaxOptions", "ARG_MIN": "ArgMinOptions",
    "LSH_PROJECTION": "LSHProjectionOptions", "MATRIX_DIAG": "MatrixDiagOptions",
    "MATRIX_SET_DIAG": "MatrixSetDiagOptions", "SEGMENT_SUM": "SegmentSumOptions",
    "UNSORTED_SEGMENT_PROD": "UnsortedSegmentProdOptions",
    "UNSORTED_SEGMENT_MAX": "UnsortedSegmentMaxOptions",
    "UNSORTED_SEGMENT_MIN": "UnsortedSegmentMinOptions",
    "UNSORTED_SEGMENT_SUM": "UnsortedSegmentSumOptions",
    "ADD_N": "AddNOptions", "GATHER_ND": "GatherNdOptions", "SCATTER_ND": "ScatterNdOptions",
    "SELECT_V2": "SelectV2Options", "DEPTH_TO_SPACE": "DepthToSpaceOptions",
    "SPACE_TO_DEPTH": "SpaceToDepthOptions", "STRIDED_SLICE": "StridedSliceOptions",
    "RANDOM_UNIFORM": "RandomOptions", "RANDOM_STANDARD_NORMAL": "RandomOptions",
    "MULTINOMIAL": "RandomOptions", "STABLEHLO_COMPOSITE": "StableHLOCompositeOptions",
}


def expected_options(code: int) -> str | None:
    """The options table an operator of this code should carry, when one is known."""
    name = op_name(code)
    if name in _OPTION_EXCEPTIONS:
        t = _OPTION_EXCEPTIONS[name]
        return t if t in OPTIONS else None
    camel = "".join(p[:1] + p[1:].lower() for p in name.split("_")) + "Options"
    return camel if camel in OPTIONS else None


_DEFAULT_OPTIONS: dict[int, Any] = {}


def default_options(code: int) -> Any:
    """The options an operator of this code has when its file carries none: the schema's
    defaults for every field (what LiteRT's parsers leave in their zero-initialized params),
    or None for operators without an options table."""
    code = int(code)
    if code not in _DEFAULT_OPTIONS:
        name = expected_options(code)
        _DEFAULT_OPTIONS[code] = OPTIONS[name]() if name is not None else None
    return _DEFAULT_OPTIONS[code]
