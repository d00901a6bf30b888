"""Model summary: a per-operator table, whole-model totals and a compact HTML view.

:func:`summary` returns one row per operator (execution order) with these columns:

``index``, ``op``, ``version``
    Position in the subgraph, operator name (builtin name, or the custom code for custom
    ops), operator-code version.
``input_shapes``, ``input_dtypes``, ``output_shapes``, ``output_dtypes``
    Lists over the non-omitted tensors: shapes as tuples (the *signature* shape, so a dynamic
    dimension shows as ``-1``), dtypes as TensorType names (``"FLOAT32"``, ``"INT8"``, ...).
``params``
    Elements of the operator's *parameter* inputs: constant tensors that are floating point,
    quantized (non-empty scale) or 8/16/4/2-bit integer. Structural constants (``INT32``/
    ``INT64``/``BOOL`` shapes, axes, paddings, indices without quantization) are not parameters,
    so a float Conv2D+Dense model gives Keras's ``count_params()``. A constant read through a
    ``DEQUANTIZE`` or ``DENSIFY`` of a constant (float16 and sparse models) is attributed to the
    consuming operator; that DEQUANTIZE/DENSIFY row then shows 0 params and 0 bytes. Each buffer
    is counted once per operator.
``weight_bytes``
    Bytes of every constant input buffer (structural constants included), once per buffer per
    operator; same look-through rule as ``params``.
``macs``
    Multiply-accumulates of one invocation, computed from the tensors' stored shapes (for a
    dynamic dimension TFLite stores 1, so it counts as 1). Bias additions and fused activations
    are not counted. Exact counts:

    * CONV_2D: ``out_elems * kh * kw * cin_per_group`` (filter ``[cout, kh, kw, cin/groups]``).
    * DEPTHWISE_CONV_2D: ``out_elems * kh * kw``.
    * TRANSPOSE_CONV: ``in_elems * kh * kw * cout`` (inputs: output_shape, weights
      ``[cout, kh, kw, cin]``, input, bias).
    * CONV_3D: ``out_elems * kd * kh * kw * cin_per_group`` (filter ``[kd, kh, kw, cin, cout]``);
      CONV_3D_TRANSPOSE: ``in_elems * kd * kh * kw * cout`` (filter ``[kd, kh, kw, cout, cin]``).
    * FULLY_CONNECTED: ``rows * in_features * units`` with weights ``[units, in_features]`` and
      ``rows = in_elems / in_features`` (independent of ``keep_num_dims``).
    * BATCH_MATMUL: ``batch * M * K * N`` honouring ``adj_x``/``adj_y`` and broadcast batch dims.
    * STABLEHLO_DOT_GENERAL / STABLEHLO_CONVOLUTION: output elements times the contracted size.

    Estimates: elementwise and activation ops (ADD, MUL, SUB, DIV, comparisons, LOGISTIC, TANH,
    SOFTMAX, QUANTIZE, ...) count one per output element (ADD_N: ``n - 1`` per element,
    RESIZE_BILINEAR: 4); pooling ``out_elems * window``; reductions (MEAN, SUM, REDUCE_*,
    ARG_MAX, ...) one per input element; recurrent ops (LSTM, sequence LSTM/RNN in both
    directions, RNN, SVDF) ``steps * batch * (elements of the input/recurrent/projection weight
    matrices)``, i.e. ``4 * (in + out) * cell`` per step for a plain LSTM. Zero: data movement
    (RESHAPE, TRANSPOSE, CONCATENATION, GATHER, PAD, SLICE, ...), EMBEDDING_LOOKUP, DEQUANTIZE of a
    constant (done once at prepare), control flow (IF/WHILE/CALL_ONCE: their bodies are separate
    subgraphs, each counted once in :func:`totals`), custom ops and codes this schema does not know.
``options``
    A short string of the typed options, e.g. ``"SAME s2 relu6"``.
``name``
    Name of the first output tensor.

With ``subgraph="all"`` every subgraph is listed and a ``subgraph`` column comes first.

Nothing here raises on a valid model: unknown or malformed operators get 0 MACs.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import math
import os
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis._result import css
from workbench.ir.graph import Model, Operator, Subgraph, Tensor
from workbench.ir.ops import BuiltinOperator, TensorType

COLUMNS = [
    "index", "op", "version", "input_shapes", "input_dtypes", "output_shapes", "output_dtypes",
    "params", "weight_bytes", "macs", "options", "name",
]

#: Rows shown by :func:`summary_html` before truncating.
HTML_MAX_ROWS = 200

# --- operator categories for MAC counting ---------------------------------------------------


def _codes(*names: str) -> frozenset[int]:
    members = BuiltinOperator.__members__
    return frozenset(int(members[n]) for n in names if n in members)


#: One MAC per output element.
ELEMENTWISE = _codes(
    "ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "POW", "MAXIMUM", "MINIMUM", "FLOOR_DIV",
    "FLOOR_MOD", "PRELU", "LEAKY_RELU", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1",
    "HARD_SWISH", "ELU", "GELU", "LOGISTIC", "TANH", "EXP", "LOG", "SQRT", "RSQRT", "SIN", "COS",
    "ABS", "NEG", "SQUARE", "FLOOR", "CEIL", "ROUND", "SIGN", "SOFTMAX", "LOG_SOFTMAX",
    "L2_NORMALIZATION", "LOCAL_RESPONSE_NORMALIZATION", "QUANTIZE", "DEQUANTIZE", "FAKE_QUANT",
    "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND",
    "LOGICAL_OR", "LOGICAL_NOT", "SELECT", "SELECT_V2", "ATAN2", "BITWISE_XOR", "RIGHT_SHIFT",
    "CUMSUM", "COMPLEX_ABS", "EMBEDDING_LOOKUP_SPARSE", "LSH_PROJECTION", "BUCKETIZE",
    "RANDOM_STANDARD_NORMAL", "RANDOM_UNIFORM", "MULTINOMIAL",
    "STABLEHLO_LOGISTIC", "STABLEHLO_ADD", "STABLEHLO_DIVIDE", "STABLEHLO_MULTIPLY",
    "STABLEHLO_MAXIMUM", "STABLEHLO_CLAMP", "STABLEHLO_ABS", "STABLEHLO_AND", "STABLEHLO_COSINE",
    "STABLEHLO_EXPONENTIAL", "STABLEHLO_FLOOR", "STABLEHLO_LOG", "STABLEHLO_MINIMUM",
    "STABLEHLO_NEGATE", "STABLEHLO_OR", "STABLEHLO_POWER", "STABLEHLO_REMAINDER",
    "STABLEHLO_RSQRT", "STABLEHLO_SELECT", "STABLEHLO_SUBTRACT", "STABLEHLO_TANH",
    "STABLEHLO_COMPARE", "STABLEHLO_SHIFT_LEFT", "STABLEHLO_CBRT", "STABLEHLO_RNG_BIT_GENERATOR",
)
#: One MAC per input element.
REDUCTIONS = _codes(
    "MEAN", "SUM", "REDUCE_PROD", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_ANY", "REDUCE_ALL",
    "ARG_MAX", "ARG_MIN", "TOPK_V2", "SEGMENT_SUM", "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_MIN", "UNSORTED_SEGMENT_SUM", "STABLEHLO_REDUCE",
    "STABLEHLO_SORT", "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5",
)
#: Zero MACs: data movement, lookups, shape ops, state, control flow.
ZERO = _codes(
    "RESHAPE", "TRANSPOSE", "CONCATENATION", "PACK", "UNPACK", "SPLIT", "SPLIT_V", "SLICE",
    "STRIDED_SLICE", "GATHER", "GATHER_ND", "SCATTER_ND", "PAD", "PADV2", "MIRROR_PAD", "SQUEEZE",
    "EXPAND_DIMS", "TILE", "BROADCAST_TO", "BROADCAST_ARGS", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE",
    "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "SHAPE", "RANK", "FILL", "ZEROS_LIKE", "RANGE",
    "REVERSE_V2", "REVERSE_SEQUENCE", "EMBEDDING_LOOKUP", "HASHTABLE_LOOKUP", "CONCAT_EMBEDDINGS",
    "SKIP_GRAM", "RESIZE_NEAREST_NEIGHBOR", "CAST", "BITCAST", "ONE_HOT", "SPARSE_TO_DENSE",
    "WHERE", "UNIQUE", "MATRIX_DIAG", "MATRIX_SET_DIAG", "DENSIFY", "DYNAMIC_UPDATE_SLICE",
    "IMAG", "REAL", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT", "HASHTABLE_SIZE",
    "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL", "CALL_ONCE", "IF", "WHILE",
    "DELEGATE", "CUSTOM", "PLACEHOLDER_FOR_GREATER_OP_CODES", "STABLEHLO_RESHAPE",
    "STABLEHLO_CONCATENATE", "STABLEHLO_BROADCAST_IN_DIM", "STABLEHLO_SLICE",
    "STABLEHLO_CUSTOM_CALL", "STABLEHLO_SCATTER", "STABLEHLO_CONVERT", "STABLEHLO_DYNAMIC_SLICE",
    "STABLEHLO_DYNAMIC_UPDATE_SLICE", "STABLEHLO_PAD", "STABLEHLO_IOTA", "STABLEHLO_WHILE",
    "STABLEHLO_GATHER", "STABLEHLO_TRANSPOSE", "STABLEHLO_CASE", "STABLEHLO_COMPOSITE", "DILATE",
)
POOLS = _codes("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D")
#: Recurrent ops: input indices of the weight matrices multiplied at every step.
RECURRENT_WEIGHTS: dict[int, tuple[int, ...]] = {
    int(BuiltinOperator.__members__[k]): v
    for k, v in {
        "LSTM": (1, 2, 3, 4, 5, 6, 7, 8, 16),
        "UNIDIRECTIONAL_SEQUENCE_LSTM": (1, 2, 3, 4, 5, 6, 7, 8, 16),
        "BIDIRECTIONAL_SEQUENCE_LSTM": (1, 2, 3, 4, 5, 6, 7, 8, 16,
                                        18, 19, 20, 21, 22, 23, 24, 25, 33),
        "RNN": (1, 2),
        "UNIDIRECTIONAL_SEQUENCE_RNN": (1, 2),
        "BIDIRECTIONAL_SEQUENCE_RNN": (1, 2, 5, 6),
        "SVDF": (1, 2),
    }.items()
    if k in BuiltinOperator.__members__
}

_FLOAT_TYPES = frozenset(int(TensorType.__members__[n]) for n in
                         ("FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16", "COMPLEX64", "COMPLEX128")
                         if n in TensorType.__members__)
_WEIGHT_INT_TYPES = frozenset(int(TensorType.__members__[n]) for n in
                              ("INT8", "UINT8", "INT16", "UINT16", "INT4", "INT2")
                              if n in TensorType.__members__)
_LOOK_THROUGH = _codes("DEQUANTIZE", "DENSIFY")


# --- small helpers -----------------------------------------------------------------------------

def _prod(shape) -> int:
    return int(math.prod(int(d) for d in shape)) if shape is not None else 0


def _elems(t: Tensor | None) -> int:
    if t is None:
        return 0
    return max(_prod(t.shape), 0)


def _display_shape(t: Tensor) -> tuple[int, ...]:
    sig = t.shape_signature
    if sig is not None and len(sig) == len(t.shape):
        return tuple(int(d) for d in sig)
    return tuple(int(d) for d in t.shape)


def _type_name(t: Tensor) -> str:
    try:
        return TensorType(int(t.dtype)).name
    except ValueError:
        return f"TYPE_{int(t.dtype)}"


def _has_scale(t: Tensor) -> bool:
    q = t.quantization
    return q is not None and q.scale is not None and np.size(q.scale) > 0


def is_parameter(t: Tensor) -> bool:
    """Whether a constant tensor counts as a parameter (weights, biases, tables) rather than a
    structural constant (a shape, axis, padding or index vector)."""
    if not t.is_constant:
        return False
    dt = int(t.dtype)
    return dt in _FLOAT_TYPES or dt in _WEIGHT_INT_TYPES or _has_scale(t)


def _op_name(op: Operator) -> str:
    try:
        return str(op.name)
    except Exception:  # noqa: BLE001 - a broken opcode must not break the summary
        return "UNKNOWN"


def _shape(t: Tensor | None) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape) if t is not None else ()


def _inp(op: Operator, i: int) -> Tensor | None:
    return op.inputs[i] if 0 <= i < len(op.inputs) else None


def _out(op: Operator, i: int = 0) -> Tensor | None:
    return op.outputs[i] if 0 <= i < len(op.outputs) else None


# --- MACs ---------------------------------------------------------------------------------------

def op_macs(op: Operator) -> int:
    """Multiply-accumulates of one operator (see the module docstring for what is counted).
    Never raises: anything it cannot interpret counts 0."""
    try:
        return max(int(_macs(op)), 0)
    except Exception:  # noqa: BLE001 - an unusual operator must never break the summary
        return 0


def _macs(op: Operator) -> int:
    code = op.code
    name = _op_name(op)
    out = _out(op)
    if name == "CONV_2D":
        w = _shape(_inp(op, 1))
        if len(w) != 4:
            return 0
        return _elems(out) * w[1] * w[2] * w[3]
    if name == "DEPTHWISE_CONV_2D":
        w = _shape(_inp(op, 1))
        if len(w) != 4:
            return 0
        return _elems(out) * w[1] * w[2]
    if name == "TRANSPOSE_CONV":
        w = _shape(_inp(op, 1))
        if len(w) != 4:
            return 0
        return _elems(_inp(op, 2)) * w[0] * w[1] * w[2]
    if name == "CONV_3D":
        w = _shape(_inp(op, 1))
        if len(w) != 5:
            return 0
        return _elems(out) * w[0] * w[1] * w[2] * w[3]
    if name == "CONV_3D_TRANSPOSE":
        w = _shape(_inp(op, 1))
        if len(w) != 5:
            return 0
        return _elems(_inp(op, 2)) * w[0] * w[1] * w[2] * w[3]
    if name == "FULLY_CONNECTED":
        w = _shape(_inp(op, 1))
        if len(w) != 2 or w[1] <= 0:
            return 0
        units, k = w
        rows = _elems(_inp(op, 0)) // k
        return rows * k * units
    if name == "BATCH_MATMUL":
        return _batch_matmul_macs(op)
    if name == "STABLEHLO_DOT_GENERAL":
        lhs = _shape(_inp(op, 0))
        dims = getattr(op.options2, "lhs_contracting_dimensions", None) or ()
        return _elems(out) * _prod(lhs[d] for d in dims if 0 <= d < len(lhs))
    if name == "STABLEHLO_CONVOLUTION":
        w = _shape(_inp(op, 1))
        ofd = getattr(op.options2, "kernel_output_feature_dimension", None)
        if not w or ofd is None or not 0 <= ofd < len(w) or w[ofd] == 0:
            return 0
        return _elems(out) * (_prod(w) // w[ofd])
    if code in POOLS:
        o = op.options
        fh = int(getattr(o, "filter_height", 1) or 1)
        fw = int(getattr(o, "filter_width", 1) or 1)
        return _elems(out) * fh * fw
    if code in RECURRENT_WEIGHTS:
        x = _shape(_inp(op, 0))
        mats = [_inp(op, i) for i in RECURRENT_WEIGHTS[code]]
        per_row = sum(_elems(t) for t in mats if t is not None and len(t.shape) == 2)
        if not x or x[-1] <= 0:
            return 0
        return (_prod(x) // x[-1]) * per_row
    if name == "ADD_N":
        return _elems(out) * max(len([t for t in op.inputs if t is not None]) - 1, 0)
    if name == "RESIZE_BILINEAR":
        return _elems(out) * 4
    if name == "RFFT2D":
        x = _elems(_inp(op, 0))
        n = _prod(_shape(_inp(op, 0))[-2:]) or 1
        return int(x * max(math.log2(n), 1))
    if name == "DEQUANTIZE":
        src = _inp(op, 0)
        return 0 if src is not None and src.is_constant else _elems(out)
    if code in ELEMENTWISE:
        return _elems(out)
    if code in REDUCTIONS:
        return _elems(_inp(op, 0))
    return 0


def _batch_matmul_macs(op: Operator) -> int:
    x, y = _shape(_inp(op, 0)), _shape(_inp(op, 1))
    if len(x) < 2 or len(y) < 2:
        return 0
    o = op.options
    adj_x, adj_y = bool(getattr(o, "adj_x", False)), bool(getattr(o, "adj_y", False))
    m, k = (x[-1], x[-2]) if adj_x else (x[-2], x[-1])
    n = y[-2] if adj_y else y[-1]
    try:
        batch = _prod(np.broadcast_shapes(x[:-2], y[:-2]))
    except ValueError:
        return _elems(_out(op)) * k
    return batch * m * k * n


# --- options ------------------------------------------------------------------------------------

_SKIP_DEFAULT_FIELDS = {"quantized_bias_type", "asymmetric_quantize_inputs", "weights_format"}


def _enum_str(v) -> str:
    return v.name.lower() if isinstance(v, enum.Enum) else str(v)


def format_options(op: Operator) -> str:
    """A short human string of an operator's typed options (``"SAME s2 relu6"``)."""
    try:
        parts = []
        for opts in (op.options, op.options2):
            if opts is not None and dataclasses.is_dataclass(opts):
                parts.extend(_format_dataclass(opts))
        if op.custom_options is not None and np.size(op.custom_options):
            parts.append(f"custom_options={int(np.size(op.custom_options))}B")
        s = " ".join(parts)
        return s if len(s) <= 80 else s[:77] + "..."
    except Exception:  # noqa: BLE001
        return ""


def _format_dataclass(opts) -> list[str]:
    vals = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}
    defaults = {f.name: f.default for f in dataclasses.fields(opts)}
    parts: list[str] = []
    done: set[str] = set()

    if "padding" in vals:
        parts.append(_enum_str(vals["padding"]).upper())
        done.add("padding")
    if "filter_height" in vals and "filter_width" in vals:
        parts.append(f"{vals['filter_height']}x{vals['filter_width']}")
        done.update(("filter_height", "filter_width"))
    for prefix, fmt in (("stride", "s"), ("dilation", "d")):
        suffix = "_factor" if prefix == "dilation" else ""
        keys = [f"{prefix}_{a}{suffix}" for a in ("d", "h", "w")
                if f"{prefix}_{a}{suffix}" in vals]
        if keys:
            done.update(keys)
            nums = [int(vals[k]) for k in keys]
            if any(n not in (0, 1) for n in nums):
                parts.append(fmt + (str(nums[0]) if len(set(nums)) == 1
                                    else "x".join(str(n) for n in nums)))
    for key, v in vals.items():
        if key in done:
            continue
        if key == "fused_activation_function":
            if _enum_str(v) != "none":
                parts.append(_enum_str(v))
            continue
        if key == "depth_multiplier":
            if int(v) not in (0, 1):
                parts.append(f"dm{int(v)}")
            continue
        if v is None or v == defaults.get(key):
            continue
        if key in _SKIP_DEFAULT_FIELDS:
            continue
        if key.endswith("_subgraph_index"):
            parts.append(f"{key[:-len('_subgraph_index')]}=sg{v}")
        elif isinstance(v, bool):
            parts.append(key)
        elif isinstance(v, tuple):
            parts.append(f"{key}=[{','.join(_enum_str(x) for x in v[:8])}"
                         f"{',...' if len(v) > 8 else ''}]")
        else:
            parts.append(f"{key}={_enum_str(v)}")
    return parts


# --- per-op table -------------------------------------------------------------------------------

def _param_sources(sg: Subgraph) -> dict[int, Tensor]:
    """id(output of a DEQUANTIZE/DENSIFY of a constant) -> that constant."""
    out: dict[int, Tensor] = {}
    for op in sg.operators:
        if op.code in _LOOK_THROUGH:
            src, dst = _inp(op, 0), _out(op)
            if src is not None and dst is not None and src.is_constant:
                out[id(dst)] = src
    return out


def _op_weights(op: Operator, sources: dict[int, Tensor]) -> tuple[int, int]:
    """(params, weight_bytes) of one operator, each buffer counted once."""
    if op.code in _LOOK_THROUGH and _inp(op, 0) is not None and _inp(op, 0).is_constant:
        return 0, 0
    seen: set[int] = set()
    params = nbytes = 0
    for t in op.inputs:
        if t is None:
            continue
        t = sources.get(id(t), t)
        if not t.is_constant or id(t.buffer) in seen:
            continue
        seen.add(id(t.buffer))
        nbytes += t.buffer.nbytes
        if is_parameter(t):
            params += _elems(t)
    return params, nbytes


def _rows(model: Model, si: int) -> list[dict[str, Any]]:
    sg = model.subgraphs[si]
    sources = _param_sources(sg)
    rows = []
    for oi, op in enumerate(sg.operators):
        ins = [t for t in op.inputs if t is not None]
        outs = [t for t in op.outputs if t is not None]
        try:
            params, nbytes = _op_weights(op, sources)
        except Exception:  # noqa: BLE001
            params = nbytes = 0
        try:
            version = int(op.version)
        except Exception:  # noqa: BLE001
            version = 0
        rows.append({
            "index": oi,
            "op": _op_name(op),
            "version": version,
            "input_shapes": [_display_shape(t) for t in ins],
            "input_dtypes": [_type_name(t) for t in ins],
            "output_shapes": [_display_shape(t) for t in outs],
            "output_dtypes": [_type_name(t) for t in outs],
            "params": int(params),
            "weight_bytes": int(nbytes),
            "macs": op_macs(op),
            "options": format_options(op),
            "name": outs[0].name if outs else "",
        })
    return rows


def summary(model: Model, subgraph: int | str = 0) -> pd.DataFrame:
    """Per-operator table of one subgraph (default: the main one) or of all (``"all"``).

    See the module docstring for the columns and what ``params`` / ``macs`` count.
    """
    if isinstance(subgraph, str):
        if subgraph != "all":
            raise ValueError(f"subgraph must be an index or 'all', not {subgraph!r}")
        frames = []
        for si in range(len(model.subgraphs)):
            rows = _rows(model, si)
            for r in rows:
                r["subgraph"] = si
            frames.extend(rows)
        return pd.DataFrame(frames, columns=["subgraph", *COLUMNS])
    n = len(model.subgraphs)
    if not -n <= subgraph < n:
        raise IndexError(f"subgraph {subgraph} out of range (model has {n})")
    return pd.DataFrame(_rows(model, subgraph % n), columns=COLUMNS)


# --- totals -------------------------------------------------------------------------------------

def _tensor_info(t: Tensor) -> dict[str, Any]:
    info: dict[str, Any] = {"name": t.name, "shape": _display_shape(t), "dtype": _type_name(t),
                            "quantization": None}
    q = t.quantization
    if q is not None and q.scale is not None and np.size(q.scale) > 0:
        scale = np.asarray(q.scale).reshape(-1)
        zp = np.asarray(q.zero_point).reshape(-1) if q.zero_point is not None else np.zeros(1)
        if scale.size == 1:
            info["quantization"] = {"scale": float(scale[0]),
                                    "zero_point": int(zp[0]) if zp.size else 0}
        else:
            info["quantization"] = {"per_channel": int(scale.size),
                                    "axis": int(q.quantized_dimension)}
    return info


def totals(model: Model) -> dict[str, Any]:
    """Whole-model figures.

    Keys: ``file_size`` (bytes), ``params`` (elements of parameter constants, see
    :func:`is_parameter`, each buffer once), ``constant_elements`` (elements of all constant
    tensors), ``weight_bytes`` (bytes of all constant buffers, each once), ``macs`` (all
    subgraphs), ``macs_by_subgraph``, ``num_ops``, ``num_subgraphs``, ``ops_by_type`` (Counter),
    ``inputs`` / ``outputs`` of subgraph 0 (dicts: name, signature_name (or None), shape, dtype,
    quantization = None or ``{"scale", "zero_point"}`` or ``{"per_channel", "axis"}``),
    ``signatures`` (key -> ``{"subgraph", "inputs", "outputs"}`` with signature names),
    ``description``, ``metadata`` (names), ``weight_dtypes`` (Counter: dtype name -> parameter
    elements).
    """
    file_size = int(model.file_size or 0)
    if not file_size:
        try:
            file_size = len(model.to_bytes())
        except Exception:  # noqa: BLE001 - an in-memory model that does not serialize yet
            file_size = 0

    seen: set[int] = set()
    params = const_elems = wbytes = 0
    weight_dtypes: Counter = Counter()
    for sg in model.subgraphs:
        for t in sg.tensors:
            if not t.is_constant or id(t.buffer) in seen:
                continue
            seen.add(id(t.buffer))
            wbytes += t.buffer.nbytes
            n = _elems(t)
            const_elems += n
            if is_parameter(t):
                params += n
                weight_dtypes[_type_name(t)] += n

    ops_by_type: Counter = Counter()
    macs_by_sg = []
    for sg in model.subgraphs:
        macs_by_sg.append(sum(op_macs(op) for op in sg.operators))
        ops_by_type.update(_op_name(op) for op in sg.operators)

    sg_index = {id(sg): i for i, sg in enumerate(model.subgraphs)}
    signatures = {}
    for sd in model.signature_defs:
        signatures[sd.key] = {"subgraph": sg_index.get(id(sd.subgraph), -1),
                              "inputs": list(sd.inputs), "outputs": list(sd.outputs)}

    main = model.subgraphs[0] if model.subgraphs else Subgraph()
    sig_names: dict[int, str] = {}
    for sd in model.signature_defs:
        if sd.subgraph is main:
            for sname, tensor in [*sd.inputs.items(), *sd.outputs.items()]:
                sig_names.setdefault(id(tensor), sname)

    def io(t: Tensor) -> dict[str, Any]:
        return {**_tensor_info(t), "signature_name": sig_names.get(id(t))}

    return {
        "file_size": file_size,
        "params": int(params),
        "constant_elements": int(const_elems),
        "weight_bytes": int(wbytes),
        "macs": int(sum(macs_by_sg)),
        "macs_by_subgraph": macs_by_sg,
        "num_ops": int(sum(ops_by_type.values())),
        "num_subgraphs": len(model.subgraphs),
        "ops_by_type": ops_by_type,
        "inputs": [io(t) for t in main.inputs if t is not None],
        "outputs": [io(t) for t in main.outputs if t is not None],
        "signatures": signatures,
        "description": model.description,
        "metadata": [m.name for m in model.metadata],
        "weight_dtypes": weight_dtypes,
    }


# --- HTML ---------------------------------------------------------------------------------------

def human_count(n: float) -> str:
    """``300.8 M``-style count (K, M, G, T; plain below 1000)."""
    n = float(n)
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)}"


def human_bytes(n: float) -> str:
    """``3.4 MB``-style size (decimal units)."""
    n = float(n)
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


_CSS = css("wb-summary")


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt_shape(shape) -> str:
    return "[" + ",".join("?" if int(d) < 0 else str(int(d)) for d in shape) + "]"


def _fmt_quant(q: dict | None) -> str:
    if not q:
        return ""
    if "scale" in q:
        return f"scale={q['scale']:.6g} zp={q['zero_point']}"
    return f"per-channel x{q['per_channel']} (axis {q['axis']})"


def _kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>"
                         for i, c in enumerate(r)) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _display_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        if c in ("input_shapes", "output_shapes"):
            out[c] = df[c].map(lambda v: " ".join(_fmt_shape(s) for s in v))
        elif c in ("input_dtypes", "output_dtypes"):
            out[c] = df[c].map(lambda v: " ".join(str(d).lower() for d in v))
        elif c in ("params", "weight_bytes", "macs"):
            out[c] = df[c].map(lambda v: f"{int(v):,}")
        else:
            out[c] = df[c].astype(str)
    return out


def summary_html(model: Model) -> str:
    """A compact, self-contained HTML view (inline CSS, no scripts, every string escaped)."""
    try:
        t = totals(model)
    except Exception as exc:  # noqa: BLE001 - a repr must not raise
        return f"<pre>workbench Model (summary unavailable: {_e(exc)})</pre>"

    parts = [f"<div class=\"wb-summary\"><style>{_CSS}</style>"]
    title = "workbench Model"
    if model.source:
        title += f" — {os.path.basename(model.source)}"
    parts.append(f"<h4>{_e(title)}</h4>")

    overview = [
        ("file size", human_bytes(t["file_size"])),
        ("parameters", f"{human_count(t['params'])} ({t['params']:,})"),
        ("weights", human_bytes(t["weight_bytes"])
         + (" · " + ", ".join(f"{k.lower()} {human_count(v)}"
                              for k, v in t["weight_dtypes"].most_common())
            if t["weight_dtypes"] else "")),
        ("MACs", f"{human_count(t['macs'])} ({t['macs']:,})"),
        ("operators", f"{t['num_ops']} in {t['num_subgraphs']} subgraph"
                      f"{'s' if t['num_subgraphs'] != 1 else ''}"),
    ]
    if t["description"]:
        overview.append(("description", t["description"]))
    if t["metadata"]:
        overview.append(("metadata", ", ".join(t["metadata"])))
    if t["signatures"]:
        overview.append(("signatures", ", ".join(t["signatures"])))

    ops_rows = [[k, v] for k, v in
                sorted(t["ops_by_type"].items(), key=lambda kv: (-kv[1], kv[0]))]
    io_rows = [[kind, d["signature_name"] or "", d["name"], _fmt_shape(d["shape"]),
                d["dtype"].lower(), _fmt_quant(d["quantization"])]
               for kind, lst in (("input", t["inputs"]), ("output", t["outputs"])) for d in lst]

    parts.append('<div class="wb-row">')
    parts.append(_kv_table(overview))
    if ops_rows:
        parts.append(_table(["op", "count"], ops_rows, numeric={1}))
    parts.append("</div>")
    if io_rows:
        parts.append(_table(["", "signature", "tensor", "shape", "dtype", "quantization"],
                            io_rows))

    try:
        df = summary(model, "all" if len(model.subgraphs) > 1 else 0)
    except Exception as exc:  # noqa: BLE001
        parts.append(f'<p class="wb-note">per-operator table unavailable: {_e(exc)}</p>')
        df = None
    if df is not None and len(df):
        shown = _display_frame(df.head(HTML_MAX_ROWS))
        parts.append(shown.to_html(index=False, escape=True, border=0, classes="wb-ops"))
        if len(df) > HTML_MAX_ROWS:
            parts.append(f'<p class="wb-note">showing the first {HTML_MAX_ROWS} of {len(df)} '
                         "operators; <code>model.summary()</code> has them all.</p>")
    parts.append("</div>")
    return "".join(parts)


__all__ = ["summary", "totals", "summary_html", "op_macs", "format_options", "is_parameter",
           "human_count", "human_bytes", "COLUMNS", "ELEMENTWISE", "REDUCTIONS", "ZERO",
           "POOLS", "RECURRENT_WEIGHTS"]
