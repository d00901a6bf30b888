"""wb.diff: per-layer error of a quantized model against its float original."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import workbench as wb
from tests import corpus
from workbench.analysis.diff import COLUMNS, DEBUGGER_COLUMNS, dequantize, quantize_input


def _path(name, mode):
    p = corpus.model_path(name, mode)
    if p is None:
        pytest.skip(corpus.unsupported_reason(name, mode))
    return p


@pytest.fixture(scope="module")
def data():
    return corpus.sample_inputs("mixed", 6, seed=1)


@pytest.fixture(scope="module")
def mixed_diff(data):
    return wb.diff(_path("mixed", "float32"), _path("mixed", "int8_float_io"), data,
                   metric=lambda r, c: float(np.max(np.abs(r[0] - c[0]))))


def _run_all(model, sample):
    """Every subgraph-0 tensor value after one run, by tensor name (independent of diff)."""
    it = wb.Interpreter(model, experimental_preserve_all_tensors=True)
    outs = it.run(sample)
    vals = {}
    for d in it.get_tensor_details():
        with contextlib.suppress(Exception):  # tensors without a value
            vals[d["name"]] = (it.get_tensor(d["index"]), d["quantization"])
    return vals, outs


def test_columns_and_metrics_match_numpy(mixed_diff, data):
    r = mixed_diff
    assert list(r.df.columns) == COLUMNS
    assert list(r.df.columns[:10]) == DEBUGGER_COLUMNS
    ref_m = wb.load(_path("mixed", "float32"))
    cand_m = wb.load(_path("mixed", "int8_float_io"))
    # Two layers whose names agree in both models, and the softmax whose candidate name
    # differs (":01"), paired by position.
    want = {"mixed_1/concatenate_1/concat": "mixed_1/concatenate_1/concat",
            "mixed_1/dense_1/MatMul2": "mixed_1/dense_1/MatMul2",
            "StatefulPartitionedCall_1:0": "StatefulPartitionedCall_1:01"}
    runs = [(_run_all(ref_m, s)[0], _run_all(cand_m, s)[0]) for s in data]
    for rname, cname in want.items():
        row = r.df[r.df["tensor_name"] == cname]
        assert len(row) == 1, cname
        row = row.iloc[0]
        per = {k: [] for k in ("stddev", "mean_error", "max_abs_error", "mean_squared_error")}
        refs, cands = [], []
        for rv, cv in runs:
            ref = rv[rname][0].astype(np.float64)
            q, (scale, zp) = cv[cname][0], cv[cname][1]
            cand = (q.astype(np.float64) - zp) * scale
            d = cand - ref
            per["stddev"].append(np.std(d))
            per["mean_error"].append(np.mean(d))
            per["max_abs_error"].append(np.abs(d).max())
            per["mean_squared_error"].append(np.mean(d ** 2))
            refs.append(ref.ravel())
            cands.append(cand.ravel())
        for k, v in per.items():
            assert row[k] == pytest.approx(np.mean(v), rel=1e-6, abs=1e-12), (cname, k)
        ref, cand = np.concatenate(refs), np.concatenate(cands)
        err = cand - ref
        assert row["num_elements"] == runs[0][0][rname][0].size
        assert row["scale"] == pytest.approx(scale)
        assert row["zero_point"] == zp
        assert row["range"] == pytest.approx(ref.max() - ref.min())
        assert row["rmse/scale"] == pytest.approx(np.sqrt(np.mean(err ** 2)) / scale, rel=1e-5)
        assert row["sqnr_db"] == pytest.approx(
            10 * np.log10(np.sum(ref ** 2) / np.sum(err ** 2)), rel=1e-6)
        assert row["cosine"] == pytest.approx(
            ref @ cand / np.linalg.norm(ref) / np.linalg.norm(cand), rel=1e-9)
    # Model level: output SQNR, top-1 agreement, the user metric (mean over samples).
    ro = [wb.Interpreter(ref_m).run(s)[0].astype(np.float64) for s in data]
    co = [wb.Interpreter(cand_m).run(s)[0].astype(np.float64) for s in data]
    sig = sum(np.sum(a ** 2) for a in ro)
    noise = sum(np.sum((b - a) ** 2) for a, b in zip(ro, co))
    assert r.summary["output_sqnr_db"] == pytest.approx(10 * np.log10(sig / noise), rel=1e-6)
    agree = np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(ro, co)])
    assert r.summary["top1_agreement"] == pytest.approx(agree)
    assert r.summary["metric"] == pytest.approx(
        np.mean([np.abs(a - b).max() for a, b in zip(ro, co)]), rel=1e-6)
    assert r.summary["samples"] == len(data)
    # A healthy int8 model: every layer close to its quantization grid.
    assert r.df["rmse/scale"].between(0.2, 1.5).all()
    assert set(r.unmatched["candidate"]) == {"QUANTIZE 0", "DEQUANTIZE 11"}


def test_input_quantization_rounds_half_away_from_zero_and_clamps():
    m = wb.load(_path("mixed", "int8"))
    t = m.main.inputs[0]
    s, zp = float(t.quantization.scale[0]), int(t.quantization.zero_point[0])
    x = np.array([0.5, -0.5, 2.5, -2.5, 1e6, -1e6]) * s  # float64: exact halves
    got = quantize_input(t, x).astype(int)
    assert got.tolist() == [1 + zp, -1 + zp, 3 + zp, -3 + zp, 127, -128]
    back = dequantize(t, quantize_input(t, x[:4]))
    assert np.allclose(back, [s, -s, 3 * s, -3 * s], rtol=1e-5)


def _corrupt(model_path, op_index, which):
    m = wb.load(model_path)
    op = m.main.operators[op_index]
    assert op.name == "CONV_2D"
    t = op.outputs[0] if which == "output" else op.inputs[1]
    t.quantization.scale = t.quantization.scale * 8
    return wb.load(m.to_bytes()), op.outputs[0].name


def test_planted_fault_weight_scale_is_ranked_first(data):
    # Filter scale x8: the conv's requantization multiplier is 8x off.
    bad, name = _corrupt(_path("mixed", "int8"), 2, "weights")
    r = wb.diff(_path("mixed", "float32"), bad, data)
    assert r.ranked("rmse/scale")["tensor_name"][0] == name
    assert r.ranked("rmse/scale")["rmse/scale"][0] > 20
    assert r.ranked("sqnr_drop")["tensor_name"][0] == name
    assert r.suggest_denylist(k=3)[0] == name
    assert wb.analysis.diff.suggest_denylist(r, k=1, by="rmse/scale") == [name]
    assert r.summary["worst_layer"] == name


def test_planted_fault_output_scale_is_found_by_sqnr_drop(data):
    # Output scale x8: a grid 8x too coarse. rmse/scale of that layer stays near 0.29 of the
    # (wrong) step, so it is the SQNR drop that points at it.
    healthy = wb.diff(_path("mixed", "float32"), _path("mixed", "int8"), data)
    bad, name = _corrupt(_path("mixed", "int8"), 5, "output")
    r = wb.diff(_path("mixed", "float32"), bad, data)
    assert r.suggest_denylist(k=3)[0] == name
    row = r.df[r.df["tensor_name"] == name].iloc[0]
    before = healthy.df[healthy.df["tensor_name"] == name].iloc[0]
    assert row["sqnr_drop"] > 15
    assert row["sqnr_db"] < before["sqnr_db"] - 12


@pytest.mark.parametrize("mode", ["float16", "dynamic"])
def test_float_candidates(mode, data):
    r = wb.diff(_path("mixed", "float32"), _path("mixed", mode), data)
    assert len(r.df) == 10
    assert r.df["scale"].isna().all() and (r.df["zero_point"] == 0).all()
    assert r.df["rmse/scale"].isna().all()
    assert r.suggest_denylist() == []
    assert r.summary["output_sqnr_db"] > (60 if mode == "float16" else 40)
    assert r.summary["top1_agreement"] == 1.0
    if mode == "float16":  # the weight DEQUANTIZE ops stay unpaired
        assert all(u.startswith("DEQUANTIZE") for u in r.unmatched["candidate"])
        assert (r.df["sqnr_db"] > 60).all()


def test_html_escapes_tensor_names_and_plot_renders(data):
    m = wb.load(_path("mixed", "int8"))
    evil = "<script>alert('x')</script>&"
    m.main.operators[5].outputs[0].name = evil
    r = wb.diff(_path("mixed", "float32"), wb.load(m.to_bytes()), data[:2])
    assert evil in set(r.df["tensor_name"])
    html = r._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in html
    png = r.plot()._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_lazy_export():
    import workbench.analysis.diff as mod

    assert wb.diff is mod.diff
    assert "diff" in dir(wb)


def test_models_with_string_tensors_diff_their_numbers_only():
    """A model with STRING inputs and outputs (a hash table, as TF converts
    tf.lookup.StaticHashTable): the diff compares what is numeric and hands the strings to a
    metric untouched (it raised a raw ValueError casting them to float)."""
    from tests.kernels.test_strings import _converter_like

    content = _converter_like()
    seen = []

    def metric(ref, cand):
        seen.append((ref[2], cand[2]))
        return float(np.sum(ref[0] == cand[0]))

    samples = [[np.array([7], np.int64), np.array([b"seven"], object)],
               [np.array([1], np.int64), np.array([b"nope"], object)]]
    res = wb.diff(content, content, samples, metric=metric)
    assert len(seen) == 2
    for ref, cand in seen:
        assert ref.dtype == object and list(ref) == list(cand)
    assert res.summary["metric"] == 1.0
