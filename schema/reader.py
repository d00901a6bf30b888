"""``.tflite`` bytes -> IR :class:`~workbench.ir.graph.Model`.

Decoding (with every FlatBuffer bounds check) is done by :mod:`workbench.schema.flatbuf`; this
module links the decoded tables into IR objects, checking every index on the way, and then runs
the semantic verifier (:mod:`workbench.ir.verify`). Constant buffers stay zero-copy views of the
memory-mapped file.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

from workbench.errors import ModelError
from workbench.ir import graph as g
from workbench.ir.ops import (
    OPTIONS,
    BuiltinOperator,
    options_from_dict,
)

from .flatbuf import decode

SCHEMA_VERSION = 3


def _ints(v) -> tuple[int, ...]:
    return tuple(int(x) for x in v.tolist()) if v is not None else ()


def _index(i: int, n: int, what: str, path: str, allow_optional: bool = False) -> int | None:
    if allow_optional and i == -1:
        return None
    if not 0 <= i < n:
        raise ModelError(f"{what} index {i} is out of range (0..{n - 1})" if n else
                         f"{what} index {i} refers to an empty list", path)
    return i


def open_bytes(source) -> tuple[object, str | None]:
    """Memory-map a path (read-only) or accept a bytes-like object as is."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        try:
            with open(p, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size == 0:
                    raise ModelError(f"file {str(p)!r} is empty")
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), str(p)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
    if isinstance(source, (bytes, bytearray, memoryview, mmap.mmap)):
        return source, None
    if isinstance(source, np.ndarray):
        return source.tobytes() if not source.flags.c_contiguous else memoryview(source), None
    raise TypeError(f"load() takes a path or bytes, not {type(source).__name__}")


def read_model(source, *, verify: bool = True) -> g.Model:
    """Load a model from a path or bytes; see :func:`workbench.load`."""
    buf, path = open_bytes(source)
    if isinstance(buf, memoryview):
        buf = buf.cast("B")
    d = decode(buf)
    model = _build(d, buf)
    model.source = path
    model.file_size = len(buf)
    model._backing = buf
    if verify:
        from workbench.ir.verify import verify as _verify

        _verify(model)
    return model


def _buffer_from(d: dict, i: int, buf, n: int) -> g.Buffer:
    p = f"buffers[{i}]"
    data = d.get("data")
    off, size = int(d.get("offset", 0)), int(d.get("size", 0))
    if off > 1:
        # Large-model layout: the bytes live after the FlatBuffer, at an absolute file offset.
        if data is not None and data.size:
            raise ModelError("buffer has both inline data and an offset", p)
        if off + size > n:
            raise ModelError(f"buffer offset {off} + size {size} lies past the end of the "
                             f"{n}-byte file", p)
        return g.Buffer(np.frombuffer(buf, dtype=np.uint8, count=size, offset=off))
    if data is None:
        return g.Buffer()
    return g.Buffer(data)


def _quant(d: dict | None, path: str) -> g.QuantParams | None:
    if d is None:
        return None

    def arr(name, dtype):
        v = d.get(name)
        return None if v is None else v.astype(dtype, copy=False)

    details = d.get("details")
    if details is not None:
        member, vals = details
        details = (member, dict(vals))
    return g.QuantParams(
        scale=arr("scale", np.float32), zero_point=arr("zero_point", np.int64),
        min=arr("min", np.float32), max=arr("max", np.float32),
        quantized_dimension=int(d.get("quantized_dimension", 0)), details=details,
    )


def _sparsity(d: dict | None) -> g.Sparsity | None:
    if d is None:
        return None
    dims = []
    for dm in d.get("dim_metadata", []):
        def vec(key):
            v = dm.get(key)
            if v is None:
                return None
            member, vals = v
            return (member, vals.get("values", np.zeros(0, np.int32)))

        dims.append(g.DimensionMetadata(format=int(dm.get("format", 0)),
                                        dense_size=int(dm.get("dense_size", 0)),
                                        array_segments=vec("array_segments"),
                                        array_indices=vec("array_indices")))
    return g.Sparsity(traversal_order=_ints(d.get("traversal_order")),
                      block_map=_ints(d.get("block_map")), dim_metadata=dims)


def _build(d: dict, buf) -> g.Model:
    n = len(buf)
    version = int(d.get("version", 0))
    if version != SCHEMA_VERSION:
        raise ModelError(f"schema version {version} is not supported (expected "
                         f"{SCHEMA_VERSION})", "version")
    if d.get("external_buffers") or d.get("external_buffer_groups"):
        raise ModelError("external buffers (weights in separate files) are not supported yet",
                         "external_buffers")
    buffers = [_buffer_from(b, i, buf, n) for i, b in enumerate(d.get("buffers", []))]
    nb = len(buffers)

    codes = []
    for i, oc in enumerate(d.get("operator_codes", [])):
        p = f"operator_codes[{i}]"
        code = max(int(oc.get("deprecated_builtin_code", 0)), int(oc.get("builtin_code", 0)))
        if code < 0:
            raise ModelError(f"negative builtin code {code}", p)
        ver = int(oc.get("version", 1))
        if ver < 1:
            raise ModelError(f"operator version {ver} must be >= 1", p)
        custom = oc.get("custom_code")
        if code == BuiltinOperator.CUSTOM and not custom:
            raise ModelError("CUSTOM operator code without a custom_code name", p)
        try:
            code = BuiltinOperator(code)
        except ValueError:
            pass  # unknown to this schema: loadable, reported when run
        codes.append(g.OpCode(code, custom, ver))

    model = g.Model(buffers=buffers, operator_codes=codes, version=version,
                    description=d.get("description"))

    sgs_d = d.get("subgraphs", [])
    if not sgs_d:
        raise ModelError("the model has no subgraphs", "subgraphs")
    for si, sd in enumerate(sgs_d):
        sp = f"subgraphs[{si}]"
        sg = g.Subgraph(name=sd.get("name", "") or "",
                        debug_metadata_index=int(sd.get("debug_metadata_index", -1)))
        for ti, td in enumerate(sd.get("tensors", [])):
            tp = f"{sp}.tensors[{ti}]"
            bi = _index(int(td.get("buffer", 0)), nb, "buffer", f"{tp}.buffer") if nb or \
                td.get("buffer", 0) else None
            if int(td.get("external_buffer", 0)):
                raise ModelError("external buffers are not supported yet", f"{tp}.external_buffer")
            shape = _ints(td.get("shape"))
            sig = td.get("shape_signature")
            t = g.Tensor(
                name=td.get("name", "") or "",
                shape=shape,
                dtype=int(td.get("type", 0)),
                buffer=buffers[bi] if bi is not None else None,
                quantization=_quant(td.get("quantization"), f"{tp}.quantization"),
                is_variable=bool(td.get("is_variable", False)),
                shape_signature=_ints(sig) if sig is not None else None,
                sparsity=_sparsity(td.get("sparsity")),
                has_rank=bool(td.get("has_rank", False)),
                variant_tensors=td.get("variant_tensors"),
            )
            sg.tensors.append(t)
        nt = len(sg.tensors)

        def tref(i, what, path, optional=False, _sg=sg, _nt=nt):
            j = _index(int(i), _nt, what, path, allow_optional=optional)
            return None if j is None else _sg.tensors[j]

        sg.inputs = [tref(i, "tensor", f"{sp}.inputs[{k}]")
                     for k, i in enumerate(_ints(sd.get("inputs")))]
        sg.outputs = [tref(i, "tensor", f"{sp}.outputs[{k}]")
                      for k, i in enumerate(_ints(sd.get("outputs")))]
        for oi, od in enumerate(sd.get("operators", [])):
            op_p = f"{sp}.operators[{oi}]"
            ci = _index(int(od.get("opcode_index", 0)), len(codes), "opcode", f"{op_p}.opcode_index")
            opcode = codes[ci]
            op_p = f"{op_p} ({opcode.name})"
            op = g.Operator(opcode=opcode)
            op.inputs = [tref(i, "tensor", f"{op_p} input {k}", optional=True)
                         for k, i in enumerate(_ints(od.get("inputs")))]
            op.outputs = [tref(i, "tensor", f"{op_p} output {k}", optional=True)
                          for k, i in enumerate(_ints(od.get("outputs")))]
            op.intermediates = [tref(i, "tensor", f"{op_p} intermediate {k}")
                                for k, i in enumerate(_ints(od.get("intermediates")))]
            for key, attr in (("builtin_options", "options"), ("builtin_options_2", "options2")):
                u = od.get(key)
                if u is not None:
                    member, vals = u
                    if member not in OPTIONS:
                        raise ModelError(f"unknown options table {member}", f"{op_p}.{key}")
                    setattr(op, attr, options_from_dict(member, vals))
            co = od.get("custom_options")
            loff = int(od.get("large_custom_options_offset", 0))
            lsize = int(od.get("large_custom_options_size", 0))
            if loff > 1:
                if loff + lsize > n:
                    raise ModelError(f"large custom options at {loff} (+{lsize}) lie past the "
                                     f"end of the {n}-byte file", op_p)
                co = np.frombuffer(buf, dtype=np.uint8, count=lsize, offset=loff)
            op.custom_options = co
            op.custom_options_format = int(od.get("custom_options_format", 0))
            mvi = od.get("mutating_variable_inputs")
            op.mutating_variable_inputs = tuple(bool(x) for x in mvi) if mvi is not None else ()
            op.debug_metadata_index = int(od.get("debug_metadata_index", -1))
            sg.operators.append(op)
        model.subgraphs.append(sg)

    for mi, md in enumerate(d.get("metadata", [])):
        bi = _index(int(md.get("buffer", 0)), nb, "buffer", f"metadata[{mi}].buffer")
        model.metadata.append(g.Metadata(md.get("name", "") or "", buffers[bi]))
    if d.get("metadata_buffer") is not None:
        for k, bi in enumerate(_ints(d.get("metadata_buffer"))):
            _index(bi, nb, "buffer", f"metadata_buffer[{k}]")

    for si, sd in enumerate(d.get("signature_defs", [])):
        p = f"signature_defs[{si}]"
        sgi = _index(int(sd.get("subgraph_index", 0)), len(model.subgraphs), "subgraph",
                     f"{p}.subgraph_index")
        sg = model.subgraphs[sgi]
        sig = g.SignatureDef(key=sd.get("signature_key", "") or "", subgraph=sg)
        for side in ("inputs", "outputs"):
            target = getattr(sig, side)
            for k, tm in enumerate(sd.get(side, [])):
                ti = _index(int(tm.get("tensor_index", 0)), len(sg.tensors), "tensor",
                            f"{p}.{side}[{k}].tensor_index")
                name = tm.get("name", "") or ""
                if name in target:
                    raise ModelError(f"duplicate signature {side[:-1]} name {name!r}",
                                     f"{p}.{side}[{k}]")
                target[name] = sg.tensors[ti]
        model.signature_defs.append(sig)
    return model
