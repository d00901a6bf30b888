"""wb.report: summary, profile, memory and diff of one model in one self-contained HTML file."""

from __future__ import annotations

import base64
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.analysis.report import KEY_COLUMNS, ModelReport
from workbench.analysis.summary import totals

ROOT = Path(__file__).resolve().parents[1]
FLOAT = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"
INT8 = ROOT / "datasets" / "models" / "quickstart_cnn_int8.tflite"
#: Deterministic columns of the profile table (the rest are times).
STATIC_PROFILE = ["index", "node type", "name", "mem KB", "times called", "MACs", "bytes read",
                  "bytes written", "intensity"]


class _Doc(HTMLParser):
    """Every start tag with its attributes, the text of the key-figure table's cells, and the
    text inside <style> elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.key_rows: list[list[str]] = []
        self.styles: list[str] = []
        self._in_key = self._in_td = self._in_style = False
        self._row: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "table" and "wb-key" in a.get("class", ""):
            self._in_key = True
        elif self._in_key and tag == "tr":
            self._row = []
        elif self._in_key and tag == "td":
            self._in_td = True
            self._row.append("")
        elif tag == "style":
            self._in_style = True
            self.styles.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_key = False
        elif self._in_key and tag == "tr" and self._row:
            self.key_rows.append(self._row)
        elif tag == "td":
            self._in_td = False
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_key and self._in_td:
            self._row[-1] += data
        if self._in_style:
            self.styles[-1] += data


def _parse(html: str) -> _Doc:
    doc = _Doc()
    doc.feed(html)
    doc.close()
    return doc


def _html_figures(doc: _Doc) -> dict[tuple[str, str], float]:
    """(section, figure) -> value as shown in the key-figure table."""
    out = {}
    for section, figure, value, _unit in doc.key_rows:
        out[(section, figure)] = float(value.replace(",", "")) if value else np.nan
    return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return [rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(4)]


@pytest.fixture(scope="module")
def rep(data):
    return wb.report(INT8, reference=FLOAT, dataset=data, runs=3, warmup=1)


@pytest.fixture(scope="module")
def doc(rep):
    return _parse(rep.to_html())


def test_sections_and_figures_present(rep, doc):
    assert isinstance(rep, ModelReport)
    ids = [a.get("id") for _, a in doc.tags if a.get("id")]
    assert ids == ["wb-model", "wb-profile", "wb-memory", "wb-diff"]
    imgs = [a["alt"] for t, a in doc.tags if t == "img"]
    assert imgs == ["overview figure", "profile figure", "memory figure", "diff figure"]
    assert list(rep.df.columns) == KEY_COLUMNS
    assert set(rep.df["section"]) == {"model", "profile", "memory", "diff", "reference"}
    assert rep.df["value"].dtype == np.float64
    assert rep.skipped == {}
    assert rep.model_name == "quickstart_cnn_int8.tflite"
    assert rep.reference_name == "quickstart_cnn_float32.tflite"


def test_html_key_figures_equal_df(rep, doc):
    shown = _html_figures(doc)
    df = rep.df
    assert [(s, f) for s, f, *_ in doc.key_rows] == list(zip(df["section"], df["figure"]))
    for s, f, v in zip(df["section"], df["figure"], df["value"]):
        assert shown[(s, f)] == pytest.approx(v, rel=1e-5, abs=1e-12), (s, f)


def test_model_and_memory_figures_equal_separate_results(rep, doc):
    shown = _html_figures(doc)
    t = totals(wb.load(INT8))
    assert shown[("model", "file size")] == os.path.getsize(INT8) == t["file_size"]
    for fig, key in [("parameters", "params"), ("weights", "weight_bytes"), ("MACs", "macs"),
                     ("operators", "num_ops")]:
        assert shown[("model", fig)] == t[key], fig
    pd.testing.assert_frame_equal(rep.summary, wb.load(INT8).summary())

    mem = wb.memory_report(INT8, measure_rss=False)
    assert shown[("memory", "arena")] == mem.arena_bytes
    assert shown[("memory", "lower bound")] == mem.lower_bound
    assert shown[("memory", "TFLite-style greedy")] == mem.greedy_bytes
    # tflite-micro's own allocator is the oracle of these three.
    assert mem.micro is not None
    for k in ("head", "tail", "total"):
        assert shown[("memory", f"tflite-micro {k}")] == mem.micro[k]
    pd.testing.assert_frame_equal(rep.memory.timeline, mem.timeline)

    ref_mem = wb.memory_report(FLOAT, measure_rss=False, micro=False)
    assert shown[("reference", "reference arena")] == ref_mem.arena_bytes
    assert shown[("reference", "arena / reference")] == pytest.approx(
        mem.arena_bytes / ref_mem.arena_bytes, rel=1e-5)
    assert shown[("reference", "reference file size")] == os.path.getsize(FLOAT)
    assert shown[("reference", "file size / reference")] == pytest.approx(
        os.path.getsize(INT8) / os.path.getsize(FLOAT), rel=1e-5)


def test_profile_section_is_the_profile_of_this_model(rep, doc):
    shown = _html_figures(doc)
    tm = rep.profile.timings
    assert shown[("profile", "latency mean")] == pytest.approx(tm["avg ms"], rel=1e-5)
    assert shown[("profile", "sum of per-op means")] == pytest.approx(tm["op sum ms"], rel=1e-5)
    assert rep.profile.runs == 3
    # Times differ between runs; everything else must equal a separate profile.
    other = wb.profile(INT8, runs=3, warmup=1)
    pd.testing.assert_frame_equal(rep.profile.df[STATIC_PROFILE], other.df[STATIC_PROFILE])
    gmacs = totals(wb.load(INT8))["macs"] / tm["avg ms"] / 1e6
    assert shown[("profile", "throughput")] == pytest.approx(gmacs, rel=1e-5)


def test_diff_figures_equal_separate_diff(rep, doc, data):
    shown = _html_figures(doc)
    d = wb.diff(FLOAT, INT8, data)
    pd.testing.assert_frame_equal(rep.diff.df, d.df)
    assert shown[("diff", "samples")] == len(data) == d.summary["samples"]
    assert shown[("diff", "layers compared")] == d.summary["layers"]
    assert shown[("diff", "output SQNR")] == pytest.approx(d.summary["output_sqnr_db"], rel=1e-5)
    assert shown[("diff", "top-1 agreement")] == d.summary["top1_agreement"]


def test_output_sqnr_against_litert(rep, data):
    """The report's output SQNR from both models run in LiteRT instead of our interpreter."""
    f_it = litert_interpreter(FLOAT.read_bytes())
    q_it = litert_interpreter(INT8.read_bytes())
    f_it.allocate_tensors()
    q_it.allocate_tensors()
    qi, qo = q_it.get_input_details()[0], q_it.get_output_details()[0]
    s_in, z_in = qi["quantization"]
    s_out, z_out = qo["quantization"]
    sig = noise = 0.0
    for x in data:
        f_it.set_tensor(f_it.get_input_details()[0]["index"], x)
        f_it.invoke()
        ref = f_it.get_tensor(f_it.get_output_details()[0]["index"]).astype(np.float64)
        q = np.clip(np.round(x / s_in) + z_in, -128, 127).astype(np.int8)
        q_it.set_tensor(qi["index"], q)
        q_it.invoke()
        cand = (q_it.get_tensor(qo["index"]).astype(np.float64) - z_out) * s_out
        sig += float(np.sum(ref ** 2))
        noise += float(np.sum((cand - ref) ** 2))
    want = 10 * np.log10(sig / noise)
    assert rep.diff.summary["output_sqnr_db"] == pytest.approx(want, abs=0.01)


def test_saved_file_is_self_contained(rep, tmp_path):
    path = rep.save(tmp_path / "report.html")
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    doc = _parse(text)
    tags = [t for t, _ in doc.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert "<script" not in text.lower()
    imgs = [a for t, a in doc.tags if t == "img"]
    assert len(imgs) == 4
    for a in imgs:
        src = a["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    for tag, attrs in doc.tags:
        for k, v in attrs.items():
            if k in ("src", "href", "action", "srcset", "data", "poster"):
                assert v.startswith(("data:", "#")), (tag, k, v[:40])
            assert not v.lstrip().lower().startswith(("http:", "https:", "//")), (tag, k, v)
    assert 'src="http' not in text and "<script src" not in text
    css = "".join(doc.styles)
    assert "url(" not in css and "@import" not in css
    assert {"wb-model", "wb-profile", "wb-memory", "wb-diff"} <= {
        a.get("id") for _, a in doc.tags}


def test_save_refuses_to_overwrite(rep, tmp_path):
    target = tmp_path / "mine.html"
    target.write_text("the user's own file")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        rep.save(target)
    assert target.read_text() == "the user's own file"
    with pytest.raises(IsADirectoryError):
        rep.save(tmp_path)
    assert rep.save(target, overwrite=True) == str(target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.html"]  # no temp files left


def test_report_without_reference_from_bytes_path_or_model(capsys):
    from_bytes = wb.report(FLOAT.read_bytes(), runs=1, warmup=0, measure_rss=False,
                           progress=True)
    assert "3/3" in capsys.readouterr().err  # the progress bar went through the 3 sections
    assert from_bytes.diff is None and from_bytes.reference_totals is None
    assert set(from_bytes.df["section"]) == {"model", "profile", "memory"}
    assert from_bytes.title == "Model report"
    html = from_bytes._repr_html_()
    assert 'id="wb-diff"' not in html and 'id="wb-profile"' in html
    model_rows = from_bytes.df[from_bytes.df["section"] != "profile"].reset_index(drop=True)
    for src in (FLOAT, wb.load(FLOAT)):
        r = wb.report(src, runs=1, warmup=0, measure_rss=False, title="mine")
        assert r.title == "mine" and r.model_name == "quickstart_cnn_float32.tflite"
        pd.testing.assert_frame_equal(
            r.df[r.df["section"] != "profile"].reset_index(drop=True), model_rows)
    fig = from_bytes.plot()
    assert len(fig.axes) == 2  # time per op, live bytes per step
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx(list(from_bytes.profile.df["avg ms"]))
    with pytest.raises(wb.InputError, match="no diff section"):
        from_bytes.plot("diff")
    assert from_bytes.plot("memory") is not None


def test_default_diff_samples_cover_the_quantized_input_range():
    r = wb.report(INT8, reference=FLOAT, runs=1, warmup=0, samples=3, measure_rss=False,
                  micro=False)
    assert r.diff.summary["samples"] == 3
    assert "uniform over the quantized input range" in r.settings["diff data"]
    from workbench.analysis.report import _diff_samples

    q = wb.load(INT8).main.inputs[0].quantization
    lo = float(q.scale[0]) * (-128 - int(q.zero_point[0]))
    hi = float(q.scale[0]) * (127 - int(q.zero_point[0]))
    xs = np.concatenate([s[0].ravel() for s in _diff_samples(wb.load(FLOAT), wb.load(INT8),
                                                             3, 0)])
    assert xs.min() >= lo - 1e-6 and xs.max() <= hi + 1e-6
    assert xs.max() - xs.min() > 0.9 * (hi - lo)  # spread over the range, not a corner of it
    # Inside the range nothing clips, so every layer is a few quantization steps at most.
    assert r.diff.summary["max_rmse/scale"] < 5


def test_unsupported_op_leaves_out_what_needs_kernels():
    m = wb.load(INT8.read_bytes())
    m.main.operators[3].opcode = m.opcode(custom_code="NoSuchKernel")
    r = wb.report(m, runs=1, warmup=0, reference=FLOAT, samples=1, micro=False)
    assert r.profile is None and "NoSuchKernel" in r.skipped["profile"]
    assert r.diff is None and "NoSuchKernel" in r.skipped["diff"]
    assert r.memory.rss_growth is None and "NoSuchKernel" in r.memory.rss_reason
    assert r.memory.arena_bytes == wb.memory_report(m, measure_rss=False).arena_bytes
    assert set(r.df["section"]) == {"model", "memory", "reference"}
    assert "not measured: profile, diff" in repr(r)
    doc = _parse(r._repr_html_())
    assert [a.get("id") for _, a in doc.tags if a.get("id")] == [
        "wb-model", "wb-memory", "wb-diff"]
    assert [a["alt"] for t, a in doc.tags if t == "img"] == ["overview figure", "memory figure"]
    html = r._repr_html_()
    assert "diff not measured" in html and "NoSuchKernel" in html


def test_bad_arguments_raise_input_error(data):
    with pytest.raises(wb.InputError, match="runs"):
        wb.report(FLOAT, runs=0)
    with pytest.raises(wb.InputError, match="samples"):
        wb.report(INT8, reference=FLOAT, samples=0)
    with pytest.raises(wb.InputError, match="reference"):
        wb.report(INT8, dataset=data)
    with pytest.raises(wb.InputError, match="empty"):
        wb.report(INT8, reference=FLOAT, dataset=[], runs=1, measure_rss=False, micro=False)
    other = wb.load(FLOAT.read_bytes())
    other.main.inputs[0].shape = (1, 16, 16, 3)
    with pytest.raises(wb.InputError, match="input 0"):
        wb.report(INT8, reference=other)
    with pytest.raises(wb.ModelError):
        wb.report(INT8, reference=b"\0" * 64)
    with pytest.raises(wb.InputError, match="1 inputs, got 2"):
        wb.report(FLOAT, [data[0], data[0]], runs=1)
    with pytest.raises(wb.InputError, match="kind"):
        wb.report(FLOAT, runs=1, measure_rss=False).plot("nope")
