"""The README's quick tour runs as written (from a directory holding datasets/)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import workbench as wb
from tests.litert_oracle import run_litert

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tour_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## A 10-line tour\s+```python\n(.*?)```", text, re.S).group(1)
    lines = block.strip().splitlines()
    assert len(lines) <= 11  # the import plus ten lines
    os.symlink(ROOT / "datasets", tmp_path / "datasets")
    monkeypatch.chdir(tmp_path)
    body, last = "\n".join(lines[:-1]), lines[-1]
    env: dict = {}
    exec(compile(body, "README-tour", "exec"), env)
    with pytest.raises(wb.ModelError):
        exec(compile(last, "README-tour", "exec"), env)
    # The edited model runs in LiteRT and now outputs int8 logits, not probabilities.
    (out,) = run_litert((tmp_path / "logits.tflite").read_bytes())
    assert out.shape == (1, 10)
    assert wb.load("logits.tflite").main.operators[-1].name == "FULLY_CONNECTED"
