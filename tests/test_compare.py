"""``wb.compare`` against independent computations: sizes are the bytes of the files, accuracy,
SQNR and agreement are recomputed by running every model in LiteRT (the oracle), estimates are
``wb.estimate``'s, failing modes get a row, bad arguments raise ``InputError``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytest.importorskip("ai_edge_litert")

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import InputError

N_EVAL = 60
MODES = ("float32", "dynamic", "float16", "int8", "int16x8")


@pytest.fixture(scope="module")
def task():
    pytest.importorskip("sklearn")
    from datasets.trained_tasks import load_task

    return load_task("digits_cnn")  # trained digits CNN, cached under .cache/quant_tasks


@pytest.fixture(scope="module")
def result(task):
    return wb.compare(task.float_path, [*MODES, task.tf_int8_path], dataset=task.calib[:20],
                      eval_data=(task.x_test[:N_EVAL], task.y_test[:N_EVAL]),
                      device=["pixel4", ("iphone_11_pro", "coreml")], runs=2, progress=False)


def _litert_outputs(content: bytes, xs: np.ndarray) -> np.ndarray:
    """The first output of ``content`` run in LiteRT's built-in kernels, one sample per invoke,
    dequantized; float inputs quantized (half away from zero) for an integer input."""
    it = litert_interpreter(content)
    it.allocate_tensors()
    din, dout = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for i in range(len(xs)):
        x = xs[i:i + 1].astype(np.float64)
        if np.issubdtype(din["dtype"], np.integer):
            s, zp = din["quantization"]
            v = x / s
            info = np.iinfo(din["dtype"])
            x = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, info.min, info.max)
        it.set_tensor(din["index"], x.astype(din["dtype"]))
        it.invoke()
        y = it.get_tensor(dout["index"]).astype(np.float64)
        if np.issubdtype(dout["dtype"], np.integer):
            s, zp = dout["quantization"]
            y = (y - zp) * s
        outs.append(y)
    return np.concatenate(outs)


def _row(result, label):
    return result.df.set_index("mode").loc[label]


def test_rows_and_columns(result, task):
    df = result.df
    assert list(df["mode"]) == [*MODES, "tf_int8.tflite"]
    assert (df["status"] == "ok").all(), df[["mode", "reason"]]
    assert set(result.models) == set(df["mode"])
    for c in ("size_bytes", "weight_bytes", "metric", "metric_delta", "output_sqnr_db",
              "top1_agreement", "ms_workbench", "ms_litert", "est_ms pixel4/cpu",
              "est_low_ms iphone_11_pro/coreml", "delegated iphone_11_pro/coreml"):
        assert c in df.columns, c
    assert result.targets == ["pixel4/cpu", "iphone_11_pro/coreml"]
    assert (df["ms_workbench"] > 0).all() and (df["ms_litert"] > 0).all()
    assert result.metric_name == "top-1 accuracy"


def test_sizes_are_file_bytes(result, task, tmp_path):
    float_bytes = task.float_path.stat().st_size
    for label, m in result.models.items():
        r = _row(result, label)
        if label == "tf_int8.tflite":  # given files: their own size
            size = task.tf_int8_path.stat().st_size
        elif label == "float32":
            size = float_bytes
        else:  # what saving the quantized model writes
            size = Path(m.save(tmp_path / f"{label}.tflite")).stat().st_size
        assert r["size_bytes"] == size, label
        assert r["size_ratio"] == pytest.approx(size / float_bytes, rel=1e-12)
    assert _row(result, "float32")["size_ratio"] == 1.0
    # Quantized weights: int8 about a quarter of the float weights, float16 a half.
    f = _row(result, "float32")["weight_bytes"]
    assert _row(result, "int8")["weight_bytes"] < 0.3 * f
    assert 0.45 * f < _row(result, "float16")["weight_bytes"] < 0.55 * f


def test_weight_bytes_equal_litert_constant_tensors(result):
    """Weight bytes = bytes of the constant tensors LiteRT reads from the file (tensors no op
    produces and that are not model inputs)."""
    for label, m in result.models.items():
        it = litert_interpreter(m.to_bytes())
        it.allocate_tensors()
        produced = {int(i) for op in it._get_ops_details() for i in op["outputs"]}
        inputs = {d["index"] for d in it.get_input_details()}
        used = {int(i) for op in it._get_ops_details() for i in op["inputs"] if i >= 0}
        total = sum(it.get_tensor(i).nbytes for i in used - produced - inputs)
        assert _row(result, label)["weight_bytes"] == total, label


def test_accuracy_sqnr_agreement_match_litert(result, task):
    """Recomputed in LiteRT: accuracy exactly for the integer models (our integer kernels are
    bit-exact), within one sample for float/hybrid ones (a last-bit float difference may flip
    a near tie); SQNR and agreement against LiteRT's float outputs."""
    xs, ys = task.x_test[:N_EVAL], task.y_test[:N_EVAL]
    ref = _litert_outputs(result.models["float32"].to_bytes(), xs)
    ref_acc = np.mean(np.argmax(ref, 1) == ys)
    for label, m in result.models.items():
        r = _row(result, label)
        out = _litert_outputs(m.to_bytes(), xs)
        acc = np.mean(np.argmax(out, 1) == ys)
        exact = label in ("int8", "int16x8", "tf_int8.tflite")
        tol = 0 if exact else 1 / N_EVAL + 1e-12
        assert abs(r["metric"] - acc) <= tol, (label, r["metric"], acc)
        assert r["metric_delta"] == pytest.approx(r["metric"] - _row(result, "float32")["metric"])
        assert abs(_row(result, "float32")["metric"] - ref_acc) <= 1 / N_EVAL + 1e-12
        sqnr = 10 * np.log10(np.sum(ref ** 2) / np.sum((out - ref) ** 2)) if label != "float32" \
            else np.inf
        if label == "float32":
            assert r["output_sqnr_db"] == np.inf
            assert r["top1_agreement"] == 1.0 and r["metric_delta"] == 0.0
        else:
            assert r["output_sqnr_db"] == pytest.approx(sqnr, abs=0.5), label
            agree = np.mean(np.argmax(out, 1) == np.argmax(ref, 1))
            assert abs(r["top1_agreement"] - agree) <= tol
    # The task is learned and every mode keeps it.
    assert (result.df["metric"] > 0.85).all()
    assert _row(result, "int8")["output_sqnr_db"] < _row(result, "float16")["output_sqnr_db"]


def test_engine_litert_is_exactly_litert(task):
    xs, ys = task.x_test[:30], task.y_test[:30]
    r = wb.compare(task.float_path, ["float32", "dynamic", "int8"], dataset=task.calib[:10],
                   eval_data=(xs, ys), engine="litert", measure=False, progress=False)
    ref = _litert_outputs(r.models["float32"].to_bytes(), xs)
    for label, m in r.models.items():
        out = _litert_outputs(m.to_bytes(), xs)
        row = _row(r, label)
        assert row["metric"] == np.mean(np.argmax(out, 1) == ys)
        if label != "float32":
            noise = np.sum((out - ref) ** 2)
            assert row["output_sqnr_db"] == pytest.approx(
                10 * np.log10(np.sum(ref ** 2) / noise), rel=1e-9)
            assert row["top1_agreement"] == np.mean(np.argmax(out, 1) == np.argmax(ref, 1))
    assert r.df["ms_workbench"].isna().all() and r.df["ms_litert"].isna().all()


def test_estimates_equal_wb_estimate(result):
    for label, m in result.models.items():
        r = _row(result, label)
        for dev, dele in (("pixel4", "cpu"), ("iphone_11_pro", "coreml")):
            e = wb.estimate(m, device=dev, delegate=dele)
            t = f"{dev}/{dele}"
            assert r[f"est_ms {t}"] == pytest.approx(e.total_ms, rel=1e-12)
            assert r[f"est_low_ms {t}"] == pytest.approx(e.low_ms, rel=1e-12)
            assert r[f"est_high_ms {t}"] == pytest.approx(e.high_ms, rel=1e-12)
            assert r[f"delegated {t}"] == pytest.approx(e.df["delegated"].mean())
            assert r[f"est_low_ms {t}"] <= r[f"est_ms {t}"] <= r[f"est_high_ms {t}"]
    # Core ML takes float ops only (no int8 model is delegated), and some of the float model.
    assert _row(result, "int8")["delegated iphone_11_pro/coreml"] == 0.0
    assert _row(result, "float32")["delegated iphone_11_pro/coreml"] > 0.5


def test_failing_modes_get_a_row(task):
    import pandas as pd

    xs, ys = task.x_test[:10], task.y_test[:10]
    quick = ROOT / "datasets/models/quickstart_cnn_int8.tflite"  # 32x32x3 input: cannot run
    r = wb.compare(task.float_path, {"float32": "float32", "int8": "int8",
                                     "corrupt": b"\0" * 64, "other": quick},
                   eval_data=(xs, ys), measure=False, progress=False)
    int8 = _row(r, "int8")
    assert int8["status"] == "failed" and "dataset" in int8["reason"]
    assert pd.isna(int8["size_bytes"]) and pd.isna(int8["metric"])
    bad = _row(r, "corrupt")
    assert bad["status"] == "failed" and bad["reason"].startswith("ModelError")
    other = _row(r, "other")  # loads (size known) but cannot run the digits: reason, no metric
    assert other["status"] == "ok" and "evaluation" in other["reason"]
    assert other["size_bytes"] == quick.stat().st_size and np.isnan(other["metric"])
    assert set(r.models) == {"float32", "other"}
    assert _row(r, "float32")["status"] == "ok" and _row(r, "float32")["reason"] == ""
    h = r._repr_html_()
    assert "Failed modes" in h and "&lt;NA&gt;" not in h


def test_explicit_models_and_custom_metric(task):
    xs, ys = task.x_test[:20], task.y_test[:20]
    tf_model = wb.load(task.tf_int8_path)
    seen = []

    def true_class_prob(outputs, labels):
        seen.append((len(outputs), outputs[0].shape, np.shape(labels)))
        return float(np.mean(outputs[0][np.arange(len(labels)), labels]))

    r = wb.compare(wb.load(task.float_path), {"tf": tf_model, "ours": "int8"},
                   dataset=task.calib[:10], eval_data=(xs, ys), metric=true_class_prob,
                   measure=False, progress=False)
    assert r.models["tf"] is tf_model
    assert seen == [(1, (20, 10), (20,))] * 3  # the float reference, then each mode
    out = _litert_outputs(task.tf_int8_path.read_bytes(), xs)
    assert _row(r, "tf")["metric"] == pytest.approx(np.mean(out[np.arange(20), ys]), abs=1e-9)
    assert r.metric_name == "true_class_prob"
    ref = _litert_outputs(task.float_path.read_bytes(), xs)
    delta = _row(r, "ours")["metric"] - np.mean(ref[np.arange(20), ys])
    assert _row(r, "ours")["metric_delta"] == pytest.approx(delta, abs=1e-5)


def test_unlabelled_data_gives_sqnr_without_metric(task):
    r = wb.compare(task.float_path, ["float32", "float16"], eval_data=task.calib[:8],
                   measure="workbench", runs=1, progress=False)
    assert r.df["metric"].isna().all() and r.metric_name == ""
    assert np.isfinite(_row(r, "float16")["output_sqnr_db"])
    assert (r.df["ms_workbench"] > 0).all() and r.df["ms_litert"].isna().all()
    fig = r.plot()
    assert len(fig.axes) == 2
    assert "agreement" in fig.axes[0].get_ylabel()  # no metric: top-1 agreement instead


def test_save_csv_and_html(result, tmp_path):
    import pandas as pd

    p = result.save(tmp_path / "modes.csv")
    back = pd.read_csv(p)
    assert list(back["mode"]) == list(result.df["mode"])
    assert list(back["size_bytes"]) == list(result.df["size_bytes"])
    with pytest.raises(FileExistsError):
        result.save(tmp_path / "modes.csv")
    result.save(tmp_path / "modes.csv", overwrite=True)
    h = Path(result.save(tmp_path / "modes.html")).read_text()
    assert h.startswith("<!DOCTYPE html>") and "data:image/png;base64," in h
    assert "<script" not in h and "tf_int8.tflite" in h
    with pytest.raises(InputError):
        result.save(tmp_path / "modes.xlsx")


@pytest.mark.parametrize("kwargs, words", [
    ({"modes": ["int4"]}, "neither a mode"),
    ({"modes": []}, "empty"),
    ({"modes": ["int8", "int8"]}, "duplicate"),
    ({"modes": [3]}, "expected a mode name"),
    ({"device": "pixel99"}, "pixel99"),
    ({"delegate": "gpu"}, "needs device"),
    ({"device": "iphone_11_pro", "delegate": "nnapi"}, "nnapi"),
    ({"device": [("pixel4",)]}, "(device, delegate)"),
    ({"engine": "tflite"}, "engine"),
    ({"measure": "fast"}, "measure"),
    ({"runs": 0}, "runs"),
    ({"metric": "accuracy"}, "callable"),
    ({"eval_data": []}, "empty"),
    ({"eval_data": (np.zeros((4, 8, 8, 1), np.float32), np.zeros(3, int))}, "labels"),
    ({"eval_data": [np.zeros((1, 5, 5, 1), np.float32)]}, "evaluation"),
    ({"quantize_options": ["denylist"]}, "quantize_options"),
    ({"modes": ["int8"], "quantize_options": {"representative_dataset": []}}, "dataset="),
    ({"modes": ["int8"], "quantize_options": {"int8": {"per_chanel": False}}}, "per_chanel"),
])
def test_bad_arguments_raise_input_error(task, kwargs, words):
    kwargs = {"modes": ["float32"], "measure": False, "progress": False, **kwargs}
    with pytest.raises(InputError) as e:
        wb.compare(task.float_path, **kwargs)
    assert words.lower() in str(e.value).lower()


def test_generator_dataset_serves_every_calibrated_mode(task):
    """A one-shot generator as ``dataset`` calibrates both integer modes (not only the first):
    each equals quantizing with the same samples as a list."""
    calib = task.calib[:10]
    r = wb.compare(task.float_path, ["int8", "int16x8"], dataset=(x for x in calib),
                   measure=False, progress=False)
    assert (r.df["status"] == "ok").all(), r.df[["mode", "reason"]]
    for mode in ("int8", "int16x8"):
        want = wb.quantize(task.float_path, mode, calib, progress=False)
        assert r.models[mode].to_bytes() == want.to_bytes()
    # Without eval_data, the dataset's samples give SQNR and agreement (no metric).
    assert r.df["metric"].isna().all() and (r.df["output_sqnr_db"] > 20).all()


def test_quantize_options_and_calibration_reach_the_quantizer(task):
    calib = task.calib[:10]
    r = wb.compare(task.float_path, ["int8", "int16x8"], dataset=calib, calibration="mse",
                   quantize_options={"int8": {"denylist": ["SOFTMAX"]}}, measure=False,
                   progress=False)
    want8 = wb.quantize(task.float_path, "int8", calib, calibration="mse", denylist=["SOFTMAX"],
                        progress=False)
    want16 = wb.quantize(task.float_path, "int16x8", calib, calibration="mse", progress=False)
    assert r.models["int8"].to_bytes() == want8.to_bytes()
    assert r.models["int16x8"].to_bytes() == want16.to_bytes()
    assert list(r.models["int8"].quantization_report.float_ops["op"]) == ["SOFTMAX"]


def test_a_litert_crash_costs_only_that_modes_column(task, monkeypatch):
    """LiteRT aborts the process on some files (seen: a 16x8 graph of the op corpus), so it runs
    in a child: a child killed by SIGABRT on one job loses that job only. The abort is planted
    here (in the job of a model smaller than the float one: the quantized modes), so the test
    does not depend on which files LiteRT rejects."""
    from workbench.analysis import compare as C

    anchor = '    out = {"key": job["key"]}\n'
    assert anchor in C._LITERT_SCRIPT
    float_size = task.float_path.stat().st_size
    plant = anchor + (f'    if __import__("os").path.getsize(job["model"]) < {float_size}:\n'
                      '        __import__("os").abort()\n')
    monkeypatch.setattr(C, "_LITERT_SCRIPT", C._LITERT_SCRIPT.replace(anchor, plant))
    xs, ys = task.x_test[:10], task.y_test[:10]
    r = wb.compare(task.float_path, ["dynamic", "float32", "float16"], eval_data=(xs, ys),
                   measure="litert", runs=1, progress=False)
    for label in ("dynamic", "float16"):
        assert _row(r, label)["reason"] == "LiteRT timing: LiteRT crashed (SIGABRT)"
        assert np.isnan(_row(r, label)["ms_litert"])
        assert _row(r, label)["metric"] >= 0.5  # the rest of its row is there
    assert _row(r, "float32")["ms_litert"] > 0 and _row(r, "float32")["reason"] == ""
    # With engine="litert", each model is probed in a child before it runs in this process.
    r = wb.compare(task.float_path, ["float32", "dynamic"], eval_data=(xs, ys),
                   engine="litert", measure=False, progress=False)
    assert _row(r, "dynamic")["reason"] == "evaluation: LiteRT crashed (SIGABRT)"
    assert np.isnan(_row(r, "dynamic")["metric"]) and _row(r, "float32")["metric"] >= 0.5
    plant0 = anchor + '    __import__("os").abort()\n'
    monkeypatch.setattr(C, "_LITERT_SCRIPT", C._LITERT_SCRIPT.replace(plant, plant0))
    with pytest.raises(InputError, match="LiteRT cannot run the float model"):
        wb.compare(task.float_path, ["float32"], eval_data=(xs, ys), engine="litert",
                   measure=False, progress=False)
