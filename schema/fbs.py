"""A small reader of FlatBuffers schema text (``.fbs``), enough for ``schema.fbs``.

It yields the layout facts that the generic verifier, the typed operator options and the enums
need: for each table its fields in vtable-slot order (a union field takes two slots, its type tag
first), for each enum its values, for each union its members. Parsing our own schema at import
keeps one source of truth: the file that also generates the committed Python bindings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: Scalar type name -> (struct format char, byte size).
SCALARS: dict[str, tuple[str, int]] = {
    "bool": ("?", 1), "byte": ("b", 1), "ubyte": ("B", 1), "short": ("h", 2),
    "ushort": ("H", 2), "int": ("i", 4), "uint": ("I", 4), "long": ("q", 8),
    "ulong": ("Q", 8), "float": ("f", 4), "double": ("d", 8),
    "int8": ("b", 1), "uint8": ("B", 1), "int16": ("h", 2), "uint16": ("H", 2),
    "int32": ("i", 4), "uint32": ("I", 4), "int64": ("q", 8), "uint64": ("Q", 8),
    "float32": ("f", 4), "float64": ("d", 8),
}

SCHEMA_PATH = Path(__file__).with_name("schema.fbs")


@dataclass(frozen=True)
class Field:
    """One table field. ``kind`` is scalar | enum | string | table | union | union_type | vector."""

    name: str
    kind: str
    type: str  # scalar name, enum/table/union name, or element type for vectors
    slot: int
    default: object = None
    deprecated: bool = False
    elem_kind: str = ""  # for vectors: scalar | enum | string | table
    attributes: tuple = ()

    @property
    def vt_offset(self) -> int:
        """Byte offset of this field's entry in the vtable."""
        return 4 + 2 * self.slot


@dataclass
class Enum:
    name: str
    base: str
    values: dict[str, int] = field(default_factory=dict)

    def name_of(self, value: int) -> str | None:
        for k, v in self.values.items():
            if v == value:
                return k
        return None


@dataclass
class Union:
    name: str
    members: list[str] = field(default_factory=list)  # member i has type tag i + 1


@dataclass
class Table:
    name: str
    fields: list[Field] = field(default_factory=list)

    @property
    def by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}


@dataclass
class Schema:
    namespace: str = ""
    enums: dict[str, Enum] = field(default_factory=dict)
    unions: dict[str, Union] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    root_type: str = ""
    file_identifier: str = ""


_TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/|(?P<str>"[^"]*")|(?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)"""
    r"""|(?P<id>[A-Za-z_][A-Za-z0-9_.]*)|(?P<p>[{}\[\]():;,=])""",
    re.S,
)


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SyntaxError(f"schema: unexpected text at {text[pos:pos + 30]!r}")
        pos = m.end()
        if m.lastgroup:
            out.append(m.group(m.lastgroup))
    return out


def parse(text: str) -> Schema:
    """Parse schema text into a :class:`Schema`."""
    toks = _tokens(text)
    i = 0
    s = Schema()
    pending: list[tuple[str, list]] = []  # tables to resolve once every name is known

    def expect(t: str) -> None:
        nonlocal i
        if toks[i] != t:
            raise SyntaxError(f"schema: expected {t!r}, got {toks[i]!r}")
        i += 1

    def attrs() -> list[tuple[str, str | None]]:
        nonlocal i
        out = []
        if toks[i] == "(":
            i += 1
            while toks[i] != ")":
                key = toks[i]
                i += 1
                val = None
                if toks[i] == ":":
                    val = toks[i + 1]
                    i += 2
                out.append((key, val))
                if toks[i] == ",":
                    i += 1
            i += 1
        return out

    while i < len(toks):
        kw = toks[i]
        i += 1
        if kw in ("namespace", "root_type", "file_identifier", "file_extension", "include",
                  "attribute"):
            val = toks[i]
            i += 1
            expect(";")
            if kw == "namespace":
                s.namespace = val
            elif kw == "root_type":
                s.root_type = val
            elif kw == "file_identifier":
                s.file_identifier = val.strip('"')
        elif kw == "enum":
            name = toks[i]
            expect_colon = toks[i + 1]
            if expect_colon != ":":
                raise SyntaxError(f"schema: enum {name} needs an underlying type")
            base = toks[i + 2]
            i += 3
            attrs()
            expect("{")
            e = Enum(name, base)
            nxt = 0
            while toks[i] != "}":
                key = toks[i]
                i += 1
                if toks[i] == "=":
                    nxt = int(toks[i + 1], 0)
                    i += 2
                attrs()
                e.values[key] = nxt
                nxt += 1
                if toks[i] == ",":
                    i += 1
            i += 1
            s.enums[name] = e
        elif kw == "union":
            name = toks[i]
            i += 1
            attrs()
            expect("{")
            u = Union(name)
            while toks[i] != "}":
                member = toks[i]
                i += 1
                if toks[i] == ":":  # alias: Type
                    member = toks[i + 1]
                    i += 2
                attrs()
                u.members.append(member)
                if toks[i] == ",":
                    i += 1
            i += 1
            s.unions[name] = u
        elif kw in ("table", "struct"):
            if kw == "struct":
                raise SyntaxError("schema: structs are not used by the TFLite format")
            name = toks[i]
            i += 1
            attrs()
            expect("{")
            raw = []
            while toks[i] != "}":
                fname = toks[i]
                expect_c = toks[i + 1]
                if expect_c != ":":
                    raise SyntaxError(f"schema: {name}.{fname}: expected ':'")
                i += 2
                if toks[i] == "[":
                    ftype, vec = toks[i + 1], True
                    i += 3
                else:
                    ftype, vec = toks[i], False
                    i += 1
                default = None
                if toks[i] == "=":
                    default = toks[i + 1]
                    i += 2
                a = attrs()
                expect(";")
                raw.append((fname, ftype, vec, default, a))
            i += 1
            pending.append((name, raw))
        else:
            raise SyntaxError(f"schema: unexpected {kw!r}")

    for name, raw in pending:
        t = Table(name)
        slot = 0
        for fname, ftype, vec, default, a in raw:
            ad = dict(a)
            ids = ad.get("id")
            if ids is not None:
                raise SyntaxError("schema: explicit field ids are not supported")
            dep = "deprecated" in ad
            if vec:
                ek = _kind(s, ftype)
                t.fields.append(Field(fname, "vector", ftype, slot, None, dep, ek, tuple(a)))
                slot += 1
            else:
                k = _kind(s, ftype)
                if k == "union":
                    t.fields.append(Field(fname + "_type", "union_type", ftype, slot, 0, dep))
                    t.fields.append(Field(fname, "union", ftype, slot + 1, None, dep))
                    slot += 2
                    continue
                t.fields.append(Field(fname, k, ftype, slot, _default(s, k, ftype, default),
                                      dep, "", tuple(a)))
                slot += 1
        s.tables[name] = t
    return s


def _kind(s: Schema, t: str) -> str:
    if t in SCALARS:
        return "scalar"
    if t == "string":
        return "string"
    if t in s.enums:
        return "enum"
    if t in s.unions:
        return "union"
    return "table"


def _default(s: Schema, kind: str, t: str, raw: str | None) -> object:
    if kind == "scalar":
        if raw is None:
            return False if t == "bool" else (0.0 if SCALARS[t][0] in "fd" else 0)
        if t == "bool":
            return raw == "true"
        if SCALARS[t][0] in "fd":
            return float(raw)
        return int(raw, 0)
    if kind == "enum":
        e = s.enums[t]
        if raw is None:
            return 0
        return e.values[raw] if raw in e.values else int(raw, 0)
    return None


@lru_cache(maxsize=None)
def load_schema(path: str | None = None) -> Schema:
    """The parsed TFLite schema shipped with workbench (cached)."""
    p = Path(path) if path else SCHEMA_PATH
    return parse(p.read_text())
