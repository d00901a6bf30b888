"""The registry is explicit and complete: every builtin op code has a kernel or a stated
reason, and docs/ops.md is the current table."""

from __future__ import annotations

from pathlib import Path

from workbench.kernels import coverage
from workbench.kernels.registry import (
    CUSTOM_KERNEL_MODULES,
    KERNEL_MODULES,
    builtin_kernels,
    litert_custom_kernels,
)
from workbench.kernels.unsupported import UNSUPPORTED

from workbench.ir.ops import BuiltinOperator

ROOT = Path(__file__).resolve().parents[1]


def test_every_op_has_a_kernel_or_an_explicit_reason():
    kernels = builtin_kernels()
    for op in BuiltinOperator:
        has = op.value in kernels
        listed = op.name in UNSUPPORTED
        assert has != listed, f"{op.name}: kernel={has}, listed unsupported={listed}"
        if listed:
            assert UNSUPPORTED[op.name].strip()
    assert set(UNSUPPORTED) <= {op.name for op in BuiltinOperator}


def test_kernel_modules_exist_and_register_something():
    assert list(KERNEL_MODULES) == sorted(KERNEL_MODULES)
    registered = {c.__module__.rsplit(".", 1)[-1] for c in builtin_kernels().values()}
    assert set(KERNEL_MODULES) == registered


def test_litert_custom_op_modules_exist_and_register_something():
    assert list(CUSTOM_KERNEL_MODULES) == sorted(CUSTOM_KERNEL_MODULES)
    registered = {c.__module__.rsplit(".", 1)[-1] for c in litert_custom_kernels().values()}
    assert set(CUSTOM_KERNEL_MODULES) == registered
    assert not set(CUSTOM_KERNEL_MODULES) & set(KERNEL_MODULES)


def test_ops_doc_is_current():
    assert (ROOT / "docs" / "ops.md").read_text() == coverage.markdown()


def test_custom_options_map_decodes_flexbuffers_and_refuses_garbage():
    import numpy as np
    import pytest
    from flatbuffers import flexbuffers
    from workbench.kernels._common import Node

    from workbench.errors import ModelError
    from workbench.ir.graph import Model, Operator

    m = Model()
    code = m.opcode(None, "SomeCustomOp")

    def node(raw):
        op = Operator(code, custom_options=None if raw is None else np.frombuffer(raw, np.uint8))
        return Node(op, 0, 0, [], [])

    assert node(flexbuffers.Dumps({"a": 3, "b": 1.5})).custom_options_map() == {"a": 3, "b": 1.5}
    assert node(None).custom_options_map() == {}
    for raw in (b"\x01\x02\x03", flexbuffers.Dumps([1, 2]), b"\xff" * 7):
        with pytest.raises(ModelError, match="custom options"):
            node(raw).custom_options_map()
