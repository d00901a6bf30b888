"""Every model of the TF-converter corpus loads, and load -> save gives a file LiteRT runs with
outputs identical to the original's; re-saving our own output is byte-identical."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests import corpus
from tests.litert_oracle import run_litert

pytest.importorskip("ai_edge_litert")

CASES = [
    pytest.param(name, mode, marks=[pytest.mark.slow] if spec.big else [],
                 id=f"{name}-{mode}")
    for name, spec in corpus.MODELS.items()
    for mode in corpus.ALL_MODES
    if mode in spec.modes
]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
        for x, y in zip(a, b)
    )


@pytest.mark.parametrize("name,mode", CASES)
def test_load_save_roundtrip(name, mode, tmp_path):
    path = corpus.model_path(name, mode)
    if path is None:
        pytest.skip(f"converter does not support {name}/{mode}: "
                    f"{corpus.unsupported_reason(name, mode)}")
    original = path.read_bytes()
    m = wb.load(path)
    assert m.file_size == len(original)
    out = tmp_path / "resaved.tflite"
    m.save(out)
    ours = out.read_bytes()
    # Re-saving what we wrote is byte-identical.
    assert wb.load(out).to_bytes() == ours
    # The large-model layout (buffers after the FlatBuffer) round-trips too.
    offsets = m.to_bytes(use_buffer_offsets=True)
    assert wb.load(offsets).to_bytes(use_buffer_offsets=True) == offsets

    try:
        expected = run_litert(original)
    except RuntimeError as e:
        # LiteRT itself cannot run the converter's file (e.g. 16x8 kernels it lacks): ours
        # must fail the same way, not start working or crash differently.
        with pytest.raises(RuntimeError) as ours_err:
            run_litert(ours)
        assert str(ours_err.value).split(".")[0] == str(e).split(".")[0]
        return
    assert _same(expected, run_litert(ours))
    assert _same(expected, run_litert(offsets))


def test_specs_are_built_only_in_their_modes():
    """``ModelSpec.modes`` (issue 3's coverage models are float32 only): other modes are never
    converted, say why, and are left out of ``corpus_params``."""
    limited = {n: s for n, s in corpus.MODELS.items() if set(s.modes) != set(corpus.ALL_MODES)}
    assert limited, "no float32-only specs in the corpus"
    params = set(corpus.corpus_params(big=True, modes=corpus.ALL_MODES))
    for name, spec in limited.items():
        for mode in corpus.ALL_MODES:
            assert ((name, mode) in params) == (mode in spec.modes)
        off = next(m for m in corpus.ALL_MODES if m not in spec.modes)
        assert corpus.model_path(name, off) is None
        assert "not enabled" in corpus.unsupported_reason(name, off)
