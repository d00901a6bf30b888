"""Calibration (``workbench.quantize.calibrate``): statistics and every range method against
independent numpy computations, LiteRT's activations, streaming vs one-shot, persistence and
input errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from workbench.errors import InputError  # noqa: E402
from workbench.quantize.calibrate import (  # noqa: E402
    METHODS,
    CalibrationStats,
    TensorStats,
    collect,
    expected_mse,
    scale_zero_point,
)

QUICKSTART = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"


def stats_of(chunks, bins=2048) -> TensorStats:
    s = TensorStats("t", 0, "TEST", (), bins=bins)
    for c in chunks:
        s.update(np.asarray(c, np.float32))
    return s


def int8_mse(x: np.ndarray, lo: float, hi: float, bits: int = 8) -> float:
    """Mean squared error of TFLite-style asymmetric quantization of x to [lo, hi] (written
    out here, independently of the module)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    scale = (hi - lo) / (qmax - qmin)
    zp = np.clip(np.round(qmin - lo / scale), qmin, qmax)
    q = np.clip(np.round(x / scale) + zp, qmin, qmax)
    return float(np.mean(((q - zp) * scale - x) ** 2))


RNG = np.random.default_rng(1234)
DISTS = {
    "normal": RNG.standard_normal(40_000),
    "relu": np.maximum(RNG.standard_normal(40_000), 0.0),
    "laplace": RNG.laplace(0.3, 1.0, 40_000),
    "uniform": RNG.uniform(-0.5, 2.0, 40_000),
    "negative_exp": -RNG.exponential(2.0, 40_000),
    "student_t": RNG.standard_t(2.5, 40_000),
}


# -- per-method checks on known distributions -----------------------------------------------
@pytest.mark.parametrize("name", sorted(DISTS))
def test_minmax_exact_and_summary(name):
    x = DISTS[name].astype(np.float32)
    s = stats_of(np.array_split(x, 7))
    assert s.range("minmax") == (float(x.min()), float(x.max()))
    assert s.count == x.size
    assert s.zeros == int(np.sum(x == 0))
    assert s.mean == pytest.approx(float(np.mean(x.astype(np.float64))), rel=1e-5, abs=1e-6)
    assert s.std == pytest.approx(float(np.std(x.astype(np.float64))), rel=1e-4)


@pytest.mark.parametrize("name", sorted(DISTS))
def test_histogram_streaming_equals_one_shot(name):
    x = DISTS[name].astype(np.float32)
    # Growing chunks force several re-binnings (width doublings).
    chunks = [x[:50], x[50:500], x[500:5000], x[5000:]]
    s = stats_of(chunks, bins=512)
    counts, edges = s.histogram()
    assert counts.sum() == x.size
    assert 256 <= counts.size <= 512
    ref, _ = np.histogram(x.astype(np.float64), bins=edges)
    # float32 bin arithmetic may move a value lying within rounding distance of an edge to
    # the neighbouring bin (np.histogram also closes its last bin); nothing else may differ.
    pos = (x.astype(np.float64) - edges[0]) / s.width
    near = int(np.sum(np.abs(pos - np.round(pos)) < 1e-4))
    assert np.abs(ref - counts).sum() <= 2 * near + 1
    one = stats_of([x], bins=512)
    assert one.range("minmax") == s.range("minmax")
    w = max(s.width, one.width)
    for p in (99.0, 99.99):
        a, b = s.range("percentile", percentile=p), one.range("percentile", percentile=p)
        assert a == pytest.approx(b, abs=2 * w)


def assert_quantile(v: float, x: np.ndarray, q: float, w: float) -> None:
    """``v`` is the ``q`` quantile of ``x`` up to one histogram bin ``w``: within a bin of the
    order statistics around rank ``q * (n - 1)`` (np.percentile interpolates between them; in a
    sparse tail they can be several bins apart)."""
    xs = np.sort(x.astype(np.float64))
    r = q * (xs.size - 1)
    lo = xs[max(int(np.floor(r)) - 1, 0)]
    hi = xs[min(int(np.ceil(r)) + 1, xs.size - 1)]
    assert lo - 1.01 * w <= v <= hi + 1.01 * w, (v, lo, hi, w)


@pytest.mark.parametrize("name", sorted(DISTS))
@pytest.mark.parametrize("p", [99.0, 99.9, 99.99])
def test_percentile_matches_numpy_within_a_bin(name, p):
    x = DISTS[name].astype(np.float32)
    s = stats_of(np.array_split(x, 5))
    lo, hi = s.range("percentile", percentile=p)
    assert_quantile(lo, x, 1 - p / 100, s.width)
    assert_quantile(hi, x, p / 100, s.width)
    a, b = s.range("percentile", percentile=p, symmetric=True)
    assert a == -b
    assert_quantile(b, np.abs(x), p / 100, s.width)
    # Where the data is dense, plainly within a bin of np.percentile.
    assert s.range("percentile", percentile=90.0)[1] == pytest.approx(
        np.percentile(x.astype(np.float64), 90.0), abs=1.01 * s.width)


def test_percentile_of_relu_zeros_is_zero():
    # 60% exact zeros: the lower percentile is the point mass itself, not inside bin 0.
    x = np.where(RNG.random(10_000) < 0.6, 0.0, RNG.exponential(1.0, 10_000)).astype(np.float32)
    s = stats_of([x])
    assert s.range("percentile", percentile=99.0)[0] == 0.0
    assert s.range("percentile", percentile=70.0)[1] == pytest.approx(
        np.percentile(x, 70.0), abs=s.width)


def test_moving_average_is_ema_of_batch_extremes():
    chunks = [RNG.normal(0, 1 + k % 3, 500).astype(np.float32) for k in range(12)]
    s = stats_of(chunks)
    for mom in (0.0, 0.5, 0.9, 0.99):
        lo = hi = None
        for c in chunks:
            lo = float(c.min()) if lo is None else mom * lo + (1 - mom) * float(c.min())
            hi = float(c.max()) if hi is None else mom * hi + (1 - mom) * float(c.max())
        assert s.range("moving_average", momentum=mom) == pytest.approx((lo, hi), rel=1e-12)
    mean = (np.mean([c.min() for c in chunks]), np.mean([c.max() for c in chunks]))
    assert s.range("moving_average", momentum=None) == pytest.approx(mean, rel=1e-12)
    with pytest.raises(InputError, match="momentum"):
        s.range("moving_average", momentum=1.5)


@pytest.mark.parametrize("name", sorted(DISTS))
def test_mse_minimizes_brute_force_quantization_error(name):
    x = DISTS[name]
    s = stats_of(np.array_split(x.astype(np.float32), 4))
    lo, hi = s.range("mse")
    assert min(x.min(), 0) <= lo <= 0 <= hi <= max(x.max(), 0)
    ours = int8_mse(x, lo, hi)
    # Brute force: actual quantize/dequantize of the data over a grid of clip ranges.
    neg = np.linspace(min(x.min(), 0.0), 0.0, 41)
    pos = np.linspace(0.0, max(x.max(), 0.0), 41)
    best = min(int8_mse(x, a, b) for a in neg for b in pos if b - a > 0)
    assert ours <= 1.03 * best, (ours, best)
    assert ours <= 1.03 * int8_mse(x, x.min(), x.max())


@pytest.mark.parametrize("name", sorted(DISTS))
def test_mse_error_model_predicts_actual_quantization_error(name):
    """The objective ``mse`` minimizes (clip error + step**2/12 rounding noise, exact zeros
    free) agrees with quantizing the data for real, at full and clipped ranges."""
    x = DISTS[name]
    s = stats_of([x.astype(np.float32)])
    lo, hi = min(x.min(), 0.0), max(x.max(), 0.0)
    for f in (1.0, 0.5, 0.2):
        model = float(expected_mse(s, lo * f, hi * f))
        assert model == pytest.approx(int8_mse(x, lo * f, hi * f), rel=0.05), f


def test_mse_int16_symmetric_and_prefers_full_range_for_uniform():
    x = DISTS["uniform"]
    s = stats_of([x.astype(np.float32)])
    lo, hi = s.range("mse")
    # Nothing to gain by clipping a bounded flat distribution at 8 bits: (almost) the full range.
    assert lo == pytest.approx(x.min(), abs=0.02) and hi == pytest.approx(x.max(), abs=0.02)
    a, b = stats_of([DISTS["student_t"].astype(np.float32)]).range("mse", num_bits=16,
                                                                    symmetric=True)
    assert a == -b and b > 0
    # 16 bits leave rounding noise tiny: the clip stays far out in the tail.
    assert b > np.percentile(np.abs(DISTS["student_t"]), 99.99)


def reference_kl_curve(hist: np.ndarray, levels: int):
    """TensorRT's entropy recipe written plainly (as pytorch-quantization's calibrator
    does): for each candidate ``i`` bins, P = hist[:i] with the outliers added to its last
    bin; Q gives level ``digitize(j, linspace(0, i, levels + 1))`` the mass of its non-empty
    bins, spread evenly over them. Returns (candidates, KL values)."""
    ts, kls = [], []
    for i in range(levels, hist.size + 1):
        p = hist[:i].astype(float)
        p[-1] += hist[i:].sum()
        d = np.digitize(np.arange(i), np.linspace(0, i, levels + 1)) - 1
        d[hist[:i] == 0] = -1
        q = np.zeros(i)
        for g in np.unique(d[d >= 0]):
            q[d == g] = hist[:i][d == g].sum() / np.sum(d == g)
        p /= p.sum()
        q /= q.sum()
        m = p > 0
        kls.append(np.sum(p[m] * np.log(p[m] / np.maximum(q[m], 1e-12))))
        ts.append(i)
    return np.array(ts), np.array(kls)


@pytest.mark.parametrize("name", ["student_t", "laplace", "relu", "negative_exp"])
def test_kl_threshold_minimizes_an_independent_kl(name):
    x = DISTS[name]
    s = stats_of(np.array_split(x.astype(np.float32), 3), bins=512)
    lo, hi = s.range("kl")
    one_sided = x.min() >= 0 or x.max() <= 0
    thr = max(-lo, hi) if not one_sided else (hi if x.min() >= 0 else -lo)
    # np.histogram of the non-zero |x| on our grid (zero-anchored, width s.width); the recipe's
    # optimum depends on the resolution, so the same one.
    ax = np.abs(x.astype(np.float32).astype(np.float64))
    ax = ax[ax != 0]
    hist, _ = np.histogram(ax, bins=np.arange(int(np.ceil(ax.max() / s.width)) + 1) * s.width)
    ts, kls = reference_kl_curve(hist, 255 if one_sided else 128)
    ours = kls[np.argmin(np.abs(ts * s.width - thr))]
    assert ours <= 1.02 * kls.min() + 1e-9, (thr, ts[np.argmin(kls)] * s.width, ours, kls.min())
    # A heavy tail is clipped: inside the outermost 1% but short of the maximum.
    assert np.percentile(np.abs(x), 99.0) < thr < np.abs(x).max()
    if x.min() >= 0:
        assert lo == float(x.astype(np.float32).min())  # one-sided: the exact minimum is kept
    elif x.max() <= 0:
        assert hi == float(x.astype(np.float32).max())
    else:  # two-sided: [-T, T] within the data
        x32 = x.astype(np.float32)
        assert (lo, hi) == (max(float(x32.min()), -thr), min(float(x32.max()), thr))


def test_kl_without_loss_returns_minmax():
    # More levels than histogram bins (int16): nothing the histogram can see is lost.
    x = DISTS["student_t"].astype(np.float32)
    assert stats_of([x], bins=256).range("kl", num_bits=16) == (float(x.min()), float(x.max()))


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_tensors(method):
    zeros = stats_of([np.zeros(10), np.zeros(3)])
    assert zeros.range(method) == (0.0, 0.0)
    const = stats_of([np.full(5, 2.5)])
    assert const.range(method) == (2.5, 2.5)
    # A constant first, then a spread: the constant's count lands in the histogram.
    s = stats_of([np.full(5, 2.5), np.array([-1.0, 4.0])])
    counts, edges = s.histogram()
    assert counts.sum() == 7 and edges[0] <= -1.0 and edges[-1] >= 4.0
    assert counts[np.searchsorted(edges, 2.5, side="right") - 1] == 5
    lo, hi = s.range(method)
    assert -1.0 <= lo <= 0.0 <= hi <= 4.0 or method in ("minmax", "moving_average",
                                                        "percentile")
    single = stats_of([np.array([0.5])])
    assert single.range(method) == (0.5, 0.5)
    empty = TensorStats("e", 0, "X", ())
    assert empty.range(method) == (0.0, 0.0)


def test_nonfinite_values_are_ignored_and_counted():
    s = stats_of([np.array([1.0, np.inf, -2.0, np.nan, 0.0])])
    assert s.range("minmax") == (-2.0, 1.0)
    assert s.nonfinite == 2 and s.count == 3 and s.zeros == 1


def test_unknown_method_and_option():
    s = stats_of([DISTS["normal"].astype(np.float32)])
    with pytest.raises(InputError, match="unknown calibration method"):
        s.range("median")
    with pytest.raises(InputError, match="no option"):
        s.range("percentile", pct=99)
    with pytest.raises(InputError, match="percentile must be"):
        s.range("percentile", percentile=30)


def test_scale_zero_point_matches_tflite_formula():
    sc, zp = scale_zero_point(-1.0, 3.0)
    assert sc == pytest.approx(4.0 / 255) and zp == round(-128 + 1.0 / (4.0 / 255))
    sc, zp = scale_zero_point(0.5, 3.0)  # extended to contain 0
    assert sc == pytest.approx(3.0 / 255) and zp == -128
    sc, zp = scale_zero_point(-2.0, 1.0, num_bits=16, symmetric=True)
    assert sc == pytest.approx(2.0 / 32767) and zp == 0


# -- collect on real models ---------------------------------------------------------------------
def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(n)]


def test_collect_minmax_equals_litert_activations():
    from tests.litert_oracle import litert_interpreter

    content = QUICKSTART.read_bytes()
    data = _images(6)
    stats = collect(content, data, progress=False)
    it = litert_interpreter(content, preserve_all=True)
    it.allocate_tensors()
    ref: dict[int, list] = {}
    for x in data:
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        for d in it.get_tensor_details():
            if d["dtype"] == np.float32 and d["index"] in {s.index for s in
                                                            stats.tensors.values()}:
                ref.setdefault(d["index"], []).append(it.get_tensor(d["index"]).copy())
    m = wb.load(content)
    # Every float activation (input + op outputs), no weights.
    expected = {i for i, t in enumerate(m.main.tensors) if t.numpy_dtype == np.float32
                and not t.is_constant}
    assert {s.index for s in stats.tensors.values()} == expected
    for s in stats.tensors.values():
        v = np.stack(ref[s.index])
        tol = 1e-5 * max(float(np.ptp(v)), 1e-6)
        assert s.min == pytest.approx(float(v.min()), abs=tol)
        assert s.max == pytest.approx(float(v.max()), abs=tol)
        assert s.count == v.size
    assert stats.samples == 6
    df = stats.df
    assert len(df) == len(expected)
    for m_ in METHODS:
        assert {f"{m_}_min", f"{m_}_max", f"{m_}_scale", f"{m_}_zero_point"} <= set(df.columns)
    assert (df["minmax_scale"] > 0).all()


def test_dataset_forms_agree():
    data = _images(3, seed=5)
    base = collect(QUICKSTART, data, progress=False).ranges()
    name = wb.load(QUICKSTART).main.inputs[0].name

    def gen():
        for x in data:
            yield [x]

    forms = [gen, (tuple([x]) for x in data), [{name: x} for x in data],
             np.concatenate(data), [x.astype(np.float64) for x in data]]
    for f in forms:
        assert collect(QUICKSTART, f, progress=False).ranges() == base
    # A batch of 3 in one sample: the same values (up to BLAS summation order in a batched GEMM).
    batched = collect(QUICKSTART, [np.concatenate(data)], progress=False).ranges()
    assert batched.keys() == base.keys()
    for k in base:
        assert batched[k] == pytest.approx(base[k], rel=1e-5, abs=1e-7)


def test_collect_tensors_subset_and_per_tensor_methods():
    data = _images(4)
    full = collect(QUICKSTART, data, progress=False)
    names = full.names
    sub = collect(QUICKSTART, data, tensors=names[1:3], progress=False)
    assert sub.names == names[1:3]
    assert sub.ranges() == {n: full.range(n) for n in names[1:3]}
    per = full.ranges({names[1]: "percentile", names[2]: ("mse", {"num_bits": 8})},
                      percentile=99.0)
    assert per[names[1]] == full.range(names[1], "percentile", percentile=99.0)
    assert per[names[2]] == full.range(names[2], "mse")
    assert per[names[3]] == full.range(names[3], "minmax")
    per = full.ranges({names[1]: "kl"}, default="percentile")
    assert per[names[3]] == full.range(names[3], "percentile")
    with pytest.raises(InputError, match="unknown tensors"):
        full.ranges({"nope": "mse"})
    with pytest.raises(InputError, match=r"unknown calibration option\(s\) \['pct'\]"):
        full.ranges("percentile", pct=99.0)
    with pytest.raises(InputError, match="unknown calibration method 'median'"):
        full.ranges({names[1]: "median"})
    # Options go to the methods that take them: one call configures several.
    mixed = full.ranges({names[1]: "percentile", names[2]: "moving_average"},
                        percentile=99.0, momentum=0.5)
    assert mixed[names[1]] == full.range(names[1], "percentile", percentile=99.0)
    assert mixed[names[2]] == full.range(names[2], "moving_average", momentum=0.5)
    with pytest.raises(InputError, match="not float activation"):
        collect(QUICKSTART, data, tensors=["nope"], progress=False)
    with pytest.raises(InputError, match="no calibrated tensor"):
        full.range("nope")


def test_save_load_round_trip(tmp_path):
    stats = collect(QUICKSTART, _images(3), progress=False)
    p = tmp_path / "calib.npz"
    stats.save(p)
    with pytest.raises(FileExistsError):
        stats.save(p)
    stats.save(p, overwrite=True)
    back = CalibrationStats.load(p)
    assert back.names == stats.names and back.samples == 3
    for m in METHODS:
        assert back.ranges(m) == stats.ranges(m)
    for n in stats.names:
        c0, e0 = stats.histogram(n)
        c1, e1 = back.histogram(n)
        np.testing.assert_array_equal(c0, c1)
        np.testing.assert_array_equal(e0, e1)
    assert back.df.equals(stats.df)
    h = stats.histogram(stats.names[1], frame=True)
    c, e = stats.histogram(stats.names[1])
    assert list(h.columns) == ["lo", "hi", "count"] and h["count"].sum() == c.sum() == \
        stats[stats.names[1]].count
    np.testing.assert_array_equal(h["lo"].to_numpy(), e[:-1])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read calibration"):
        CalibrationStats.load(tmp_path / "bad.npz")
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]


def test_input_errors():
    data = _images(1)
    with pytest.raises(InputError, match=r"shape \[1, 16, 16, 3\]"):
        collect(QUICKSTART, [np.zeros((1, 16, 16, 3), np.float32)], progress=False)
    with pytest.raises(InputError, match="floating-point"):
        collect(QUICKSTART, [np.zeros((1, 32, 32, 3), np.int32)], progress=False)
    with pytest.raises(InputError, match="model has 1 inputs, got 2"):
        collect(QUICKSTART, [[data[0], data[0]]], progress=False)
    with pytest.raises(InputError, match="no model input named"):
        collect(QUICKSTART, [{"nope": data[0]}], progress=False)
    with pytest.raises(InputError, match="no samples"):
        collect(QUICKSTART, [], progress=False)
    with pytest.raises(InputError, match="iterable"):
        collect(QUICKSTART, 3, progress=False)
    with pytest.raises(InputError, match="sample 1"):
        collect(QUICKSTART, [data[0], data[0][:, :8]], progress=False)
    bad = data[0].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="sample 1, input .*1 of 3072 values are NaN"):
        collect(QUICKSTART, [data[0], bad], progress=False)


def test_two_input_model_and_integer_input():
    from tests import corpus

    path = corpus.model_path("elementwise_math", "float32")
    if path is None:
        pytest.skip(corpus.unsupported_reason("elementwise_math", "float32"))
    m = wb.load(path)
    a, b = m.main.inputs
    rng = np.random.default_rng(0)
    xs = [[rng.standard_normal(a.shape).astype(np.float32),
           rng.standard_normal(b.shape).astype(np.float32)] for _ in range(3)]
    by_list = collect(m, xs, progress=False)
    by_dict = collect(m, [{b.name: y, a.name: x} for x, y in xs], progress=False)
    assert by_list.ranges() == by_dict.ranges()
    assert by_list.range(a.name) == (float(np.min([x for x, _ in xs])),
                                     float(np.max([x for x, _ in xs])))
    with pytest.raises(InputError, match="missing model inputs"):
        collect(m, [{a.name: xs[0][0]}], progress=False)
    emb = corpus.model_path("embedding", "float32")
    if emb is not None:
        e = wb.load(emb)
        t = e.main.inputs[0]
        with pytest.raises(InputError, match=f"input {t.name!r}: expected int32"):
            collect(e, [np.zeros(t.shape, np.float32)], progress=False)
        ok = collect(e, [np.zeros(t.shape, np.int32)], progress=False)
        assert t.name not in ok  # integer inputs are not calibrated


def test_progress_bar_goes_to_stderr(capsys):
    collect(QUICKSTART, _images(2), progress=True)
    assert "calibrating" in capsys.readouterr().err


def test_plot_returns_figure():
    stats = collect(QUICKSTART, _images(2), progress=False)
    fig = stats.plot(stats.names[1])
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith(stats.names[1])
    assert fig._repr_png_()[:4] == b"\x89PNG"
