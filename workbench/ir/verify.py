"""Semantic verification of an IR model: everything that must hold before anything runs.

The FlatBuffer layer (:mod:`workbench.schema.flatbuf`) already proved every offset, vector and
string in bounds, and the reader every index in range. Here we check what TFLite's own verifier
checks on top of that (buffer size vs shape x type with exact integer maths, string tensors,
sparsity metadata, producer/consumer consistency, cycles) and what it is known to miss
(subgraph outputs, quantization arrays, negative or absurd dimensions, subgraph recursion through
WHILE/IF/CALL_ONCE, zero strides/dilations/block sizes, options of the wrong type). The first
fault raises :class:`~workbench.errors.ModelError` with a path such as
``subgraphs[0].operators[12] (CONV_2D) input 3``.

The same checks run before writing, so an edited IR cannot be saved in a state LiteRT would
reject or misread.
"""

from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np

from workbench.errors import ModelError

from .graph import Model, Operator, Subgraph, Tensor
from .ops import ELEMENT_BITS, BuiltinOperator, TensorType, expected_options, type_name

#: Largest tensor (in bytes) we accept a shape to describe; anything above is "absurd".
MAX_TENSOR_BYTES = 1 << 40
MAX_DIM = 2**31 - 1

_ZP_RANGE = {
    TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255), TensorType.INT16: (-32768, 32767),
    TensorType.UINT16: (0, 65535), TensorType.INT4: (-8, 7), TensorType.UINT4: (0, 15),
}

#: (op, input) pairs that read a sparse tensor's compressed form (LiteRT's sparse kernels).
_SPARSE_READERS = {("DENSIFY", 0), ("FULLY_CONNECTED", 1)}

# (min inputs, max inputs or None, exact outputs or None) for common builtin ops; an omitted
# optional input (-1) counts as present. Ops not listed are checked by their kernels.
_ARITY = {
    "CONV_2D": (2, 3, 1), "DEPTHWISE_CONV_2D": (2, 3, 1), "FULLY_CONNECTED": (2, 3, None),
    "TRANSPOSE_CONV": (3, 4, 1), "CONV_3D": (2, 3, 1), "CONV_3D_TRANSPOSE": (3, 4, 1),
    "ADD": (2, 2, 1), "SUB": (2, 2, 1), "MUL": (2, 2, 1), "DIV": (2, 2, 1),
    "AVERAGE_POOL_2D": (1, 1, 1), "MAX_POOL_2D": (1, 1, 1), "L2_POOL_2D": (1, 1, 1),
    "SOFTMAX": (1, 1, 1), "LOGISTIC": (1, 1, 1), "TANH": (1, 1, 1), "RELU": (1, 1, 1),
    "RELU6": (1, 1, 1), "HARD_SWISH": (1, 1, 1), "QUANTIZE": (1, 1, 1),
    "DEQUANTIZE": (1, 1, 1), "RESHAPE": (1, 2, 1), "CONCATENATION": (1, None, 1),
    "MEAN": (2, 2, 1), "PAD": (2, 3, 1), "PADV2": (3, 3, 1), "GATHER": (2, 2, 1),
    "BATCH_MATMUL": (2, 2, 1), "TRANSPOSE": (2, 2, 1), "STRIDED_SLICE": (4, 4, 1),
    "SPACE_TO_BATCH_ND": (3, 3, 1), "BATCH_TO_SPACE_ND": (3, 3, 1),
    "RESIZE_BILINEAR": (2, 2, 1), "RESIZE_NEAREST_NEIGHBOR": (2, 2, 1),
    "PRELU": (2, 2, 1), "SQUEEZE": (1, 1, 1), "EXPAND_DIMS": (2, 2, 1),
    "SUM": (2, 2, 1), "REDUCE_MAX": (2, 2, 1), "REDUCE_MIN": (2, 2, 1), "REDUCE_PROD": (2, 2, 1),
    "REDUCE_ANY": (2, 2, 1), "REDUCE_ALL": (2, 2, 1), "GREATER": (2, 2, 1),
    "GREATER_EQUAL": (2, 2, 1), "LESS": (2, 2, 1), "LESS_EQUAL": (2, 2, 1),
    "EQUAL": (2, 2, 1), "NOT_EQUAL": (2, 2, 1), "MAXIMUM": (2, 2, 1), "MINIMUM": (2, 2, 1),
    "SQUARED_DIFFERENCE": (2, 2, 1), "DENSIFY": (1, 1, 1), "EXP": (1, 1, 1), "LOG": (1, 1, 1),
    "SQRT": (1, 1, 1), "RSQRT": (1, 1, 1), "ABS": (1, 1, 1), "NEG": (1, 1, 1),
    "SLICE": (3, 3, 1), "SELECT": (3, 3, 1), "SELECT_V2": (3, 3, 1), "CAST": (1, 1, 1),
    "GATHER_ND": (2, 2, 1), "TILE": (2, 2, 1), "ARG_MAX": (2, 2, 1), "ARG_MIN": (2, 2, 1),
    "SCATTER_ND": (3, 3, 1), "EMBEDDING_LOOKUP": (2, 2, 1), "SPLIT": (2, 2, None),
    "SPLIT_V": (3, 3, None), "UNPACK": (1, 1, None), "PACK": (1, None, 1),
    "SPACE_TO_DEPTH": (1, 1, 1), "DEPTH_TO_SPACE": (1, 1, 1), "FLOOR": (1, 1, 1),
    "CEIL": (1, 1, 1), "ROUND": (1, 1, 1), "SIN": (1, 1, 1), "COS": (1, 1, 1),
    "SQUARE": (1, 1, 1), "SIGN": (1, 1, 1), "LOGICAL_AND": (2, 2, 1), "LOGICAL_OR": (2, 2, 1),
    "LOGICAL_NOT": (1, 1, 1), "FLOOR_DIV": (2, 2, 1), "FLOOR_MOD": (2, 2, 1), "POW": (2, 2, 1),
    "MIRROR_PAD": (2, 2, 1), "ZEROS_LIKE": (1, 1, 1), "SHAPE": (1, 1, 1), "RANK": (1, 1, 1),
    "FILL": (2, 2, 1), "RANGE": (3, 3, 1), "REVERSE_V2": (2, 2, 1), "TOPK_V2": (2, 2, 2),
    "CUMSUM": (2, 2, 1), "LOG_SOFTMAX": (1, 1, 1), "ELU": (1, 1, 1), "LEAKY_RELU": (1, 1, 1),
    "GELU": (1, 1, 1), "RELU_N1_TO_1": (1, 1, 1), "RELU_0_TO_1": (1, 1, 1),
    "BROADCAST_TO": (2, 2, 1), "WHERE": (1, 1, 1), "ONE_HOT": (4, 4, 1),
    "L2_NORMALIZATION": (1, 1, 1), "LOCAL_RESPONSE_NORMALIZATION": (1, 1, 1),
    "ADD_N": (1, None, 1), "SEGMENT_SUM": (2, 2, 1), "UNSORTED_SEGMENT_SUM": (3, 3, 1),
    "UNSORTED_SEGMENT_MAX": (3, 3, 1), "UNSORTED_SEGMENT_MIN": (3, 3, 1),
    "UNSORTED_SEGMENT_PROD": (3, 3, 1), "MATRIX_DIAG": (1, 1, 1), "MATRIX_SET_DIAG": (2, 2, 1),
    "REVERSE_SEQUENCE": (2, 2, 1), "UNIQUE": (1, 1, 2), "NON_MAX_SUPPRESSION_V4": (5, 5, 2),
    "NON_MAX_SUPPRESSION_V5": (6, 6, 3), "BUCKETIZE": (1, 1, 1), "BROADCAST_ARGS": (2, 2, 1),
    "RIGHT_SHIFT": (2, 2, 1), "BITWISE_XOR": (2, 2, 1), "ATAN2": (2, 2, 1), "REAL": (1, 1, 1),
    "IMAG": (1, 1, 1), "COMPLEX_ABS": (1, 1, 1), "RFFT2D": (2, 2, 1),
    "SPARSE_TO_DENSE": (4, 4, 1), "READ_VARIABLE": (1, 1, 1), "ASSIGN_VARIABLE": (2, 2, 0),
    "VAR_HANDLE": (0, 0, 1), "BITCAST": (1, 1, 1), "DYNAMIC_UPDATE_SLICE": (3, 3, 1),
    "FAKE_QUANT": (1, 1, 1), "SVDF": (3, 5, 1), "RANDOM_UNIFORM": (1, 1, 1),
    "RANDOM_STANDARD_NORMAL": (1, 1, 1), "MULTINOMIAL": (2, 2, 1),
}

_POSITIVE_OPTION = ("stride_w", "stride_h", "stride_d", "dilation_w_factor",
                    "dilation_h_factor", "dilation_d_factor", "filter_width", "filter_height",
                    "block_size")


def _elements(shape) -> int:
    """Element count, exact up to the absurd-size limit and capped beyond it, so a hostile
    shape of a million huge dimensions costs a million multiplications, not bignum blow-up."""
    if any(d == 0 for d in shape):
        return 0
    n = 1
    for d in shape:
        n *= d
        if n > MAX_TENSOR_BYTES * 8:
            return MAX_TENSOR_BYTES * 8 + 1
    return n


def verify(model: Model) -> None:
    """Raise :class:`ModelError` at the first fault found in ``model``."""
    if not model.subgraphs:
        raise ModelError("the model has no subgraphs", "subgraphs")
    if model.version != 3:
        raise ModelError(f"schema version {model.version} is not supported (expected 3)",
                         "version")
    for si, sg in enumerate(model.subgraphs):
        _verify_tensors(sg, si)
        _verify_graph(model, sg, si)
    _verify_calls(model)
    _verify_signatures(model)


def _verify_signatures(model: Model) -> None:
    """A signature maps names onto its subgraph's own inputs and outputs (that is how LiteRT's
    signature runner feeds and reads them)."""
    keys = set()
    for k, sd in enumerate(model.signature_defs):
        p = f"signature_defs[{k}] ({sd.key!r})"
        if sd.key in keys:
            raise ModelError("duplicate signature key", p)
        keys.add(sd.key)
        for side in ("inputs", "outputs"):
            allowed = {id(t) for t in getattr(sd.subgraph, side)}
            for name, t in getattr(sd, side).items():
                if id(t) not in allowed:
                    raise ModelError(f"{side[:-1]} {name!r} maps tensor {t.name!r}, which is not "
                                     f"one of the subgraph's {side}", f"{p}.{side}")


# --- tensors ---------------------------------------------------------------------------------

def _verify_tensors(sg: Subgraph, si: int) -> None:
    for ti, t in enumerate(sg.tensors):
        p = _TensorPath(si, ti, t)
        if t.is_variable and t.buffer is not None and t.buffer.nbytes:
            raise ModelError("variable tensors cannot carry a constant buffer", str(p))
        try:
            TensorType(t.dtype)
        except ValueError:
            raise ModelError(f"unknown tensor type {t.dtype}", p) from None
        for k, dim in enumerate(t.shape):
            if dim < 0:
                raise ModelError(f"negative dimension {dim} at shape[{k}] (shape {list(t.shape)})",
                                 p)
        if t.shape_signature is not None and len(t.shape_signature):
            if len(t.shape_signature) != len(t.shape):
                raise ModelError(f"shape_signature {list(t.shape_signature)} has rank "
                                 f"{len(t.shape_signature)} but shape {list(t.shape)} has rank "
                                 f"{len(t.shape)}", p)
            for k, (a, b) in enumerate(zip(t.shape_signature, t.shape)):
                if a < -1 or (a != -1 and a != b):
                    raise ModelError(f"shape_signature[{k}] = {a} disagrees with shape[{k}] = {b}",
                                     p)
        bits = ELEMENT_BITS.get(int(t.dtype))
        n = _elements(t.shape)
        if bits is not None and n * bits > MAX_TENSOR_BYTES * 8 or n > MAX_TENSOR_BYTES * 8:
            size = f"{n * bits // 8} bytes" if bits is not None else f"{n} elements"
            raise ModelError(f"shape {list(t.shape)} of {type_name(t.dtype)} describes {size}, "
                             "more than any device holds", p)
        if t.quantization is not None:
            _verify_quant(t, p)
        if t.sparsity is not None:
            _verify_sparsity(t, p)
        elif t.buffer is not None and t.buffer.nbytes:
            _verify_buffer_size(t, p)


class _TensorPath:
    """A tensor's path, formatted only when an error needs it (names can be long and there
    can be very many tensors)."""

    __slots__ = ("si", "ti", "t")

    def __init__(self, si: int, ti: int, t: Tensor):
        self.si, self.ti, self.t = si, ti, t

    def __str__(self) -> str:
        name = self.t.name if len(self.t.name) <= 80 else self.t.name[:77] + "..."
        return f"subgraphs[{self.si}].tensors[{self.ti}] ({name!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _Lazy:
    """``base + suffix``, formatted only on error."""

    __slots__ = ("base", "suffix")

    def __init__(self, base, suffix: str):
        self.base, self.suffix = base, suffix

    def __str__(self) -> str:
        return f"{self.base}{self.suffix}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def _verify_buffer_size(t: Tensor, p: str) -> None:
    nbytes = t.buffer.nbytes
    n = math.prod(t.shape)
    if t.dtype == TensorType.STRING:
        _verify_string_buffer(t.buffer.data, n, p)
        return
    bits = ELEMENT_BITS.get(int(t.dtype))
    if bits is None:  # RESOURCE / VARIANT: opaque payloads
        return
    need = (n * bits + 7) // 8
    if nbytes != need:
        raise ModelError(f"buffer holds {nbytes} bytes but shape {list(t.shape)} of "
                         f"{type_name(t.dtype)} needs {need}", f"{p}.buffer")


def _verify_string_buffer(data: np.ndarray, n: int, p: str) -> None:
    size = data.size
    if size < 4:
        raise ModelError(f"string buffer of {size} bytes has no count", f"{p}.buffer")
    count = struct.unpack_from("<i", data, 0)[0]
    if count != n:
        raise ModelError(f"string buffer holds {count} strings but the shape needs {n}",
                         f"{p}.buffer")
    header = 4 * (count + 2)
    if header > size:
        raise ModelError(f"string buffer of {size} bytes is too small for {count} offsets",
                         f"{p}.buffer")
    offs = np.frombuffer(data, dtype="<i4", count=count + 1, offset=4).astype(np.int64)
    if offs[0] != header or offs[-1] != size or np.any(np.diff(offs) < 0):
        raise ModelError("string buffer offsets are not increasing from the header to the end "
                         "of the buffer", f"{p}.buffer")


def _verify_quant(t: Tensor, p: str) -> None:
    q = t.quantization
    qp = _Lazy(p, ".quantization")
    scale, zp = q.scale, q.zero_point
    ns, nz = scale.size, zp.size
    if ns != nz:
        raise ModelError(f"{ns} scales but {nz} zero points", qp)
    if q.min is not None and q.max is not None and q.min.size != q.max.size:
        raise ModelError(f"{q.min.size} min values but {q.max.size} max values", qp)
    if ns == 0:
        return
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        bad = int(np.flatnonzero(~(np.isfinite(scale) & (scale > 0)))[0])
        raise ModelError(f"scale[{bad}] = {float(scale[bad])!r} must be finite and > 0", qp)
    rng = _ZP_RANGE.get(TensorType(t.dtype)) if t.dtype in TensorType._value2member_map_ else None
    if rng is not None and (zp.min() < rng[0] or zp.max() > rng[1]):
        raise ModelError(f"zero point outside the {type_name(t.dtype)} range {rng}", qp)
    if ns > 1:
        rank = len(t.shape)
        if not 0 <= q.quantized_dimension < rank:
            raise ModelError(f"quantized_dimension {q.quantized_dimension} is outside rank "
                             f"{rank}", qp)
        if t.shape[q.quantized_dimension] != ns:
            raise ModelError(f"{ns} per-channel scales but dimension {q.quantized_dimension} "
                             f"has size {t.shape[q.quantized_dimension]}", qp)


def _verify_sparsity(t: Tensor, p: str) -> None:
    sp = t.sparsity
    sp_p = _Lazy(p, ".sparsity")
    rank = len(t.shape)
    nblocks = len(sp.block_map)
    order = list(sp.traversal_order)
    n = rank + nblocks
    if sorted(order) != list(range(n)):
        raise ModelError(f"traversal_order {order} is not a permutation of 0..{n - 1}", sp_p)
    if len(sp.dim_metadata) != n:
        raise ModelError(f"{len(sp.dim_metadata)} dim_metadata entries for {n} dimensions",
                         sp_p)
    if any(not 0 <= b < rank for b in sp.block_map):
        raise ModelError(f"block_map {list(sp.block_map)} refers past rank {rank}", sp_p)
    # Dense size of each of the n traversal dimensions.
    sizes = list(t.shape)
    for bi, d in enumerate(sp.block_map):
        bs = sp.dim_metadata[rank + bi].dense_size
        if bs <= 0 or sizes[d] % bs:
            raise ModelError(f"block size {bs} does not divide dimension {d} of size "
                             f"{t.shape[d]}", sp_p)
        sizes[d] //= bs
    sizes += [sp.dim_metadata[rank + bi].dense_size for bi in range(nblocks)]
    count = 1
    for level, dm in enumerate(sp.dim_metadata):
        lp = f"{sp_p}.dim_metadata[{level}]"
        size = sizes[order[level]]
        if dm.format == 0:  # DENSE
            if dm.dense_size != size:
                raise ModelError(f"dense_size {dm.dense_size} != dimension size {size}", lp)
            count *= size
        else:
            if dm.array_segments is None or dm.array_indices is None:
                raise ModelError("SPARSE_CSR dimension without segments or indices", lp)
            seg = dm.array_segments[1].astype(np.int64)
            idx = dm.array_indices[1].astype(np.int64)
            if seg.size != count + 1 or seg[0] != 0 or np.any(np.diff(seg) < 0) or \
                    seg[-1] != idx.size:
                raise ModelError("array_segments must rise from 0 to the number of indices, "
                                 "one segment per parent element", lp)
            if idx.size and (idx.min() < 0 or idx.max() >= size):
                raise ModelError(f"array_indices outside 0..{size - 1}", lp)
            count = int(idx.size)
    bits = ELEMENT_BITS.get(int(t.dtype))
    if bits is not None and t.buffer is not None:
        need = (count * bits + 7) // 8
        if t.buffer.nbytes != need:
            raise ModelError(f"sparse buffer holds {t.buffer.nbytes} bytes but the metadata "
                             f"describes {count} values ({need} bytes)", f"{p}.buffer")


# --- operators and the graph -----------------------------------------------------------------

def _op_path(si: int, oi: int, op: Operator) -> str:
    return f"subgraphs[{si}].operators[{oi}] ({op.name})"


def _verify_graph(model: Model, sg: Subgraph, si: int) -> None:
    available = {id(t) for t in sg.inputs}
    for t in sg.tensors:
        if t.is_variable or (t.buffer is not None and t.buffer.nbytes) or \
                _elements(t.shape) == 0 and not t.shape_signature:
            available.add(id(t))
    inputs = {id(t) for t in sg.inputs}
    produced: dict[int, str] = {}
    for oi, op in enumerate(sg.operators):
        p = _op_path(si, oi, op)
        _verify_op_options(op, p, len(model.subgraphs))
        ar = _ARITY.get(op.name) if op.code != BuiltinOperator.CUSTOM else None
        if ar is not None:
            lo, hi, nout = ar
            if len(op.inputs) < lo or (hi is not None and len(op.inputs) > hi):
                want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else 'n'}"
                raise ModelError(f"has {len(op.inputs)} inputs, expected {want}", p)
            if nout is not None and len(op.outputs) != nout:
                raise ModelError(f"has {len(op.outputs)} outputs, expected {nout}", p)
            for k in range(lo):  # the first `lo` inputs are required, not omitted (-1)
                if op.inputs[k] is None:
                    raise ModelError("required input is omitted (-1)", f"{p} input {k}")
        for k, t in enumerate(op.inputs):
            if t is None:
                continue
            if t.sparsity is not None and (op.name, k) not in _SPARSE_READERS \
                    and op.code != BuiltinOperator.CUSTOM:
                raise ModelError(f"reads sparse tensor {t.name!r}, which only DENSIFY and "
                                 "FULLY_CONNECTED weights read (its buffer holds the "
                                 "compressed values)", f"{p} input {k}")
            if id(t) not in available:
                where = produced.get(id(t))
                raise ModelError(
                    f"reads tensor {t.name!r} before any operator produces it" if where is None
                    else f"reads tensor {t.name!r} which is produced later (cycle or bad order)",
                    f"{p} input {k}")
        for k, t in enumerate(op.outputs):
            if t is None:
                continue
            if id(t) in produced:
                raise ModelError(f"writes tensor {t.name!r} already written by {produced[id(t)]}",
                                 f"{p} output {k}")
            if t.buffer is not None and t.buffer.nbytes and not t.is_variable:
                raise ModelError(f"writes into constant tensor {t.name!r}", f"{p} output {k}")
            if id(t) in inputs:
                raise ModelError(f"writes into subgraph input {t.name!r}", f"{p} output {k}")
            produced[id(t)] = p
            available.add(id(t))
        if op.code == BuiltinOperator.CUSTOM and not op.opcode.custom_code:
            raise ModelError("custom operator without a name", p)
    for k, t in enumerate(sg.outputs):
        if id(t) not in available:
            raise ModelError(f"output tensor {t.name!r} is never produced",
                             f"subgraphs[{si}].outputs[{k}]")


def _verify_op_options(op: Operator, p: str, n_subgraphs: int) -> None:
    want = expected_options(op.code)
    # Kernels read ``options``, or ``options2`` (the StableHLO-era union) when it is absent.
    effective = op.options if op.options is not None else op.options2
    if effective is None and want is not None and want in _OPTIONS_WITH_SIZES:
        raise ModelError(f"{op.name} needs its {want} (strides, filter sizes) but has none", p)
    if effective is not None and want is not None and type(effective).__name__ != want:
        raise ModelError(f"carries {type(effective).__name__} but {op.name} takes {want}", p)
    for attr in ("options", "options2"):
        opts = getattr(op, attr)
        if opts is None:
            continue
        for f in dataclasses.fields(opts):
            v = getattr(opts, f.name)
            if f.name in _POSITIVE_OPTION and isinstance(v, int) and v <= 0:
                raise ModelError(f"{f.name} = {v} must be >= 1", f"{p}.{attr}.{f.name}")
            if f.name.endswith("subgraph_index") and isinstance(v, int) and \
                    not 0 <= v < n_subgraphs:
                raise ModelError(f"{f.name} {v} is out of range (0..{n_subgraphs - 1})",
                                 f"{p}.{attr}.{f.name}")
            if f.name.endswith("subgraph_indices") and v is not None:
                for k, si in enumerate(v):
                    if not 0 <= int(si) < n_subgraphs:
                        raise ModelError(f"{f.name}[{k}] {si} is out of range "
                                         f"(0..{n_subgraphs - 1})", f"{p}.{attr}.{f.name}")
    if op.name in ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND") and len(op.inputs) > 1:
        block = op.inputs[1]
        if block is not None and block.data is not None and block.numpy_dtype is not None:
            vals = np.asarray(block.data).reshape(-1)
            if vals.size and vals.min() <= 0:
                raise ModelError(f"block shape {vals.tolist()} must be positive", f"{p} input 1")


def _options_with_sizes() -> set[str]:
    from .ops import OPTIONS

    return {name for name, cls in OPTIONS.items()
            if any(f.name in _POSITIVE_OPTION for f in dataclasses.fields(cls))}


_OPTIONS_WITH_SIZES = _options_with_sizes()


def called(op: Operator) -> list[tuple[str, int]]:
    """(option field, subgraph index) of every subgraph ``op`` calls: fields named
    ``*subgraph_index`` (WHILE's cond and body, IF's branches, CALL_ONCE's init,
    STABLEHLO_COMPOSITE's decomposition, the body of a reduce window or scatter) and the
    entries of ``*subgraph_indices`` (STABLEHLO_CASE's branches, as ``name[k]``)."""
    out = []
    for attr in ("options", "options2"):
        opts = getattr(op, attr)
        if opts is not None:
            for f in dataclasses.fields(opts):
                v = getattr(opts, f.name)
                if f.name.endswith("subgraph_index") and v is not None:
                    out.append((f.name, int(v)))
                elif f.name.endswith("subgraph_indices") and v is not None:
                    out.extend((f"{f.name}[{k}]", int(si)) for k, si in enumerate(v))
    return out


def _verify_calls(model: Model) -> None:
    n = len(model.subgraphs)
    edges: dict[int, list[tuple[int, str]]] = {i: [] for i in range(n)}
    for si, oi, op in model.iter_ops():
        p = _op_path(si, oi, op)
        calls = called(op)
        for _, callee in calls:
            edges[si].append((callee, p))
        _verify_call_arity(model, op, dict(calls), p)
    # Depth-first search for a cycle in the call graph (a subgraph reaching itself).
    state = [0] * n  # 0 new, 1 on stack, 2 done
    for start in range(n):
        if state[start]:
            continue
        stack = [(start, iter(edges[start]))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            callee, p = nxt
            if state[callee] == 1:
                raise ModelError(f"calls subgraph {callee}, which is already on the call path "
                                 "(recursive subgraphs never terminate)", p)
            if state[callee] == 0:
                state[callee] = 1
                stack.append((callee, iter(edges[callee])))


def _verify_call_arity(model: Model, op: Operator, calls: dict[str, int], p: str) -> None:
    sgs = model.subgraphs
    nin, nout = len(op.inputs), len(op.outputs)
    if op.name == "WHILE" and {"cond_subgraph_index", "body_subgraph_index"} <= calls.keys():
        if calls["cond_subgraph_index"] == calls["body_subgraph_index"]:
            raise ModelError("WHILE uses the same subgraph as condition and body", p)
        cond, body = sgs[calls["cond_subgraph_index"]], sgs[calls["body_subgraph_index"]]
        if len(cond.inputs) != nin or len(body.inputs) != nin or len(body.outputs) != nin \
                or nout != nin or len(cond.outputs) != 1:
            raise ModelError(f"WHILE with {nin} inputs/{nout} outputs does not match its cond "
                             f"({len(cond.inputs)} in/{len(cond.outputs)} out) and body "
                             f"({len(body.inputs)} in/{len(body.outputs)} out) subgraphs", p)
    elif op.name == "IF" and {"then_subgraph_index", "else_subgraph_index"} <= calls.keys():
        for key in ("then_subgraph_index", "else_subgraph_index"):
            b = sgs[calls[key]]
            if len(b.inputs) != nin - 1 or len(b.outputs) != nout:
                raise ModelError(f"IF with {nin - 1} branch inputs/{nout} outputs does not match "
                                 f"its {key[:-15]} branch ({len(b.inputs)} in/{len(b.outputs)} "
                                 "out)", p)
    elif op.name == "STABLEHLO_CASE":
        for key, si in calls.items():
            b = sgs[si]
            if len(b.inputs) != nin - 1 or len(b.outputs) != nout:
                raise ModelError(f"STABLEHLO_CASE with {nin - 1} branch inputs/{nout} outputs "
                                 f"does not match its branch {key} = subgraph {si} "
                                 f"({len(b.inputs)} in/{len(b.outputs)} out)", p)
    elif op.name == "STABLEHLO_COMPOSITE" and "decomposition_subgraph_index" in calls:
        b = sgs[calls["decomposition_subgraph_index"]]
        if len(b.inputs) != nin or len(b.outputs) != nout:
            raise ModelError(f"STABLEHLO_COMPOSITE with {nin} inputs/{nout} outputs does not "
                             f"match its decomposition subgraph ({len(b.inputs)} in/"
                             f"{len(b.outputs)} out)", p)
    elif op.name == "CALL_ONCE" and "init_subgraph_index" in calls:
        b = sgs[calls["init_subgraph_index"]]
        if b.inputs or b.outputs:
            raise ModelError("CALL_ONCE's init subgraph must have no inputs or outputs", p)
