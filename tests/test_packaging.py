"""The explicit package list in pyproject.toml names every package of the source tree, so a
normal (non-editable) install ships all of them."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for name, rel in dirs.items():
        base = ROOT / rel
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            if "__pycache__" in parts:
                continue
            found.add(".".join((name, *parts)))
    assert found <= listed, f"not in pyproject packages: {sorted(found - listed)}"
    assert listed <= found, f"listed but missing: {sorted(listed - found)}"


def test_quantize_is_callable_and_its_modules_import_every_way():
    code = (
        "import workbench.quantize.fixed_point as fp\n"
        "import workbench as wb\n"
        "from workbench.quantize import calibrate\n"
        "import workbench.quantize.rules as r\n"
        "import inspect\n"
        "assert callable(wb.quantize) and fp.__name__.endswith('fixed_point')\n"
        "assert 'representative_dataset' in inspect.signature(wb.quantize).parameters\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wb = importlib.import_module("workbench")
    assert wb.quantize is sys.modules["workbench.quantize"]
