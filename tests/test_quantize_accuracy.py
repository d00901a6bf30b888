"""Our int8 quantizer on four trained tasks against TF 2.21's converter (the baseline oracle),
all files run in LiteRT: accuracy of ``minmax`` within 0.5 point of TF's int8, our best
calibration method at least as good as TF's, sizes within 2%."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
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


# -- auto mixed precision -----------------------------------------------------------------------
def _planted(task):
    """A task, its float model and the output name of a ReLU6 layer whose range we ruin (the
    55th percentile clips almost half its values): the known culprit."""
    import workbench as wb
    from datasets.trained_tasks import load_task

    t = load_task(task)
    m = wb.load(t.float_path)
    names = [o.name for op in m.main.operators for o in op.outputs
             if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    return t, m, names[2]


@pytest.mark.slow
def test_auto_mixed_precision_recovers_accuracy_lost_to_a_bad_calibration():
    """Entropy (kl) calibration clips the ReLU6 layers of the MobileNet-style net (their
    saturated 6s are a spike its recipe ignores), which costs ~50 points: keeping the damaged
    layers in float brings the accuracy back to TF's int8 (minus one point)."""
    from datasets.trained_tasks import accuracy, load_task
    from workbench.quantize.mixed import auto_mixed_precision

    t = load_task("digits_mobilenet")
    xs, ys = t.x_test[:200], t.y_test[:200]
    target = accuracy(t.tf_int8_path.read_bytes(), xs, ys) - 1.0
    seen = []

    def metric(q):  # the user's metric: accuracy in LiteRT on labelled data
        v = accuracy(q.to_bytes(), xs, ys)
        seen.append(v)
        return v

    r = auto_mixed_precision(t.float_path, t.calib, target, metric_fn=metric,
                             calibration="kl", progress=False)
    assert r.df["metric"].iloc[0] < target - 20
    assert r.met and r.metric >= target
    quantizable = sum(op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD")
                      for op in r.model.main.operators)
    assert 0 < len(r.kept_float) <= quantizable // 2
    assert list(r.df["metric"]) == seen
    assert list(r.df["float_layers"]) == list(range(len(r.kept_float) + 1))
    assert r.df["met"].iloc[-1] and not r.df["met"].iloc[:-1].any()
    # The kept layers really run in float in the returned model.
    outs = {o.name: o for op in r.model.main.operators for o in op.outputs}
    assert all(outs[n].numpy_dtype == np.float32 for n in r.kept_float)


@pytest.mark.slow
def test_auto_mixed_precision_ranks_a_planted_culprit_first():
    from workbench.quantize.mixed import auto_mixed_precision

    t, m, bad = _planted("digits_mobilenet")
    calibration = {bad: ("percentile", {"percentile": 55.0})}
    r = auto_mixed_precision(m, t.calib[:30], 300.0, calibration=calibration,
                             max_float_layers=1, progress=False)
    assert r.kept_float == [bad]
    assert not r.met and len(r.df) == 2


@pytest.mark.slow
def test_auto_mixed_precision_reports_an_unreachable_target():
    import workbench as wb
    from datasets.trained_tasks import load_task

    t = load_task("digits_cnn")
    r = wb.auto_mixed_precision(t.float_path, t.calib[:20], 300.0, max_float_layers=2,
                                progress=False)  # output SQNR of 300 dB: never
    assert not r.met and len(r.kept_float) == 2 and len(r.df) == 3
    assert r.metric == r.df["metric"].iloc[-1]
    assert "auto mixed precision" in r._repr_html_()
    # Growing groups: 1, then 2 (capped by the limit) layers per step.
    g = wb.auto_mixed_precision(t.float_path, t.calib[:20], 300.0, max_float_layers=3,
                                grow=True, progress=False)
    assert list(g.df["float_layers"]) == [0, 1, 3]
    assert [len(a) for a in g.df["added"]] == [0, 1, 2]
    assert g.kept_float[0] == r.kept_float[0]


def test_auto_mixed_precision_input_errors():
    import workbench as wb
    from workbench.errors import InputError

    path = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"
    data = [np.zeros((1, 32, 32, 3), np.float32)]
    with pytest.raises(InputError, match="calibrated mode"):
        wb.auto_mixed_precision(path, data, 1.0, mode="dynamic")
    with pytest.raises(InputError, match="step"):
        wb.auto_mixed_precision(path, data, 1.0, step=0)
    with pytest.raises(InputError, match="diff metric"):
        wb.auto_mixed_precision(path, data, 1.0, metric_fn="accuracy")
    with pytest.raises(InputError, match="no samples"):
        wb.auto_mixed_precision(path, [], 1.0)
