"""The delegate cost model (``wb.estimate``), device profiles and the calibration.

Invariants are checked against independent computations: the roofline formula evaluated by
hand from tensor shapes, thread scaling bounds, partition costs recomputed from boundary
tensors, and the calibration error recomputed from the committed per-op tables and the
published CSV (no Keras rebuild).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.delegates import cost
from workbench.delegates.estimate import EstimateResult, assign_partitions, estimate
from workbench.delegates.profiles import (
    DeviceProfileError,
    list_devices,
    load_device,
    register_device,
    unregister_device,
)
from workbench.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
FLOAT = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"
INT8 = ROOT / "datasets" / "models" / "quickstart_cnn_int8.tflite"

REQUIRED = ["pixel2", "pixel3", "pixel4", "iphone_xs", "iphone_11_pro", "raspberry_pi_4",
            "desktop_x86"]


def toy_profile(name="toy", *, peak=10.0, bw=2.0, dispatch=7.0, cores=4, te=0.75,
                accel_kind="gpu"):
    """A small synthetic device; ``xnnpack`` is routed to an accelerator so partition costs can
    be tested independently of any delegate's op rules."""
    return {
        "name": name, "display_name": "Toy board",
        "delegates": {"cpu": "cpu", "xnnpack": "acc"},
        "processors": {
            "cpu": {"kind": "cpu", "cores": cores, "thread_efficiency": te,
                    "peak_gmacs": {"float32": peak, "int8": 2 * peak},
                    "bandwidth_gbps": bw, "dispatch_us": dispatch,
                    "efficiency": {"conv": 1.0, "depthwise": 0.5, "fc": 0.25, "pool": 0.2,
                                   "elementwise": 0.1, "reduce": 0.1},
                    "uncertainty": [0.8, 1.3]},
            "acc": {"kind": accel_kind, "peak_gmacs": {"float16": 100.0, "float32": 50.0},
                    "dtype_map": {"int8": "float16"}, "bandwidth_gbps": 10.0,
                    "dispatch_us": 20.0, "launch_us": 300.0, "transfer_gbps": 1.0,
                    "transfer_latency_us": 40.0, "uncertainty": [0.5, 2.0]},
        },
    }


# --- profiles -------------------------------------------------------------------------------

def test_required_devices_exist_and_validate():
    names = list_devices()
    for n in REQUIRED:
        assert n in names
    for n in names:
        d = load_device(n)
        assert d.cpu.kind == "cpu"
        for p in d.processors.values():
            assert p.uncertainty[0] <= 1.0 <= p.uncertainty[1]
            assert p.provenance
    assert load_device("Pixel 4").name == "pixel4"  # aliases as the published tables spell them
    assert load_device("iPhone 11 Pro").name == "iphone_11_pro"
    # the phones have their accelerators
    assert set(load_device("pixel3").delegates) >= {"cpu", "gpu", "nnapi", "hexagon"}
    assert set(load_device("iphone_xs").delegates) >= {"cpu", "gpu", "coreml"}


def test_unknown_device_names_the_known_ones():
    with pytest.raises(DeviceProfileError, match="known devices: .*pixel4"):
        load_device("nokia3310")
    assert issubclass(DeviceProfileError, InputError)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.pop("processors"), "processors must be"),
    (lambda d: d["processors"]["cpu"]["peak_gmacs"].update(float32=-1), r"float32 must be > 0"),
    (lambda d: d["processors"]["cpu"]["peak_gmacs"].update(int3=1), "unknown dtype 'int3'"),
    (lambda d: d["processors"]["cpu"].update(kind="fpga"), "kind must be one of"),
    (lambda d: d["delegates"].update(gpu="nothere"), "names processor 'nothere'"),
    (lambda d: d["delegates"].update(tpu="acc"), "unknown delegate 'tpu'"),
    (lambda d: d["processors"]["cpu"].update(uncertainty=[1.2, 2]), "uncertainty"),
    (lambda d: d["processors"]["cpu"].update(thread_efficiency=1.5), "thread_efficiency"),
    (lambda d: d["processors"]["cpu"]["efficiency"].update(convv=1), "unknown op kind"),
    (lambda d: d["processors"]["cpu"].pop("dispatch_us"), "dispatch_us is missing"),
    (lambda d: d["processors"]["cpu"].update(cores=0), "cores must be"),
])
def test_bad_profiles_are_rejected_with_the_field(tmp_path, edit, match):
    d = toy_profile()
    edit(d)
    with pytest.raises(DeviceProfileError, match=match):
        register_device(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(DeviceProfileError, match=match):
        load_device(str(p))


def test_bad_json_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(DeviceProfileError, match="not valid JSON"):
        load_device(str(p))
    with pytest.raises(DeviceProfileError, match="cannot read"):
        load_device(str(tmp_path / "absent.json"))


def test_register_user_profile_by_dict_and_path(tmp_path):
    try:
        prof = register_device(toy_profile("my_board"))
        assert "my_board" in list_devices()
        assert load_device("my board") is prof
        r = estimate(FLOAT, device="my_board", delegate="cpu", threads=1)
        assert r.device.name == "my_board" and r.total_ms > 0
        # round trip through a file (atomic save; no silent overwrite)
        path = tmp_path / "b.json"
        prof.save(path)
        with pytest.raises(FileExistsError):
            prof.save(path)
        again = load_device(str(path))
        assert again.to_dict() == prof.to_dict()
        unregister_device("my_board")
        assert "my_board" not in list_devices()
        register_device(str(path))
        assert load_device("my_board").cpu.peak_gmacs == prof.cpu.peak_gmacs
    finally:
        unregister_device("my_board")


def test_missing_delegate_on_device():
    with pytest.raises(DeviceProfileError, match="no 'nnapi' delegate"):
        estimate(FLOAT, device="iphone_xs", delegate="nnapi")
    with pytest.raises(DeviceProfileError, match="no 'coreml' delegate"):
        estimate(FLOAT, device="raspberry_pi_4", delegate="coreml")


def test_bad_arguments():
    with pytest.raises(InputError, match="threads"):
        estimate(FLOAT, device="pixel4", threads=0)
    with pytest.raises(InputError, match="precision"):
        estimate(FLOAT, device="pixel4", delegate="cpu", precision="int4")
    with pytest.raises(InputError, match="subgraph"):
        estimate(FLOAT, device="pixel4", subgraph=3)
    with pytest.raises(InputError, match="delegate must be a name"):
        estimate(FLOAT, device="pixel4", delegate=None)
    with pytest.raises(DeviceProfileError, match="device must be a name"):
        estimate(FLOAT, device=3)
    with pytest.raises(InputError, match="unknown option"):
        estimate(FLOAT, device={**toy_profile(), "delegates": {"cpu": "cpu", "gpu": "acc"}},
                 delegate="gpu", not_an_option=1)


# --- the cost model against hand computation -------------------------------------------------

def test_roofline_of_a_hand_computed_conv():
    """The first CONV_2D of the quickstart model, costed from its tensor shapes by hand."""
    m = wb.load(str(FLOAT))
    op = m.main.operators[0]
    assert op.name == "CONV_2D"
    x, w, b = op.inputs[:3]
    y = op.outputs[0]
    _, kh, kw, cin = w.shape
    macs = math.prod(y.shape) * kh * kw * cin
    nbytes = 4 * (math.prod(x.shape) + math.prod(w.shape) + math.prod(b.shape)
                  + math.prod(y.shape))
    for peak, bw in ((10.0, 1000.0), (1000.0, 0.01)):  # compute-bound, then memory-bound
        d = toy_profile(f"toy_{peak}", peak=peak, bw=bw)
        r = estimate(m, device=d, delegate="cpu", threads=1)
        row = r.df.iloc[0]
        assert row["macs"] == macs and row["bytes"] == nbytes
        expect = max(macs / (peak * 1e9), nbytes / (bw * 1e9)) + 7e-6
        assert row["est_ms"] == pytest.approx(expect * 1e3, rel=1e-12)
        assert row["bound"] == ("compute" if peak == 10.0 else "memory")
        assert row["low_ms"] == pytest.approx(0.8 * row["est_ms"])
        assert row["high_ms"] == pytest.approx(1.3 * row["est_ms"])


def test_kind_efficiency_and_dtype_use_their_peak():
    m = wb.load(str(INT8))
    d = toy_profile(bw=1e6, dispatch=0.0)
    r = estimate(m, device=d, delegate="cpu", threads=1)
    eff = d["processors"]["cpu"]["efficiency"]
    for row in r.df.itertuples():
        if row.macs == 0:
            continue
        peak = d["processors"]["cpu"]["peak_gmacs"]["int8" if row.dtype == "int8"
                                                    else "float32"] * 1e9
        e = eff.get(row.kind, 1.0)
        assert row.compute_ms == pytest.approx(row.macs / (peak * e) * 1e3, rel=1e-12)
    assert set(r.df["dtype"]) >= {"int8"}


def test_threads_never_slower_and_never_better_than_ideal():
    m = wb.load(str(FLOAT))
    d = toy_profile(cores=4, te=0.75)
    t = {n: estimate(m, device=d, delegate="cpu", threads=n).total_ms for n in range(1, 9)}
    for n in range(2, 9):
        assert t[n] <= t[n - 1] + 1e-12  # more threads: never slower
        assert t[n] >= t[1] / n - 1e-12  # never better than perfect scaling
    assert t[8] == pytest.approx(t[4])  # beyond the big cores nothing changes
    # compute-bound with zero dispatch: exactly the modelled speedup 1 + 3 * 0.75
    d2 = toy_profile("toy_c", bw=1e6, dispatch=0.0)
    r1 = estimate(m, device=d2, delegate="cpu", threads=1)
    r4 = estimate(m, device=d2, delegate="cpu", threads=4)
    assert r1.total_ms / r4.total_ms == pytest.approx(1 + 3 * 0.75)


def test_estimates_scale_with_macs():
    ops = cost.OpArrays(kind=np.array([0, 1, 2]), dtype=np.array(["float32"] * 3, dtype=object),
                        macs=np.array([1e6, 3e6, 5e5]), nbytes=np.array([1e3, 1e3, 1e3]))
    proc = load_device(toy_profile(bw=1e6, dispatch=0.0)).cpu
    t1 = cost.op_seconds(proc, ops)["total"]
    ops2 = cost.OpArrays(ops.kind, ops.dtype, ops.macs * 2, ops.nbytes)
    t2 = cost.op_seconds(proc, ops2)["total"]
    assert np.allclose(t2, 2 * t1, rtol=1e-12)


def test_fully_delegated_model_has_one_partition_and_only_io_transfers():
    m = wb.load(str(FLOAT))
    r = estimate(m, device=toy_profile(), delegate="xnnpack")
    assert r.df["delegated"].all()
    assert len(r.partitions) == 1 and bool(r.partitions["delegated"].iloc[0])
    io = sum(t.nbytes for t in m.main.inputs) + sum(t.nbytes for t in m.main.outputs)
    assert r.partitions["transfer_bytes"].iloc[0] == io  # nothing crosses inside the graph
    p = r.partitions.iloc[0]
    assert p["launch_ms"] == pytest.approx(0.3)
    assert p["transfer_ms"] == pytest.approx((2 * 40e-6 + io / 1e9) * 1e3)
    assert r.total_ms == pytest.approx(r.df["est_ms"].sum() + p["launch_ms"] + p["transfer_ms"])


def test_falling_back_an_op_adds_launch_and_transfers():
    """Move one middle op to the CPU by hand: the difference is exactly one more launch, the
    transfers of the tensors now crossing, and the op's CPU-vs-accelerator time."""
    m = wb.load(str(FLOAT))
    dev = load_device(toy_profile())
    cpu, acc = dev.cpu, dev.processors["acc"]
    ops = cost.OpArrays.from_features(cost.op_features(m))
    n = len(ops.macs)
    sg = m.main
    io_in = float(sum(t.nbytes for t in sg.inputs))
    io_out = float(sum(t.nbytes for t in sg.outputs))
    full = cost.predict_seconds(ops, np.zeros(n, dtype=int),
                                [{"in_bytes": io_in, "out_bytes": io_out, "n_in": 1,
                                  "n_out": 1}], cpu, acc, 1)
    k = 3  # MAX_POOL_2D: one input, one output
    op = sg.operators[k]
    a_in, a_out = float(op.inputs[0].nbytes), float(op.outputs[0].nbytes)
    assign = np.zeros(n, dtype=int)
    assign[k] = -1
    assign[k + 1:] = 1
    split = cost.predict_seconds(ops, assign, [
        {"in_bytes": io_in, "out_bytes": a_in, "n_in": 1, "n_out": 1},
        {"in_bytes": a_out, "out_bytes": io_out, "n_in": 1, "n_out": 1}], cpu, acc, 1)
    one = ops.take(np.array([k]))
    diff = (cost.op_seconds(cpu, one)["total"][0] - cost.op_seconds(acc, one)["total"][0]
            + acc.launch_us * 1e-6 + 2 * acc.transfer_latency_us * 1e-6
            + (a_in + a_out) / (acc.transfer_gbps * 1e9))
    assert split - full == pytest.approx(diff, rel=1e-9)
    assert split > full


def test_estimate_agrees_with_the_fit_path_and_partitioner():
    """estimate() (per-op frame) and predict_seconds (used by the fit) are the same model."""
    for path in (FLOAT, INT8):
        m = wb.load(str(path))
        for delegate in ("cpu", "xnnpack"):
            d = load_device("pixel4")
            r = estimate(m, device=d, delegate=delegate, threads=2)
            assign, parts, pt = assign_partitions(m, delegate)
            ops = cost.OpArrays.from_features(cost.op_features(m))
            s = cost.predict_seconds(ops, assign, parts, d.cpu, d.processor_for(delegate), 2)
            assert r.total_ms == pytest.approx(s * 1e3, rel=1e-12)
            assert list(r.df["partition"]) == list(pt.op_partition)
            assert r.low_ms <= r.total_ms <= r.high_ms


def test_fallback_reasons_come_from_the_partitioner():
    m = wb.load(str(INT8))
    r = estimate(m, device="pixel4", delegate="xnnpack")
    _, _, pt = assign_partitions(m, "xnnpack")
    for row in r.df.itertuples():
        assert (row.reason or None) == (None if row.delegated else pt.reason(row.index))
    if (~r.df["delegated"]).any():
        assert len(r.fallbacks) >= 1
    r_cpu = estimate(m, device="pixel4", delegate="cpu")
    assert (r_cpu.df["reason"] == "").all() and r_cpu.fallbacks.empty


def test_result_views():
    r = estimate(FLOAT, device="iphone_xs", delegate="cpu")
    assert isinstance(r, EstimateResult)
    assert r.threads == load_device("iphone_xs").cpu.cores
    html = r._repr_html_()
    assert "estimate" in html.lower() and "not a measurement" in html
    fig = r.plot()
    assert fig.axes and "ESTIMATE" in fig._suptitle.get_text()
    assert r.total_ms == pytest.approx(r.partitions["est_ms"].sum())
    assert r.summary["ops"] == len(r.df)
    assert "estimate" in repr(r)
    assert len(r.by_kind()) >= 3


def test_gpu_precision_option_changes_the_dtype():
    d = toy_profile()
    d["delegates"]["gpu"] = "acc"
    del d["delegates"]["xnnpack"]
    m = wb.load(str(FLOAT))
    ops = cost.OpArrays.from_features(cost.op_features(m))
    acc = load_device(d).processors["acc"]
    f16 = cost.op_seconds(acc, ops, precision="float16")
    f32 = cost.op_seconds(acc, ops, precision="float32")
    assert set(f16["run_dtype"]) == {"float16"} and set(f32["run_dtype"]) == {"float32"}
    assert (f32["compute"] >= f16["compute"]).all()
    # the GPU rule option of the same meaning selects it too
    r = estimate(m, device=d, delegate="gpu", precision_loss_allowed=False)
    assert set(r.df.loc[r.df["delegated"], "run_dtype"]) == {"float32"}
    r = estimate(m, device=d, delegate="gpu")
    assert set(r.df.loc[r.df["delegated"], "run_dtype"]) == {"float16"}


# --- calibration ----------------------------------------------------------------------------

def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import delegates as bench

    return bench


def test_committed_calibration_mdape_per_backend():
    """Recomputed from the committed per-op tables, CSV and device files (no Keras)."""
    bench = _bench()
    rows = bench.evaluate()
    table = bench.mdape_by_backend(rows)
    assert set(table.index) == {"CPU", "GPU", "NNAPI", "CoreML/Metal"}
    # independent recomputation of the error from the raw columns
    for g, val in table["mdape_%"].items():
        r = rows[rows["group"] == g]
        ape = np.abs(r["estimate_ms"] - r["latency_ms"]) / r["latency_ms"] * 100
        assert val == pytest.approx(float(np.median(ape)))
        assert val <= 20.0, f"{g}: MdAPE {val:.1f}% > 20%"
    assert len(rows) >= 200


def test_calibration_copy_matches_its_provenance():
    data = ROOT / "workbench" / "delegates" / "data"
    csv = (data / "published_latency_calibration.csv").read_text()
    assert csv.startswith("model,quant,device,backend,threads,latency_ms,source")
    assert (data / "README.md").exists()
