"""The registry is explicit and complete: every builtin op code has a kernel or a stated
reason, and docs/ops.md is the current table."""

from __future__ import annotations

from pathlib import Path

from workbench.kernels import coverage
from workbench.kernels.registry import KERNEL_MODULES, builtin_kernels
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


def test_ops_doc_is_current():
    assert (ROOT / "docs" / "ops.md").read_text() == coverage.markdown()
