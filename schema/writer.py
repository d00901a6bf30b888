"""IR :class:`~workbench.ir.graph.Model` -> ``.tflite`` bytes, through the generated bindings.

The IR is first lowered to a tree of plain values (``{field: value}`` per table, indices assigned
here), then encoded table by table with the flatc-generated ``<Table>Start/Add<Field>/End``
functions of :mod:`workbench.schema.schema_generated`. The output is deterministic: the same IR
always gives the same bytes, so re-saving a file we wrote is byte-identical.

Buffers are 16-byte aligned (the schema's ``force_align``). Models whose buffers would push the
FlatBuffer past its 2 GiB limit are written in the large-model layout: buffer bytes follow the
FlatBuffer and ``Buffer.offset``/``size`` locate them.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np

from workbench._io import atomic_write
from workbench.errors import ModelError
from workbench.ir import graph as g
from workbench.ir.ops import (
    PLACEHOLDER_FOR_GREATER_OP_CODES,
    options_table_name,
    options_to_dict,
    union_of,
)

from . import schema_generated as gen
from .fbs import load_schema

_FLATBUFFER_LIMIT = 2**31 - 1
_NP = {"bool": np.bool_, "byte": np.int8, "ubyte": np.uint8, "short": np.int16,
       "ushort": np.uint16, "int": np.int32, "uint": np.uint32, "long": np.int64,
       "ulong": np.uint64, "float": np.float32, "double": np.float64}
_BUFFER_ALIGN = 16


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


class _Encoder:
    def __init__(self, size_hint: int):
        self.b = flatbuffers.Builder(max(1024, size_hint))
        self.s = load_schema()

    def table(self, tname: str, values: dict) -> int:
        """Encode one table (children first) and return its offset."""
        b = self.b
        # Deprecated fields have no builder functions: they are never written.
        fields = [f for f in self.s.tables[tname].fields if not f.deprecated]
        refs = {}
        for f in fields:
            v = values.get(f.name)
            if v is None or f.kind in ("scalar", "enum", "union_type"):
                continue
            if f.kind == "string":
                refs[f.name] = b.CreateString(v, errors="surrogateescape")
            elif f.kind == "table":
                refs[f.name] = self.table(f.type, v)
            elif f.kind == "union":
                member, vals = v
                refs[f.name] = self.table(member, vals)
            elif f.kind == "vector":
                refs[f.name] = self.vector(tname, f, v)
        getattr(gen, f"{tname}Start")(b)
        for f in fields:
            v = values.get(f.name)
            if f.kind == "union_type":
                u = values.get(f.name[: -len("_type")])
                if u is not None:
                    tag = self.s.unions[f.type].members.index(u[0]) + 1
                    getattr(gen, f"{tname}Add{_camel(f.name)}")(b, tag)
                continue
            if v is None:
                continue
            add = getattr(gen, f"{tname}Add{_camel(f.name)}")
            if f.kind in ("scalar", "enum"):
                add(b, v.item() if isinstance(v, np.generic) else v)
            else:
                add(b, refs[f.name])
        return getattr(gen, f"{tname}End")(b)

    def vector(self, tname: str, f, v) -> int:
        b = self.b
        if f.elem_kind in ("scalar", "enum"):
            base = f.type if f.elem_kind == "scalar" else self.s.enums[f.type].base
            arr = np.ascontiguousarray(np.asarray(v, dtype=_NP[base]))
            if tname == "Buffer" and f.name == "data":
                return self.aligned_bytes(arr)
            return b.CreateNumpyVector(arr.reshape(-1))
        if f.elem_kind == "string":
            offs = [b.CreateString(x, errors="surrogateescape") for x in v]
        else:
            offs = [self.table(f.type, x) for x in v]
        b.StartVector(4, len(offs), 4)
        for o in reversed(offs):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def aligned_bytes(self, arr: np.ndarray) -> int:
        data = arr.view(np.uint8).reshape(-1)
        b = self.b
        b.StartVector(1, data.size, _BUFFER_ALIGN)
        b.head -= data.size
        b.Bytes[b.head:b.head + data.size] = data.tobytes() if data.size < 4096 else data.data
        return b.EndVector()


def _opcode_tree(oc: g.OpCode) -> dict:
    code = int(oc.builtin_code)
    d = {"deprecated_builtin_code": min(code, PLACEHOLDER_FOR_GREATER_OP_CODES),
         "version": int(oc.version), "builtin_code": code}
    if oc.custom_code is not None:
        d["custom_code"] = oc.custom_code
    return d


def _quant_tree(q: g.QuantParams) -> dict:
    d = {}
    for k in ("min", "max", "scale", "zero_point"):
        v = getattr(q, k)
        if v is not None and (v.size or k in ("min", "max")):
            d[k] = v
    if q.details is not None:
        member, vals = q.details
        d["details"] = (member, {k: v for k, v in vals.items() if v is not None})
    d["quantized_dimension"] = int(q.quantized_dimension)
    return d


def _sparsity_tree(sp: g.Sparsity) -> dict:
    dims = []
    for dm in sp.dim_metadata:
        e = {"format": int(dm.format), "dense_size": int(dm.dense_size)}
        for k in ("array_segments", "array_indices"):
            v = getattr(dm, k)
            if v is not None:
                e[k] = (v[0], {"values": v[1]})
        dims.append(e)
    return {"traversal_order": list(sp.traversal_order), "block_map": list(sp.block_map),
            "dim_metadata": dims}


def _options(opts) -> tuple[str, tuple[str, dict]]:
    tname = options_table_name(opts)
    union, _ = union_of(tname)
    return union, (tname, options_to_dict(opts))


def lower(model: g.Model) -> tuple[dict, list[g.Buffer]]:
    """The IR as a tree of plain values plus the ordered buffer list (indices assigned)."""
    buffers: list[g.Buffer] = []
    bindex: dict[int, int] = {}

    def add_buffer(buf: g.Buffer) -> int:
        if id(buf) not in bindex:
            bindex[id(buf)] = len(buffers)
            buffers.append(buf)
        return bindex[id(buf)]

    if not model.buffers or model.buffers[0].nbytes:
        add_buffer(g.Buffer())  # buffer 0: the empty sentinel every TFLite file starts with
    for buf in model.buffers:
        add_buffer(buf)

    codes = list(model.operator_codes)
    cindex = {id(c): i for i, c in enumerate(codes)}
    sg_index = {id(sg): i for i, sg in enumerate(model.subgraphs)}
    subgraphs = []
    for si, sg in enumerate(model.subgraphs):
        tindex = {id(t): i for i, t in enumerate(sg.tensors)}

        def ti(t, what, _tindex=tindex, _si=si):
            if t is None:
                return -1
            if id(t) not in _tindex:
                raise ModelError(f"{what}: tensor {t.name!r} is not in the subgraph's tensor "
                                 "list (add it with Subgraph.add_tensor)", f"subgraphs[{_si}]")
            return _tindex[id(t)]

        tensors = []
        for t in sg.tensors:
            d = {"shape": list(t.shape), "type": int(t.dtype),
                 "buffer": add_buffer(t.buffer) if t.buffer is not None else 0,
                 "name": t.name, "is_variable": bool(t.is_variable),
                 "has_rank": bool(t.has_rank)}
            if t.quantization is not None:
                d["quantization"] = _quant_tree(t.quantization)
            if t.shape_signature is not None:
                d["shape_signature"] = list(t.shape_signature)
            if t.sparsity is not None:
                d["sparsity"] = _sparsity_tree(t.sparsity)
            if t.variant_tensors is not None:
                d["variant_tensors"] = t.variant_tensors
            tensors.append(d)
        ops = []
        for oi, op in enumerate(sg.operators):
            if id(op.opcode) not in cindex:
                cindex[id(op.opcode)] = len(codes)
                codes.append(op.opcode)
            where = f"operators[{oi}] ({op.name})"
            d = {"opcode_index": cindex[id(op.opcode)],
                 "inputs": [ti(t, where) for t in op.inputs],
                 "outputs": [ti(t, where) for t in op.outputs],
                 "custom_options_format": int(op.custom_options_format),
                 "debug_metadata_index": int(op.debug_metadata_index)}
            for opts in (op.options, op.options2):
                if opts is not None:
                    union, val = _options(opts)
                    d["builtin_options" if union == "BuiltinOptions" else "builtin_options_2"] = val
            if op.custom_options is not None:
                d["custom_options"] = g.as_bytes_array(op.custom_options)
            if op.mutating_variable_inputs:
                d["mutating_variable_inputs"] = list(op.mutating_variable_inputs)
            if op.intermediates:
                d["intermediates"] = [ti(t, where) for t in op.intermediates]
            ops.append(d)
        subgraphs.append({"tensors": tensors,
                          "inputs": [ti(t, "inputs") for t in sg.inputs],
                          "outputs": [ti(t, "outputs") for t in sg.outputs],
                          "operators": ops, "name": sg.name,
                          "debug_metadata_index": int(sg.debug_metadata_index)})

    sigs = []
    for sd in model.signature_defs:
        if id(sd.subgraph) not in sg_index:
            raise ModelError(f"signature {sd.key!r} refers to a subgraph not in the model")
        tindex = {id(t): i for i, t in enumerate(sd.subgraph.tensors)}
        maps = {}
        for side in ("inputs", "outputs"):
            maps[side] = []
            for name, t in getattr(sd, side).items():
                if id(t) not in tindex:
                    raise ModelError(f"signature {sd.key!r} {side[:-1]} {name!r} is not a "
                                     "tensor of its subgraph")
                maps[side].append({"name": name, "tensor_index": tindex[id(t)]})
        sigs.append({**maps, "signature_key": sd.key,
                     "subgraph_index": sg_index[id(sd.subgraph)]})

    tree = {"version": int(model.version),
            "operator_codes": [_opcode_tree(c) for c in codes],
            "subgraphs": subgraphs,
            "description": model.description,
            "metadata": [{"name": m.name, "buffer": add_buffer(m.buffer)}
                         for m in model.metadata],
            "signature_defs": sigs}
    return tree, buffers


def _pad16(n: int) -> int:
    return (-n) % _BUFFER_ALIGN


def needs_buffer_offsets(buffer_sizes) -> bool:
    """Whether buffers of these sizes overflow a single FlatBuffer (2 GiB, with headroom for
    the graph itself and 16-byte alignment)."""
    sizes = list(buffer_sizes)
    return sum(sizes) + 16 * len(sizes) + (1 << 24) > _FLATBUFFER_LIMIT


def write_bytes(model: g.Model, *, use_buffer_offsets: bool | None = None,
                validate: bool = True) -> bytes:
    """Serialize a model; see :meth:`Model.to_bytes`."""
    if validate:
        model.validate()
    tree, buffers = lower(model)
    total = sum(b.nbytes for b in buffers)
    if use_buffer_offsets is None:
        use_buffer_offsets = needs_buffer_offsets(b.nbytes for b in buffers)
    if not use_buffer_offsets:
        tree["buffers"] = [{"data": b.data} if b.nbytes else {} for b in buffers]
        enc = _Encoder(total + 4096)
        enc.b.Finish(enc.table("Model", tree), file_identifier=b"TFL3")
        return bytes(enc.b.Output())

    # Large-model layout. Pass 1 sizes the FlatBuffer with every offset/size present (fixed
    # width), pass 2 fills in the real absolute offsets; the FlatBuffer length cannot change.
    def build(offsets):
        tree["buffers"] = [{"offset": o, "size": b.nbytes} if b.nbytes else {}
                           for b, o in zip(buffers, offsets)]
        enc = _Encoder(4096 + 64 * len(buffers))
        enc.b.Finish(enc.table("Model", tree), file_identifier=b"TFL3")
        return bytes(enc.b.Output())

    head = build([2] * len(buffers))
    pos = len(head) + _pad16(len(head))
    offsets = []
    for b in buffers:
        offsets.append(pos if b.nbytes else 0)
        if b.nbytes:
            pos += b.nbytes + _pad16(b.nbytes)
    head2 = build(offsets)
    if len(head2) != len(head):
        raise AssertionError("FlatBuffer size changed between passes")
    parts = [head2, b"\0" * _pad16(len(head2))]
    for b in buffers:
        if b.nbytes:
            parts += [b.data.tobytes(), b"\0" * _pad16(b.nbytes)]
    return b"".join(parts)


def save(model: g.Model, path, *, overwrite: bool = False,
         use_buffer_offsets: bool | None = None) -> str:
    """Write ``model`` to ``path`` atomically: a temp file in the same directory, fsync'd, then
    renamed over the target, so a crash never leaves a half-written model behind."""
    p = Path(path)
    if p.exists() and not overwrite:  # before the (possibly long) encoding
        raise FileExistsError(f"{p} exists (pass overwrite=True to replace it)")
    if p.is_dir():
        raise IsADirectoryError(str(p))
    return atomic_write(p, write_bytes(model, use_buffer_offsets=use_buffer_offsets),
                        overwrite=overwrite)


