"""The model IR: one typed, editable, in-memory graph of a ``.tflite`` model.

Objects reference each other directly (an operator holds its input :class:`Tensor` objects, a
tensor its :class:`Buffer`), so passes edit the graph without index bookkeeping; the writer
assigns indices. Constant data is held as numpy views of the loaded file (zero-copy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from workbench.errors import ModelError

from .ops import (
    ELEMENT_BITS,
    NUMPY_DTYPE,
    BuiltinOperator,
    TensorType,
    numpy_dtype,
    op_name,
    tensor_type_of,
    type_name,
)

_EMPTY = np.zeros(0, dtype=np.uint8)
_EMPTY.flags.writeable = False


@dataclass(eq=False)
class Buffer:
    """Raw bytes of one buffer: a read-only ``uint8`` numpy array (a view of the file when
    loaded). ``data`` is empty for buffers of non-constant tensors."""

    data: np.ndarray = field(default_factory=lambda: _EMPTY)

    def __post_init__(self):
        self.data = as_bytes_array(self.data)

    @property
    def nbytes(self) -> int:
        return int(self.data.size)

    def __repr__(self) -> str:
        return f"Buffer({self.nbytes} bytes)"


def pack_strings(values) -> np.ndarray:
    """TFLite's string-tensor buffer for ``values`` (any array-like of ``bytes``/``str``, read
    in C order; ``str`` is UTF-8 encoded): int32 count, count + 1 int32 offsets from the buffer
    start (the last one is the buffer size), then the bytes, as ``uint8``."""
    items = [to_bytes_item(v) for v in np.asarray(values, dtype=object).reshape(-1).tolist()]
    n = len(items)
    offsets = np.empty(n + 2, np.int64)
    offsets[0] = n
    offsets[1] = 4 * (n + 2)
    if n:
        offsets[2:] = offsets[1] + np.cumsum([len(b) for b in items])
    if offsets[-1] > 2**31 - 1:
        raise ModelError(f"{n} strings of {int(offsets[-1])} bytes exceed TFLite's int32 "
                         "string-buffer offsets")
    head = offsets.astype("<i4").tobytes()
    return np.frombuffer(head + b"".join(items), dtype=np.uint8)


def to_bytes_item(v) -> bytes:
    """One element of a string tensor as ``bytes`` (``str`` UTF-8 encoded), as LiteRT's Python
    API takes them; anything else is refused (``TypeError``)."""
    if isinstance(v, bytes):
        return bytes(v)
    if isinstance(v, str):
        return v.encode("utf-8", errors="surrogateescape")
    raise TypeError(f"a string tensor element must be bytes or str, not {type(v).__name__}")


def unpack_strings(data: np.ndarray, shape) -> np.ndarray:
    """The strings of a TFLite string buffer as a numpy ``object`` array of ``bytes`` shaped
    ``shape``. The layout must be valid (``verify`` checks it when a model is loaded); a
    buffer that is not raises :class:`ModelError`."""
    data = as_bytes_array(data)
    n = math.prod(shape)
    size = data.size
    if size < 4:
        raise ModelError(f"string buffer of {size} bytes has no count")
    count = int(data[:4].view("<i4")[0])
    if count != n or 4 * (count + 2) > size:
        raise ModelError(f"string buffer of {size} bytes does not hold {n} strings")
    offs = data[4:4 * (count + 2)].view("<i4").astype(np.int64)
    if offs[0] != 4 * (count + 2) or offs[-1] != size or np.any(np.diff(offs) < 0):
        raise ModelError("string buffer offsets are not increasing from the header to the end "
                         "of the buffer")
    raw = data.tobytes()
    out = np.empty(n, dtype=object)
    for k in range(n):
        out[k] = raw[offs[k]:offs[k + 1]]
    return out.reshape(tuple(shape))


def as_bytes_array(data) -> np.ndarray:
    """A 1-D ``uint8`` view of bytes-like or numpy data (no copy when possible)."""
    if isinstance(data, np.ndarray):
        if data.dtype == np.uint8 and data.ndim == 1:
            return data
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


@dataclass(eq=False)
class QuantParams:
    """Affine quantization ``real = scale * (q - zero_point)``; per-channel along
    ``quantized_dimension`` when ``scale`` has more than one element."""

    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    quantized_dimension: int = 0
    #: Quantization details union: ``(table name, {field: value})``, e.g.
    #: ``("CustomQuantization", {"custom": uint8 array})`` or ``("BlockwiseQuantization", {...})``.
    details: Any = None

    def __post_init__(self):
        # scale / zero_point are always arrays (empty when absent), so callers never test None.
        self.scale = np.zeros(0, np.float32) if self.scale is None else \
            np.asarray(self.scale, dtype=np.float32).reshape(-1)
        self.zero_point = np.zeros(0, np.int64) if self.zero_point is None else \
            np.asarray(self.zero_point, dtype=np.int64).reshape(-1)

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def is_empty(self) -> bool:
        return all(
            a is None or np.size(a) == 0 for a in (self.scale, self.zero_point, self.min, self.max)
        ) and self.details is None

    def __repr__(self) -> str:
        if self.scale.size == 0:
            return "QuantParams(none)"
        if self.scale.size == 1:
            zp = int(self.zero_point[0]) if self.zero_point.size else 0
            return f"QuantParams(scale={float(self.scale[0]):.6g}, zero_point={zp})"
        return f"QuantParams(per-channel x{self.scale.size}, axis={self.quantized_dimension})"


@dataclass(eq=False)
class DimensionMetadata:
    """Sparsity metadata of one traversal dimension (DENSE or SPARSE_CSR)."""

    format: int = 0
    dense_size: int = 0
    #: ``(vector type name, int array)``, e.g. ``("Int32Vector", array)``, or None.
    array_segments: tuple[str, np.ndarray] | None = None
    array_indices: tuple[str, np.ndarray] | None = None


@dataclass(eq=False)
class Sparsity:
    traversal_order: tuple[int, ...] = ()
    block_map: tuple[int, ...] = ()
    dim_metadata: list[DimensionMetadata] = field(default_factory=list)


@dataclass(eq=False)
class Tensor:
    """One tensor of a subgraph."""

    name: str = ""
    shape: tuple[int, ...] = ()
    dtype: int = TensorType.FLOAT32
    buffer: Buffer | None = None
    quantization: QuantParams | None = None
    is_variable: bool = False
    shape_signature: tuple[int, ...] | None = None
    sparsity: Sparsity | None = None
    has_rank: bool = False
    #: Raw decoded ``variant_tensors`` entries ({"shape": ..., "type": ...}), kept for round trips.
    variant_tensors: list | None = None

    @property
    def is_constant(self) -> bool:
        return self.buffer is not None and self.buffer.nbytes > 0 and not self.is_variable

    @property
    def type_name(self) -> str:
        return type_name(self.dtype)

    @property
    def numpy_dtype(self) -> np.dtype | None:
        return NUMPY_DTYPE.get(int(self.dtype))

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes the dense tensor occupies at run time (0 if its type has no fixed size)."""
        bits = ELEMENT_BITS.get(int(self.dtype))
        if bits is None:
            return self.buffer.nbytes if self.buffer is not None else 0
        return (self.num_elements * bits + 7) // 8

    @property
    def strings(self) -> np.ndarray | None:
        """A STRING constant's value: a numpy ``object`` array of ``bytes``, shaped (as LiteRT's
        ``get_tensor`` returns it); None if the tensor is not a STRING or has no data."""
        if self.dtype != TensorType.STRING or self.buffer is None or self.buffer.nbytes == 0:
            return None
        return unpack_strings(self.buffer.data, self.shape)

    @property
    def data(self) -> np.ndarray | None:
        """The constant value as a read-only numpy view of the buffer, shaped; None if the
        tensor has no data. Sparse and sub-byte tensors return their raw ``uint8`` bytes, as do
        STRING tensors (their packed buffer; see :attr:`strings` for the values)."""
        if self.buffer is None or self.buffer.nbytes == 0:
            return None
        raw = self.buffer.data
        dt = self.numpy_dtype
        if dt is None or self.sparsity is not None:
            return raw
        arr = np.frombuffer(raw, dtype=dt) if raw.size % dt.itemsize == 0 else raw
        if arr.size == self.num_elements:
            return arr.reshape(self.shape)
        return arr

    def __repr__(self) -> str:
        q = f", {self.quantization!r}" if self.quantization and not self.quantization.is_empty \
            else ""
        c = ", const" if self.is_constant else ""
        return f"Tensor({self.name!r}, {list(self.shape)}, {self.type_name}{q}{c})"


@dataclass(eq=False)
class OpCode:
    """An entry of the model's operator-code table: a builtin code or a custom name."""

    builtin_code: int = BuiltinOperator.CUSTOM
    custom_code: str | None = None
    version: int = 1

    @property
    def name(self) -> str:
        if self.builtin_code == BuiltinOperator.CUSTOM:
            return self.custom_code or "CUSTOM"
        return op_name(self.builtin_code)

    def key(self) -> tuple:
        return (int(self.builtin_code), self.custom_code, int(self.version))

    def __repr__(self) -> str:
        return f"OpCode({self.name}, v{self.version})"


@dataclass(eq=False)
class Operator:
    """One operator node. ``inputs`` entries are None for omitted optional inputs (-1)."""

    opcode: OpCode
    inputs: list[Tensor | None] = field(default_factory=list)
    outputs: list[Tensor | None] = field(default_factory=list)
    #: Typed options (a frozen dataclass from :mod:`workbench.ir.ops`) or None.
    options: Any = None
    #: Typed ``BuiltinOptions2`` options (StableHLO ops) or None.
    options2: Any = None
    custom_options: np.ndarray | None = None
    custom_options_format: int = 0
    mutating_variable_inputs: tuple[bool, ...] = ()
    intermediates: list[Tensor] = field(default_factory=list)
    debug_metadata_index: int = -1

    @property
    def code(self) -> int:
        return int(self.opcode.builtin_code)

    @property
    def name(self) -> str:
        return self.opcode.name

    @property
    def version(self) -> int:
        return self.opcode.version

    def __repr__(self) -> str:
        ins = ", ".join("-" if t is None else t.name for t in self.inputs)
        outs = ", ".join("-" if t is None else t.name for t in self.outputs)
        return f"Operator({self.name}: [{ins}] -> [{outs}])"


@dataclass(eq=False)
class Subgraph:
    name: str = ""
    tensors: list[Tensor] = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    operators: list[Operator] = field(default_factory=list)
    debug_metadata_index: int = -1

    # -- editing ----------------------------------------------------------------------------
    def add_tensor(self, tensor: Tensor) -> Tensor:
        """Append ``tensor`` (if not already present) and return it."""
        if not any(t is tensor for t in self.tensors):
            self.tensors.append(tensor)
        return tensor

    def new_tensor(self, name: str, shape, dtype=np.float32, data=None,
                   quantization: QuantParams | None = None) -> Tensor:
        """Create and add a tensor; ``data`` (numpy) makes it a constant. A STRING tensor
        (``dtype`` ``object``/``bytes``/``str`` or ``TensorType.STRING``) takes its values as
        ``bytes``/``str`` and stores TFLite's packed string buffer."""
        t = tensor_type_of(dtype) if not isinstance(dtype, (int, TensorType)) else dtype
        buf = None
        if data is not None and t == TensorType.STRING:
            arr = np.asarray(data, dtype=object)
            if arr.shape != tuple(shape):
                arr = arr.reshape(shape)
            buf = Buffer(pack_strings(arr).copy())
        elif data is not None:
            arr = np.ascontiguousarray(np.asarray(data, dtype=numpy_dtype(t)))
            if arr.shape != tuple(shape):
                arr = arr.reshape(shape)
            buf = Buffer(arr.reshape(-1).view(np.uint8).copy())
        return self.add_tensor(Tensor(name=name, shape=tuple(int(d) for d in shape), dtype=t,
                                      buffer=buf, quantization=quantization))

    def add_operator(self, op: Operator, index: int | None = None) -> Operator:
        """Insert ``op`` (at ``index``, default: the end); its tensors are added too."""
        for t in [*op.inputs, *op.outputs, *op.intermediates]:
            if t is not None:
                self.add_tensor(t)
        if index is None:
            self.operators.append(op)
        else:
            self.operators.insert(index, op)
        return op

    def remove_operator(self, op: Operator) -> None:
        self.operators = [o for o in self.operators if o is not op]

    def replace_operator(self, old: Operator, new: Operator | list[Operator]) -> None:
        """Replace ``old`` by one or more operators at its position."""
        new_ops = new if isinstance(new, list) else [new]
        idx = self.index_of(old)
        for o in new_ops:
            for t in [*o.inputs, *o.outputs, *o.intermediates]:
                if t is not None:
                    self.add_tensor(t)
        self.operators[idx:idx + 1] = new_ops

    def replace_tensor_uses(self, old: Tensor, new: Tensor) -> None:
        """Make every consumer (and the subgraph outputs) read ``new`` instead of ``old``."""
        for o in self.operators:
            o.inputs = [new if t is old else t for t in o.inputs]
        self.outputs = [new if t is old else t for t in self.outputs]

    def remove_unused_tensors(self) -> int:
        """Drop tensors no operator or subgraph input/output references; return how many."""
        used = {id(t) for t in [*self.inputs, *self.outputs]}
        for o in self.operators:
            used.update(id(t) for t in [*o.inputs, *o.outputs, *o.intermediates] if t is not None)
        before = len(self.tensors)
        self.tensors = [t for t in self.tensors if id(t) in used]
        return before - len(self.tensors)

    def index_of(self, op: Operator) -> int:
        for i, o in enumerate(self.operators):
            if o is op:
                return i
        raise ValueError("operator is not in this subgraph")

    def tensor_index(self, tensor: Tensor) -> int:
        for i, t in enumerate(self.tensors):
            if t is tensor:
                return i
        raise ValueError(f"tensor {tensor.name!r} is not in this subgraph")

    # -- queries ----------------------------------------------------------------------------
    def producers(self) -> dict[int, Operator]:
        """id(tensor) -> the operator writing it."""
        return {id(t): o for o in self.operators for t in o.outputs if t is not None}

    def consumers(self) -> dict[int, list[Operator]]:
        out: dict[int, list[Operator]] = {}
        for o in self.operators:
            for t in o.inputs:
                if t is not None:
                    out.setdefault(id(t), []).append(o)
        return out

    def tensor(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)

    def __repr__(self) -> str:
        return (f"Subgraph({self.name!r}, {len(self.operators)} ops, "
                f"{len(self.tensors)} tensors)")


@dataclass(eq=False)
class SignatureDef:
    """A named entry point: ``inputs``/``outputs`` map signature names to subgraph tensors."""

    key: str
    subgraph: Subgraph
    inputs: dict[str, Tensor] = field(default_factory=dict)
    outputs: dict[str, Tensor] = field(default_factory=dict)


@dataclass(eq=False)
class Metadata:
    name: str
    buffer: Buffer

    @property
    def data(self) -> bytes:
        return self.buffer.data.tobytes()


@dataclass(eq=False)
class Model:
    """A whole model: subgraphs (0 is the main graph), buffers, metadata, signatures."""

    subgraphs: list[Subgraph] = field(default_factory=list)
    buffers: list[Buffer] = field(default_factory=list)
    operator_codes: list[OpCode] = field(default_factory=list)
    metadata: list[Metadata] = field(default_factory=list)
    signature_defs: list[SignatureDef] = field(default_factory=list)
    description: str | None = None
    version: int = 3
    #: Size in bytes of the file it was loaded from (0 if built in memory).
    file_size: int = 0
    #: Where it was loaded from, if from a file.
    source: str | None = None
    #: Kept alive so zero-copy views stay valid (mmap or bytes).
    _backing: Any = field(default=None, repr=False)

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def iter_ops(self) -> Iterator[tuple[int, int, Operator]]:
        for si, sg in enumerate(self.subgraphs):
            for oi, op in enumerate(sg.operators):
                yield si, oi, op

    def opcode(self, builtin_code: int | None = None, custom_code: str | None = None,
               version: int = 1) -> OpCode:
        """Find or add the operator-code entry for an op (used when passes create ops)."""
        code = BuiltinOperator.CUSTOM if builtin_code is None else int(builtin_code)
        for oc in self.operator_codes:
            if oc.builtin_code == code and oc.custom_code == custom_code and \
                    oc.version == version:
                return oc
        oc = OpCode(code, custom_code, version)
        self.operator_codes.append(oc)
        return oc

    def metadata_dict(self) -> dict[str, bytes]:
        return {m.name: m.data for m in self.metadata}

    @property
    def weight_bytes(self) -> int:
        seen, total = set(), 0
        for sg in self.subgraphs:
            for t in sg.tensors:
                if t.is_constant and id(t.buffer) not in seen:
                    seen.add(id(t.buffer))
                    total += t.buffer.nbytes
        return total

    # -- I/O (implemented in workbench.schema.writer) --------------------------------------
    def to_bytes(self, *, use_buffer_offsets: bool | None = None) -> bytes:
        """Serialize to ``.tflite`` bytes (validated first)."""
        from workbench.schema.writer import write_bytes

        return write_bytes(self, use_buffer_offsets=use_buffer_offsets)

    def save(self, path, *, overwrite: bool = False, use_buffer_offsets: bool | None = None) -> str:
        """Write atomically (temp file in the same directory, then rename).

        Parameters
        ----------
        overwrite
            Replace an existing file. By default an existing file is never overwritten
            (``FileExistsError``): nothing a user made is replaced silently.
        use_buffer_offsets
            Store buffers after the FlatBuffer with offset/size (the >2 GB layout). Default:
            only when the model needs it.
        """
        from workbench.schema.writer import save

        return save(self, path, overwrite=overwrite, use_buffer_offsets=use_buffer_offsets)

    def validate(self) -> None:
        """Run every structural and semantic check; raise ModelError at the first fault."""
        from .verify import verify

        verify(self)

    def summary(self):
        """Per-operator DataFrame (see :func:`workbench.analysis.summary.summary`)."""
        from workbench.analysis.summary import summary

        return summary(self)

    def _repr_html_(self) -> str:
        from workbench.analysis.summary import summary_html

        return summary_html(self)

    def __repr__(self) -> str:
        n_ops = sum(len(s.operators) for s in self.subgraphs)
        return (f"Model({len(self.subgraphs)} subgraphs, {n_ops} ops, "
                f"{self.weight_bytes / 1e6:.2f} MB weights)")


def path_of(model: Model, si: int, oi: int | None = None) -> str:
    """``subgraphs[0].operators[12] (CONV_2D)``-style location string."""
    if oi is None:
        return f"subgraphs[{si}]"
    op = model.subgraphs[si].operators[oi]
    return f"subgraphs[{si}].operators[{oi}] ({op.name})"


__all__ = [
    "Buffer", "QuantParams", "DimensionMetadata", "Sparsity", "Tensor", "OpCode", "Operator",
    "Subgraph", "SignatureDef", "Metadata", "Model", "ModelError", "path_of",
]
