"""One report of a model: summary, latency profile, memory and, given a reference, a layer diff.

:func:`report` runs the workbench's analysis tools on one model and returns a
:class:`ModelReport` holding their result objects unchanged:

``summary`` / ``totals``
    The per-operator DataFrame of :func:`workbench.analysis.summary.summary` and the whole-model
    figures of :func:`~workbench.analysis.summary.totals`.
``profile``
    The :class:`~workbench.analysis.profile.ProfileResult` of :func:`wb.profile
    <workbench.analysis.profile.profile>` (``None`` when an operator has no kernel; the reason
    is in ``skipped``).
``memory``
    The :class:`~workbench.analysis.memory.MemoryReport` of :func:`wb.memory_report
    <workbench.analysis.memory.memory_report>`.
``diff``
    With ``reference=``: the :class:`~workbench.analysis.diff.DiffResult` of
    :func:`wb.diff <workbench.analysis.diff.diff>` with the reference as the reference and the
    reported model as the candidate, and ``reference_totals`` / ``reference_arena`` to set the
    sizes side by side.

``.df`` is the table of key figures, one row per figure (``section``, ``figure``, ``value`` as a
float, ``unit``); a figure has the same name in every report, so the tables of several models
concatenate into one comparison (figures a model lacks, such as tflite-micro's arena of a float
model, are simply absent). The sections are ``model``, ``profile``, ``memory``, ``diff`` and
``reference`` (sizes, MACs and arena against the reference model). ``.plot()`` draws the three
costs against run order (time per op, live bytes per step, SQNR per layer); ``.plot("profile")``
etc. return the tools' own figures.
``_repr_html_`` shows headline figures, the key-figure table and every tool's own HTML view
with its figure, and :meth:`ModelReport.save` writes the same as one self-contained HTML file:
inline CSS, figures as ``data:`` PNG images, no scripts and no external references, so it can
be mailed or attached to an issue and opens offline.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis import _result as R
from workbench.analysis.diff import DiffResult
from workbench.analysis.memory import MemoryReport
from workbench.analysis.profile import ProfileResult
from workbench.errors import InputError, ModelError, UnsupportedOpError, WorkbenchError
from workbench.ir.graph import Model

#: Columns of :attr:`ModelReport.df`.
KEY_COLUMNS = ["section", "figure", "value", "unit"]
#: Sections of ``.df`` in report order (``reference``: sizes against the reference model).
SECTIONS = ("model", "profile", "memory", "diff", "reference")
#: Failures while *running* a model (not loading it) that leave out only the sections needing
#: a run: an op without a kernel, or a kernel rejecting the graph at prepare time.
_RUN_ERRORS = (UnsupportedOpError, ModelError)
_TITLES = {"model": "Model", "profile": "Latency", "memory": "Memory",
           "diff": "Against the reference: sizes and quantization error"}

_EXTRA_CSS = """
.S{max-width:1200px}
.S h2{font-size:18px;margin:4px 0 2px 0}
.S h3{font-size:15px;margin:16px 0 4px 0;padding-top:6px;
 border-top:1px solid rgba(128,128,128,.35)}
.S .wb-cards{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 10px 0}
.S .wb-card{border:1px solid rgba(128,128,128,.35);border-radius:4px;padding:4px 10px;
 min-width:110px}
.S .wb-card b{display:block;font-size:16px}
.S .wb-card span{color:#888;font-size:11px}
.S img.wb-fig{max-width:100%;height:auto;display:block;margin:4px 0 8px 0}
.S .wb-skip{color:#b35900}
""".strip()


def _css() -> str:
    return R.css("wb-report") + "\n" + _EXTRA_CSS.replace(".S", ".wb-report")


@dataclass
class ModelReport:
    """Summary, profile, memory and (optionally) diff of one model; see the module docstring."""

    model: Model
    model_name: str
    title: str
    summary: pd.DataFrame
    totals: dict[str, Any]
    profile: ProfileResult | None
    memory: MemoryReport
    diff: DiffResult | None = None
    reference_name: str = ""
    reference_totals: dict[str, Any] | None = None
    #: Our planner's arena for the reference model (bytes), for the size comparison.
    reference_arena: int | None = None
    #: Sections that could not run, with the reason (e.g. an operator without a kernel).
    skipped: dict[str, str] = field(default_factory=dict)
    #: How the figures were obtained: runs, inputs, dataset, seed, threads.
    settings: dict[str, Any] = field(default_factory=dict)
    #: Where and when: workbench/python/numpy versions, platform, CPU count, UTC time.
    environment: dict[str, Any] = field(default_factory=dict)
    _png: dict[str, bytes] = field(default_factory=dict, repr=False)

    # -- tables ----------------------------------------------------------------------------
    @property
    def df(self) -> pd.DataFrame:
        """Key figures, one row each: ``section``, ``figure``, ``value`` (float), ``unit``."""
        return pd.DataFrame(self._key_rows(), columns=KEY_COLUMNS).astype({"value": float})

    def _key_rows(self) -> list[tuple[str, str, float, str]]:
        t = self.totals
        rows: list[tuple[str, str, float, str]] = [
            ("model", "file size", t["file_size"], "bytes"),
            ("model", "parameters", t["params"], "count"),
            ("model", "weights", t["weight_bytes"], "bytes"),
            ("model", "MACs", t["macs"], "count"),
            ("model", "operators", t["num_ops"], "count"),
            ("model", "subgraphs", t["num_subgraphs"], "count"),
        ]
        if self.profile is not None:
            tm = self.profile.timings
            rows += [
                ("profile", "latency mean", tm["avg ms"], "ms"),
                ("profile", "latency std", tm["std ms"], "ms"),
                ("profile", "latency median", tm["median ms"], "ms"),
                ("profile", "first invoke", tm["first ms"], "ms"),
                ("profile", "init", tm["init ms"], "ms"),
                ("profile", "sum of per-op means", tm["op sum ms"], "ms"),
                ("profile", "per-op sum / end-to-end", self.profile.overhead, "ratio"),
            ]
            if tm["avg ms"] > 0:
                rows.append(("profile", "throughput", t["macs"] / tm["avg ms"] / 1e6,
                             "GMAC/s"))
        mem = self.memory
        rows += [
            ("memory", "arena", mem.arena_bytes, "bytes"),
            ("memory", "lower bound", mem.lower_bound, "bytes"),
            ("memory", "TFLite-style greedy", mem.greedy_bytes, "bytes"),
        ]
        if mem.rss_growth is not None:
            rows.append(("memory", "peak RSS growth", mem.rss_growth, "bytes"))
        if mem.micro is not None:
            rows += [("memory", f"tflite-micro {k}", mem.micro[k], "bytes")
                     for k in ("head", "tail", "total")]
        if self.diff is not None:
            s = self.diff.summary
            rows += [("diff", "samples", s["samples"], "count"),
                     ("diff", "layers compared", s["layers"], "count"),
                     ("diff", "output SQNR", s["output_sqnr_db"], "dB")]
            if "top1_agreement" in s:
                rows.append(("diff", "top-1 agreement", s["top1_agreement"], "fraction"))
            if "max_rmse/scale" in s:
                rows.append(("diff", "max rmse/scale", s["max_rmse/scale"], "steps"))
            if "metric" in s:
                rows.append(("diff", "metric", s["metric"], ""))
        rt = self.reference_totals
        if rt is not None:
            rows += [("reference", "reference file size", rt["file_size"], "bytes"),
                     ("reference", "file size / reference",
                      _ratio(t["file_size"], rt["file_size"]), "ratio"),
                     ("reference", "MACs / reference", _ratio(t["macs"], rt["macs"]), "ratio")]
        if self.reference_arena is not None:
            rows += [("reference", "reference arena", self.reference_arena, "bytes"),
                     ("reference", "arena / reference",
                      _ratio(mem.arena_bytes, self.reference_arena), "ratio")]
        return [(s, f, float(v), u) for s, f, v, u in rows]

    # -- figures ---------------------------------------------------------------------------
    def figures(self) -> dict[str, Any]:
        """Every figure of the report by name (``"overview"`` and one per measured section),
        as matplotlib ``Figure`` objects (the sections' own ``.plot()``)."""
        return {k: self.plot(k) for k in self._figure_names()}

    def _figure_names(self) -> list[str]:
        names = ["overview"]
        names += [k for k, r in (("profile", self.profile), ("memory", self.memory),
                                 ("diff", self.diff)) if r is not None]
        return names

    def plot(self, kind: str = "overview"):
        """Matplotlib ``Figure``.

        ``"overview"``: the costs of the main subgraph in run order, one panel each on a
        shared operator axis: mean milliseconds per op (profile), live tensor bytes per step
        with the arena (memory), and SQNR per layer with the reference (diff), so a slow op,
        the memory peak and a lossy layer can be placed in the graph at a glance.
        ``"profile"``, ``"memory"``, ``"diff"``: that result's own ``.plot()``.
        """
        if kind == "profile" and self.profile is not None:
            return self.profile.plot()
        if kind == "memory":
            return self.memory.plot()
        if kind == "diff" and self.diff is not None:
            return self.diff.plot()
        if kind in ("profile", "diff"):
            raise InputError(f"this report has no {kind} section"
                             + (f" ({self.skipped[kind]})" if kind in self.skipped else ""))
        if kind != "overview":
            raise InputError("kind must be one of 'overview', 'profile', 'memory', 'diff'; "
                             f"not {kind!r}")
        return self._overview()

    def _overview(self):
        sg = self.model.main
        n = len(sg.operators)
        panels = ["memory"]
        if self.profile is not None:
            panels.insert(0, "profile")
        sqnr = self._sqnr_by_op() if self.diff is not None else None
        if sqnr is not None:
            panels.append("diff")
        fig = R.figure((10, 1.2 + 1.9 * len(panels)))
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        x = np.arange(n)
        for ax, p in zip(axes, panels):
            if p == "profile":
                d = self.profile.df
                ax.bar(d["index"], d["avg ms"], width=0.8, color="tab:blue")
                ax.set_ylabel("ms / op")
                ax.set_title(f"mean {self.profile.timings['avg ms']:.3f} ms per invoke",
                             fontsize=9, loc="left")
            elif p == "memory":
                tl = self.memory.timeline
                ax.bar(tl["step"], tl["live bytes"] / 1024.0, width=0.8, color="tab:green",
                       alpha=0.6)
                ax.axhline(self.memory.arena_bytes / 1024.0, color="tab:red", lw=1,
                           label=f"arena {self.memory.arena_bytes / 1024.0:,.1f} KiB")
                top = max(self.memory.arena_bytes, int(tl["live bytes"].max()) if len(tl)
                          else 0, 1) / 1024.0
                ax.set_ylim(0, top * 1.3)  # room for the legend above the arena line
                ax.set_ylabel("live KiB")
                ax.legend(fontsize=7, loc="upper right")
            else:
                finite = np.isfinite(sqnr)
                shown = np.where(np.isposinf(sqnr), np.nan, sqnr)
                ax.plot(x[finite], shown[finite], "o-", color="tab:purple", ms=3, lw=1)
                exact = np.isposinf(sqnr)
                if exact.any():
                    top = np.nanmax(shown) if np.isfinite(shown).any() else 0.0
                    ax.plot(x[exact], np.full(exact.sum(), top), "^", color="tab:purple",
                            ms=4, label="exact")
                    ax.legend(fontsize=7, loc="upper right")
                ax.set_ylabel("SQNR dB")
                ax.set_title(f"output SQNR {self.diff.summary['output_sqnr_db']:.1f} dB",
                             fontsize=9, loc="left")
        ax = axes[-1]
        if n <= 60:
            ax.set_xticks(x)
            ax.set_xticklabels([f"{i} {op.name}" for i, op in enumerate(sg.operators)],
                               rotation=90, fontsize=6)
        ax.set_xlabel("operator (run order)")
        ax.set_xlim(-0.6, max(n - 1, 0) + 0.6)
        fig.suptitle(self.title, fontsize=10)
        fig.tight_layout()
        return fig

    def _sqnr_by_op(self) -> np.ndarray | None:
        """SQNR (dB) of each candidate op's first compared output, NaN where none."""
        sg = self.model.main
        producer = {id(o): k for k, op in enumerate(sg.operators) for o in op.outputs
                    if o is not None}
        out = np.full(len(sg.operators), np.nan)
        for idx, v in zip(self.diff.df["tensor_idx"], self.diff.df["sqnr_db"]):
            if 0 <= idx < len(sg.tensors):
                k = producer.get(id(sg.tensors[idx]))
                if k is not None and np.isnan(out[k]):
                    out[k] = v
        return out if np.isfinite(out).any() or np.isposinf(out).any() else None

    def _figure_png(self, name: str) -> bytes:
        # Rendering is the slow part of the HTML; both the notebook view and save reuse it.
        if name not in self._png:
            import io

            fig = self.plot(name)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90)
            self._png[name] = buf.getvalue()
        return self._png[name]

    def _img(self, name: str) -> str:
        data = base64.b64encode(self._figure_png(name)).decode("ascii")
        return (f'<img class="wb-fig" alt="{R.esc(name)} figure" '
                f'src="data:image/png;base64,{data}">')

    # -- HTML ------------------------------------------------------------------------------
    def _cards(self) -> str:
        t = self.totals
        from workbench.analysis.summary import human_bytes, human_count

        cards = [(human_bytes(t["file_size"]), "file"), (human_count(t["macs"]), "MACs"),
                 (human_bytes(t["weight_bytes"]), "weights")]
        if self.profile is not None:
            tm = self.profile.timings
            cards.append((f"{tm['avg ms']:.3f} ms", f"per invoke (± {tm['std ms']:.3f})"))
        cards.append((human_bytes(self.memory.arena_bytes), "arena"))
        if self.memory.micro is not None:
            cards.append((human_bytes(self.memory.micro["total"]), "tflite-micro arena"))
        if self.diff is not None:
            cards.append((f"{self.diff.summary['output_sqnr_db']:.1f} dB", "output SQNR"))
            if "top1_agreement" in self.diff.summary:
                cards.append((f"{self.diff.summary['top1_agreement']:.1%}", "top-1 agreement"))
        return '<div class="wb-cards">' + "".join(
            f'<div class="wb-card"><b>{R.esc(v)}</b><span>{R.esc(k)}</span></div>'
            for v, k in cards) + "</div>"

    def _key_table(self) -> str:
        body = "".join(
            f"<tr><td>{R.esc(s)}</td><td>{R.esc(f)}</td>"
            f'<td class="num">{R.esc(_fmt_value(v, u))}</td><td>{R.esc(u)}</td></tr>'
            for s, f, v, u in self._key_rows())
        head = "".join(f"<th>{c}</th>" for c in KEY_COLUMNS)
        return (f'<table class="wb-key"><thead><tr>{head}</tr></thead><tbody>{body}'
                "</tbody></table>")

    def _section(self, key: str, *parts: str) -> str:
        return (f'<section id="wb-{key}"><h3>{R.esc(_TITLES[key])}</h3>' + "".join(parts)
                + "</section>")

    def _body(self, figures: bool = True) -> str:
        from workbench.analysis.summary import summary_html

        img = self._img if figures else (lambda name: "")
        setup = [("model", self.model_name or "(in memory)")]
        if self.reference_totals is not None:
            setup.append(("reference", self.reference_name or "(in memory)"))
        setup += list(self.settings.items())
        env = list(self.environment.items())
        parts = [f"<h2>{R.esc(self.title)}</h2>", self._cards()]
        if self.skipped:
            parts.append("".join(f'<p class="wb-skip">{R.esc(k)} not measured: {R.esc(v)}</p>'
                                 for k, v in self.skipped.items()))
        parts += ['<div class="wb-row">', self._key_table(), R.kv_table(setup),
                  R.kv_table(env), "</div>", img("overview")]
        parts.append(self._section("model", summary_html(self.model)))
        if self.profile is not None:
            parts.append(self._section("profile", self.profile._repr_html_(), img("profile")))
        parts.append(self._section("memory", self.memory._repr_html_(), img("memory")))
        if self.reference_totals is not None:
            inner = [self._size_table()]
            if self.diff is not None:
                inner += [self.diff._repr_html_(), img("diff")]
            else:
                inner.append(f'<p class="wb-skip">diff not measured: '
                             f'{R.esc(self.skipped.get("diff", "no result"))}</p>')
            parts.append(self._section("diff", *inner))
        return f'<div class="wb-report"><style>{_css()}</style>' + "".join(parts) + "</div>"

    def _size_table(self) -> str:
        rt = self.reference_totals
        if rt is None:
            return ""
        t = self.totals
        rows = [("file size", rt["file_size"], t["file_size"]),
                ("weights", rt["weight_bytes"], t["weight_bytes"]),
                ("parameters", rt["params"], t["params"]),
                ("MACs", rt["macs"], t["macs"]),
                ("operators", rt["num_ops"], t["num_ops"])]
        if self.reference_arena is not None:
            rows.append(("arena", self.reference_arena, self.memory.arena_bytes))
        df = pd.DataFrame([(k, int(a), int(b), _ratio(b, a)) for k, a, b in rows],
                          columns=["", "reference", "this model", "ratio"])
        return "<b>reference vs this model</b>" + R.html_table(df)

    def _repr_html_(self) -> str:
        return self._body(figures=True)

    def to_html(self) -> str:
        """The report as one complete, self-contained HTML document (what :meth:`save`
        writes): inline CSS, figures as ``data:`` PNG images, no scripts, no external links."""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{R.esc(self.title)}</title></head><body>{self._body(True)}"
                "</body></html>\n")

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write :meth:`to_html` to ``path`` atomically (temp file + rename) and return the
        path. An existing file is never replaced unless ``overwrite=True``
        (``FileExistsError``)."""
        p = os.fspath(path)
        if os.path.isdir(p):
            raise IsADirectoryError(p)
        if os.path.exists(p) and not overwrite:  # before rendering
            raise FileExistsError(f"{p} exists (pass overwrite=True to replace it)")
        return R.atomic_write(p, self.to_html(), overwrite=overwrite)

    def __repr__(self) -> str:
        parts = [f"{self.totals['num_ops']} ops", f"arena {self.memory.arena_bytes:,} B"]
        if self.profile is not None:
            parts.insert(1, f"{self.profile.timings['avg ms']:.3f} ms/invoke")
        if self.diff is not None:
            parts.append(f"output SQNR {self.diff.summary['output_sqnr_db']:.1f} dB")
        if self.skipped:
            parts.append(f"not measured: {', '.join(self.skipped)}")
        return f"ModelReport({self.model_name or 'model'}: {', '.join(parts)})"


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _fmt_value(v: float, unit: str) -> str:
    """Key-figure value: integers with thousands separators, other numbers to 6 significant
    digits (enough to read back the value the tools computed)."""
    if np.isnan(v):
        return ""
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if float(v).is_integer() and unit in ("bytes", "count"):
        return f"{int(v):,}"
    return f"{v:.6g}"


def _name(source: Any, m) -> str:
    if getattr(m, "source", None):
        return os.path.basename(m.source)
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source))
    return ""


def _environment() -> dict[str, Any]:
    import workbench

    return {"workbench": workbench.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "platform": platform.platform(terse=True),
            "machine": platform.machine(), "CPUs": os.cpu_count() or 0,
            "created (UTC)": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}


def _check_reference(ref, cand) -> None:
    """The diff feeds the reference's samples to the candidate: same inputs, same shapes."""
    ri, ci = ref.main.inputs, cand.main.inputs
    if len(ri) != len(ci):
        raise InputError(f"the reference has {len(ri)} inputs and the model {len(ci)}; a diff "
                         "needs the same inputs")
    for k, (a, b) in enumerate(zip(ri, ci)):
        if tuple(a.shape) != tuple(b.shape):
            raise InputError(f"input {k}: the reference's shape {tuple(a.shape)} differs from "
                             f"the model's {tuple(b.shape)} ({b.name!r})")


def _input_range(cand, k: int) -> tuple[float, float] | None:
    """The float range quantized input ``k`` of ``cand`` can represent: its own integer grid, or
    that of the QUANTIZE op a float input feeds (int8 models with float I/O)."""
    from workbench.analysis.diff import _is_quantized

    t = cand.main.inputs[k]
    if not _is_quantized(t):
        q_ops = [op for op in cand.main.operators if op.name == "QUANTIZE" and op.inputs
                 and op.inputs[0] is t and op.outputs and op.outputs[0] is not None]
        if not q_ops or not _is_quantized(q_ops[0].outputs[0]):
            return None
        t = q_ops[0].outputs[0]
    q = t.quantization
    info = np.iinfo(t.numpy_dtype)
    scale = float(q.scale[0])
    zp = float(q.zero_point[0]) if q.zero_point.size else 0.0
    return scale * (info.min - zp), scale * (info.max - zp)


def _diff_samples(ref, cand, n: int, seed: int) -> list[list[np.ndarray]]:
    """``n`` seeded samples for the reference: uniform over the range the candidate's quantized
    input represents (so the diff measures the model, not the clipping of out-of-range
    inputs), else as :func:`~workbench.analysis._result.random_inputs` makes them."""
    from workbench.interpreter import Interpreter

    details = Interpreter(ref).get_input_details()
    ranges = [_input_range(cand, k) for k in range(len(details))]
    out = []
    for s in range(n):
        xs = R.random_inputs(details, seed + s)
        rng = np.random.default_rng([seed + s, 1])
        for k, (d, r) in enumerate(zip(details, ranges)):
            if r is not None and np.issubdtype(np.dtype(d["dtype"]), np.floating):
                xs[k] = rng.uniform(r[0], r[1], xs[k].shape).astype(d["dtype"])
        out.append(xs)
    return out


def report(model, inputs: Any = None, *, reference=None, dataset: Iterable | None = None,
           runs: int = 20, warmup: int = 3, samples: int = 8, title: str | None = None,
           num_threads: int | None = None, seed: int = 0, measure_rss: bool = True,
           micro: bool | None = None, progress: bool = False) -> ModelReport:
    """Summary, latency profile, memory and (with ``reference``) layer diff of ``model``.

    Parameters
    ----------
    model
        A :class:`~workbench.ir.graph.Model`, a path or ``.tflite`` bytes (loaded once).
    inputs
        Inputs for the profile and the RSS measurement, as :func:`wb.profile
        <workbench.analysis.profile.profile>` takes them; ``None``: seeded random inputs
        (``seed``) matching the input details.
    reference
        The model this one was derived from (typically the float original of a quantized
        model): adds a diff section (this model is the candidate) and a size comparison.
    dataset
        Samples for the diff, each as the *reference* takes it (one array, a list in input
        order or a dict by name); float samples are quantized for integer candidate inputs.
        ``None``: ``samples`` seeded random samples (``seed``, ``seed + 1``, ...) for the
        reference's inputs: uniform over the float range a quantized candidate input (or the
        QUANTIZE op a float input feeds) represents, otherwise as ``inputs=None`` makes them.
        Random data exercises the calibrated ranges of inner layers poorly; pass real data to
        judge accuracy.
    runs, warmup
        Profiled invokes and warm-up invokes (see :func:`wb.profile
        <workbench.analysis.profile.profile>`).
    title
        Heading of the report; default ``"Model report: <file name>"``.
    num_threads
        Passed to the profile (caps BLAS threads).
    measure_rss, micro
        Passed to :func:`wb.memory_report <workbench.analysis.memory.memory_report>` (``micro``
        ``None``: ask tflite-micro for quantized models only).
    progress
        Show a progress bar over the sections (``tqdm``).

    Returns
    -------
    ModelReport

    Raises
    ------
    ModelError
        If ``model`` or ``reference`` is not a valid ``.tflite`` file.
    InputError
        For ``runs < 1``, ``warmup < 0``, ``samples < 1``, ``dataset`` without ``reference``,
        an empty dataset, or a reference whose inputs differ from the model's.

    An operator without a kernel (``UnsupportedOpError``) or a graph a kernel rejects while
    preparing (``ModelError`` from the interpreter) does not fail the report: the sections
    that need to run the model (profile, diff; RSS inside memory) are left out and
    ``skipped`` says why; the summary and the arena plan need no kernels. Errors loading
    ``model`` or ``reference`` and ``InputError`` still raise.
    """
    if not isinstance(runs, (int, np.integer)) or runs < 1:
        raise InputError(f"runs must be an integer >= 1, got {runs!r}")
    if not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise InputError(f"warmup must be an integer >= 0, got {warmup!r}")
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InputError(f"samples must be an integer >= 1, got {samples!r}")
    if dataset is not None and reference is None:
        raise InputError("dataset is used by the diff section, which needs reference=")

    from workbench.analysis import diff as D
    from workbench.analysis import memory as M
    from workbench.analysis import profile as P
    from workbench.analysis.summary import summary, totals
    from workbench.interpreter.planner import plan_memory

    steps = ["summary", "profile", "memory"] + (["diff"] if reference is not None else [])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(steps), desc="report", unit="section")

    def step(name: str) -> None:
        if bar is not None:
            bar.set_postfix_str(name)

    def done() -> None:
        if bar is not None:
            bar.update(1)

    try:
        step("summary")
        t0 = time.perf_counter()
        m = R.load_model(model)
        load_ms = (time.perf_counter() - t0) * 1e3
        ref = R.load_model(reference) if reference is not None else None
        if ref is not None:
            _check_reference(ref, m)
        given = None
        if dataset is not None:
            given = list(dataset)  # before the measurements: an empty one fails at once
            if not given:
                raise InputError("dataset is empty")
        name = _name(model, m)
        settings: dict[str, Any] = {
            "runs / warmup": f"{runs} / {max(int(warmup), 1)}",
            "inputs": "given" if inputs is not None else f"seeded random (seed {seed})",
            "threads": "default" if num_threads is None else num_threads,
        }
        if not isinstance(model, Model):
            settings["load"] = f"{load_ms:.1f} ms"
        skipped: dict[str, str] = {}
        summ, tot = summary(m), totals(m)
        done()

        step("profile")
        prof = None
        run_error: WorkbenchError | None = None
        try:
            prof = P.profile(m, inputs, runs=int(runs), warmup=int(warmup),
                             num_threads=num_threads, seed=seed)
        except _RUN_ERRORS as e:
            skipped["profile"] = str(e)
            run_error = e
        done()

        step("memory")
        # The RSS measurement runs one invoke, which would fail the same way again.
        mem = M.memory_report(m, inputs, measure_rss=measure_rss and run_error is None,
                              micro=micro, seed=seed)
        if measure_rss and run_error is not None:
            mem.rss_reason = f"not measured: {run_error}"
        done()

        dres = ref_tot = ref_arena = None
        ref_name = ""
        if ref is not None:
            step("diff")
            ref_name = _name(reference, ref)
            if given is None:
                data = _diff_samples(ref, m, samples, seed)
                settings["diff data"] = (f"{samples} seeded random samples (seed {seed}…), "
                                         "uniform over the quantized input range")
            else:
                data = given
                settings["diff data"] = f"{len(data)} given samples"
            try:
                dres = D.diff(ref, m, data)
            except _RUN_ERRORS as e:
                skipped["diff"] = str(e)
            ref_tot = totals(ref)
            ref_arena = plan_memory(ref).arena_bytes
            done()
    finally:
        if bar is not None:
            bar.close()

    return ModelReport(
        model=m, model_name=name, title=title or (f"Model report: {name}" if name
                                                  else "Model report"),
        summary=summ, totals=tot, profile=prof, memory=mem, diff=dres, reference_name=ref_name,
        reference_totals=ref_tot, reference_arena=ref_arena, skipped=skipped,
        settings=settings, environment=_environment())


__all__ = ["KEY_COLUMNS", "SECTIONS", "ModelReport", "report"]
