"""Schema-driven, bounds-checked FlatBuffer decoding: verification and reading in one pass.

``decode(buf)`` walks a ``.tflite`` buffer from its root table following the layout facts of
``schema.fbs`` (see :mod:`workbench.schema.fbs`) and returns plain Python values: a table becomes a
dict of its present fields, a union a ``(member_name, dict)`` pair, a vector of scalars a
**zero-copy** numpy view of the buffer, a string ``str`` (``surrogateescape``, so any bytes
survive a round trip).

Every read is bounds- and alignment-checked first, in the manner of FlatBuffers' own C++
``Verifier`` (offsets inside the buffer, vtable and table sizes, vector lengths computed without
overflow, NUL-terminated strings, a nesting-depth limit and a limit on the number of tables
visited, so no input can make it hang). A violation raises :class:`~workbench.errors.ModelError`
naming the path of the field at fault, e.g. ``subgraphs[0].tensors[7].shape``.

Offsets may point many times at the same object (FlatBuffers allows sharing), so a small file
could otherwise expand into a huge decoded tree (a vector of k offsets to one table holding a
vector of k offsets ...). The decoder therefore keeps a budget: the bytes of tables and vectors
it decodes may add up to at most ``2 * len(buf) + 4096`` (a file without shared objects needs at
most ``len(buf)``), and a string met again at the same position is returned from a cache instead
of being decoded again. Work and memory stay proportional to the file's size.
"""

from __future__ import annotations

import struct

import numpy as np

from workbench.errors import ModelError

from .fbs import SCALARS, Schema, load_schema

MAX_DEPTH = 64
MAX_TABLES = 1_000_000
#: Decoded table/vector bytes allowed per file byte (plus BUDGET_SLACK); see module docstring.
BUDGET_FACTOR = 2
BUDGET_SLACK = 4096

_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_SCALAR_STRUCT = {k: struct.Struct("<" + c) for k, (c, _) in SCALARS.items()}
_NP_DTYPE = {
    "?": np.dtype("bool"), "b": np.dtype("i1"), "B": np.dtype("u1"), "h": np.dtype("<i2"),
    "H": np.dtype("<u2"), "i": np.dtype("<i4"), "I": np.dtype("<u4"), "q": np.dtype("<i8"),
    "Q": np.dtype("<u8"), "f": np.dtype("<f4"), "d": np.dtype("<f8"),
}


def _field_path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


class _Decoder:
    def __init__(self, buf, schema: Schema):
        self.mv = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else buf
        self.raw = buf
        self.n = len(self.mv)
        self.s = schema
        self.tables = 0
        self.budget = BUDGET_FACTOR * self.n + BUDGET_SLACK
        self.strings: dict[int, str] = {}

    # -- primitive checked reads ------------------------------------------------------------
    def _check(self, pos: int, size: int, align: int, path: str, what: str) -> None:
        if pos < 0 or pos + size > self.n:
            raise ModelError(f"{what} at byte {pos} (+{size}) lies outside the "
                             f"{self.n}-byte buffer", path)
        if align > 1 and pos % align:
            raise ModelError(f"{what} at byte {pos} is not {align}-byte aligned", path)

    def _spend(self, size: int, path: str) -> None:
        """Account ``size`` decoded bytes against the budget (shared-offset amplification)."""
        self.budget -= size
        if self.budget < 0:
            raise ModelError(
                f"offsets reach more than {BUDGET_FACTOR}x the file's {self.n} bytes of tables "
                "and vectors (objects shared or overlapping too many times)", path)

    def _uoffset(self, pos: int, path: str) -> int:
        self._check(pos, 4, 4, path, "offset")
        off = _U32.unpack_from(self.mv, pos)[0]
        if off == 0 or off > 0x7FFFFFFF:
            # As FlatBuffers' Verifier::VerifyOffset: an offset may not point to itself (the
            # offset word would be misread as an empty vector or a table) nor be negative.
            raise ModelError(f"offset at byte {pos} is {off}, not a valid forward offset", path)
        target = pos + off
        if target >= self.n:
            raise ModelError(f"offset at byte {pos} points to byte {target}, past the end "
                             f"of the {self.n}-byte buffer", path)
        return target

    # -- objects ------------------------------------------------------------------------------
    def table(self, pos: int, tname: str, path: str, depth: int) -> dict:
        tp = path or tname  # where table-level faults are reported (the root: "Model")
        if depth > MAX_DEPTH:
            raise ModelError(f"tables nested deeper than {MAX_DEPTH}", tp)
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise ModelError(f"more than {MAX_TABLES} tables (possible reference loop)", tp)
        mv = self.mv
        self._check(pos, 4, 4, tp, f"{tname} table")
        vt = pos - _I32.unpack_from(mv, pos)[0]
        self._check(vt, 4, 2, tp, f"{tname} vtable")
        vsize, tsize = _U16.unpack_from(mv, vt)[0], _U16.unpack_from(mv, vt + 2)[0]
        if vsize < 4 or vsize % 2:
            raise ModelError(f"{tname} vtable has invalid size {vsize}", tp)
        self._check(vt, vsize, 2, tp, f"{tname} vtable")
        if tsize < 4:
            raise ModelError(f"{tname} table has invalid size {tsize}", tp)
        self._check(pos, tsize, 1, tp, f"{tname} table")
        self._spend(tsize, tp)
        nslots = (vsize - 4) // 2
        out: dict = {}
        for f in self.s.tables[tname].fields:
            if f.slot >= nslots:
                break
            fo = _U16.unpack_from(mv, vt + 4 + 2 * f.slot)[0]
            if not fo:
                continue
            fpos = pos + fo
            kind = f.kind
            if kind in ("scalar", "enum", "union_type"):
                t = f.type if kind == "scalar" else (
                    self.s.enums[f.type].base if kind == "enum" else "ubyte")
                st = _SCALAR_STRUCT[t]
                self._check(fpos, st.size, st.size, _field_path(path, f.name), "scalar")
                out[f.name] = st.unpack_from(mv, fpos)[0]
                continue
            fpath = _field_path(path, f.name)
            target = self._uoffset(fpos, fpath)
            if kind == "string":
                out[f.name] = self.string(target, fpath)
            elif kind == "table":
                out[f.name] = self.table(target, f.type, fpath, depth + 1)
            elif kind == "vector":
                out[f.name] = self.vector(target, f, fpath, depth)
            elif kind == "union":
                tag = out.get(f.name + "_type", 0)
                if tag == 0:
                    continue  # NONE: the value is ignored, as FlatBuffers does
                members = self.s.unions[f.type].members
                if tag > len(members):
                    raise ModelError(f"unknown {f.type} type tag {tag}", fpath)
                member = members[tag - 1]
                out[f.name] = (member, self.table(target, member, fpath, depth + 1))
        return out

    def string(self, pos: int, path: str) -> str:
        cached = self.strings.get(pos)
        if cached is not None:  # a shared string: same object, no new memory
            return cached
        self._check(pos, 4, 4, path, "string length")
        ln = _U32.unpack_from(self.mv, pos)[0]
        self._check(pos + 4, ln + 1, 1, path, f"string of {ln} bytes")
        if self.mv[pos + 4 + ln] != 0:
            raise ModelError("string is not NUL-terminated", path)
        out = bytes(self.mv[pos + 4:pos + 4 + ln]).decode("utf-8", "surrogateescape")
        self.strings[pos] = out
        return out

    def vector(self, pos: int, f, path: str, depth: int):
        self._check(pos, 4, 4, path, "vector length")
        ln = _U32.unpack_from(self.mv, pos)[0]
        ek = f.elem_kind
        if ek in ("scalar", "enum"):
            t = f.type if ek == "scalar" else self.s.enums[f.type].base
            char, size = SCALARS[t]
            self._check(pos + 4, ln * size, size, path, f"vector of {ln} {t}")
            self._spend(4 + ln * size, path)
            return np.frombuffer(self.raw, dtype=_NP_DTYPE[char], count=ln, offset=pos + 4)
        self._check(pos + 4, ln * 4, 4, path, f"vector of {ln} offsets")
        self._spend(4 + ln * 4, path)
        out = []
        for i in range(ln):
            ep = f"{path}[{i}]"
            target = self._uoffset(pos + 4 + 4 * i, ep)
            if ek == "string":
                out.append(self.string(target, ep))
            elif ek == "table":
                out.append(self.table(target, f.type, ep, depth + 1))
            else:
                raise ModelError(f"vectors of {ek} are not supported", ep)
        return out


def has_identifier(buf, ident: str = "TFL3") -> bool:
    return len(buf) >= 8 and bytes(buf[4:8]) == ident.encode()


def decode(buf, schema: Schema | None = None, root: str | None = None) -> dict:
    """Verify and decode a whole FlatBuffer into plain values (see module docstring).

    Parameters
    ----------
    buf
        ``bytes``, ``bytearray``, ``mmap`` or any buffer; vectors in the result are views of it.
    schema
        Parsed schema; the shipped TFLite schema by default.
    root
        Root table name; the schema's ``root_type`` by default.
    """
    s = schema or load_schema()
    root = root or s.root_type
    n = len(buf)
    if n < 8:
        raise ModelError(f"file is {n} bytes, too short to be a FlatBuffer", "file")
    if s.file_identifier and not has_identifier(buf, s.file_identifier):
        raise ModelError(f"missing file identifier {s.file_identifier!r} at bytes 4..8 "
                         f"(found {bytes(buf[4:8])!r}); not a TFLite model file", "file_identifier")
    d = _Decoder(buf, s)
    return d.table(d._uoffset(0, "root"), root, "", 0)
