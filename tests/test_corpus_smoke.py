"""Smoke test for the TF-converter-built model corpus (tests/corpus.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # make `tests.corpus` importable under plain `pytest`
    sys.path.insert(0, str(_REPO))

from tests import corpus  # noqa: E402

pytest.importorskip("tensorflow")
litert = pytest.importorskip("ai_edge_litert.interpreter")


def test_importing_corpus_does_not_import_tensorflow():
    import subprocess

    code = "import sys; import tests.corpus; print('tensorflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=_REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("mode", ["float32", "int8"])
@pytest.mark.parametrize("name", ["mixed", "conv1d"])
def test_small_model_builds_and_runs(name, mode):
    path = corpus.model_path(name, mode)
    assert path is not None, corpus.unsupported_reason(name, mode)
    assert path.name == f"{name}__{mode}.tflite"
    data = path.read_bytes()
    assert len(data) > 8 and data[4:8] == b"TFL3"

    interp = litert.Interpreter(model_path=str(path))
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    (sample,) = corpus.sample_inputs(name, 1, seed=1)
    x = sample[0]
    assert tuple(inp["shape"]) == x.shape
    if mode == "int8":
        assert inp["dtype"] == np.int8
        scale, zp = inp["quantization"]
        x = np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)
    else:
        assert inp["dtype"] == np.float32
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    for out in interp.get_output_details():
        y = interp.get_tensor(out["index"])
        assert y.shape == tuple(out["shape"])
        if y.dtype == np.float32:
            assert np.all(np.isfinite(y))


def test_cached_entry_is_reused():
    first = corpus.info("mixed", "float32")
    again = corpus.ensure("mixed", "float32")
    assert again.get("_built_now") is None  # served from the cache
    assert first["key"] == again["key"] and first["status"] == "ok"
