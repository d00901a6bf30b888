"""Our int8 quantizer on three trained tasks against TF 2.21's converter (the baseline oracle),
all files run in LiteRT: accuracy of ``minmax`` within 0.5 point of TF's int8, our best
calibration method at least as good as TF's, sizes within 2%."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytest.importorskip("sklearn")
pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from benchmarks.quantize_accuracy import METHODS, evaluate  # noqa: E402
from datasets.trained_tasks import TASKS  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_int8_accuracy_and_size_match_tf(task):
    rows = {r["model"]: r for r in evaluate(task, METHODS)}
    tf = rows["tf int8"]
    # The task is learned: TF's int8 is close to the float model, far above chance.
    assert tf["accuracy"] > 80.0
    assert abs(rows["float32"]["accuracy"] - tf["accuracy"]) <= 2.0
    ours = rows["ours minmax"]
    assert abs(ours["accuracy"] - tf["accuracy"]) <= 0.5, (ours, tf)
    best = max(rows[f"ours {m}"]["accuracy"] for m in METHODS)
    assert best >= tf["accuracy"], {m: rows[f"ours {m}"]["accuracy"] for m in METHODS}
    for m in METHODS:  # every file LiteRT ran (evaluate) is within 2% of TF's size
        assert abs(rows[f"ours {m}"]["size"] / tf["size"] - 1.0) <= 0.02, (m, rows[f"ours {m}"])
