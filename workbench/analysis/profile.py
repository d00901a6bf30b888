"""Per-operator latency of a model in our interpreter, with LiteRT ``benchmark_model`` columns.

:func:`profile` measures every operator with an interpreter hook (around each op of the eval
loop, never inside kernels) and returns a :class:`ProfileResult`:

``.df``: one row per operator of subgraph 0, in run order, with the columns of
``benchmark_model --enable_op_profiling``:

``node type``
    Builtin op name (or custom code).
``first``
    Milliseconds of the op in the first invoke (cold: includes first-touch costs).
``avg ms``
    Mean milliseconds over the ``runs`` steady-state profiled invokes.
``%``, ``cdf %``
    Share of the summed op time, and its running total in this row order (ends at 100).
``mem KB``
    KiB of the op's output tensors (what it writes into the arena). LiteRT reports heap growth
    here, which is 0 for statically planned tensors; the output size is more useful.
``times called``
    Profiled invokes the op ran in (== ``runs`` for subgraph-0 ops). LiteRT divides by the run
    count and shows 1.
``name``
    ``[output tensor name]:op index``, as LiteRT names profiled nodes.

plus measured spread (``std ms``, ``p90 ms``, ``min ms``, ``max ms``) and analytic columns:
``MACs`` (from :func:`workbench.analysis.summary.op_macs`), ``bytes read`` (every distinct input
tensor: constants at their buffer size, others at their prepared shape), ``bytes written``
(outputs) and ``intensity`` (MACs per byte moved, ``MACs / (read + written)``).

``.top(n)`` ranks by time (cdf recomputed in that order), ``.by_type`` is LiteRT's "summary by
node type", ``.timings`` holds the end-to-end figures and ``.overhead`` how much of the
end-to-end time the per-op times explain.

How the time is measured
------------------------
Init (interpreter construction + ``allocate_tensors``), then ``max(warmup, 1)`` warm-up invokes
(the first of which is "first", as in ``benchmark_model``), then ``runs`` profiled invokes
alternating with ``runs`` invokes without the hook. The unhooked ones give the end-to-end
figures (``avg ms``, ``std ms``, ...). ``overhead`` is the median, over the pairs (profiled run
r, unhooked run r), of ``sum of the op times of run r / end-to-end time of its unhooked
neighbour``: below 1 by the interpreter's own per-op bookkeeping (which no op owns), above 1 if
the hook itself cost time. The plain ratio of means, ``timings["op sum / avg"]``, is also kept,
but on a busy machine one preempted run moves a mean by more than the effect being measured,
while it spoils only one pair of the median. The garbage collector is paused while timing.
"""

from __future__ import annotations

import difflib
import gc
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis import _result as R
from workbench.analysis.summary import _op_name, op_macs
from workbench.interpreter.interpreter import Hook, Interpreter
from workbench.interpreter.threads import blas_threads
from workbench.ir.graph import Model

#: The LiteRT run-order columns, in order.
LITERT_COLUMNS = ["node type", "first", "avg ms", "%", "cdf %", "mem KB", "times called", "name"]
#: Our additional columns.
EXTRA_COLUMNS = ["index", "std ms", "p90 ms", "min ms", "max ms", "MACs", "bytes read",
                 "bytes written", "intensity"]
COLUMNS = LITERT_COLUMNS + EXTRA_COLUMNS
BY_TYPE_COLUMNS = ["node type", "count", "avg ms", "%", "cdf %", "mem KB", "times called",
                   "MACs"]


class _OpTimer(Hook):
    """Start/end of every op (nested control-flow bodies included) of the invokes it sees."""

    def __init__(self):
        self.run = -1
        self.events: list[tuple[int, int, int, float, float]] = []  # run, sg, op, t0, t1
        self._stack: list[float] = []
        self._clock = time.perf_counter

    def before_op(self, node, inputs):
        self._stack.append(self._clock())

    def after_op(self, node, outputs):
        t1 = self._clock()
        self.events.append((self.run, node.subgraph, node.index, self._stack.pop(), t1))


def _nbytes(shape, dtype) -> int:
    if dtype is None:
        return 0
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _op_facts(it: Interpreter) -> pd.DataFrame:
    """Static per-op columns of subgraph 0 from the prepared plan."""
    plan = it._plans[0]
    sg = it.model.main
    rows = []
    for node, op in zip(plan.nodes, sg.operators):
        seen: set[int] = set()
        read = 0
        for info in node.inputs:
            if info is None or info.index in seen:
                continue
            seen.add(info.index)
            t = info.tensor
            read += t.buffer.nbytes if t.is_constant else _nbytes(plan.shapes[info.index],
                                                                 info.dtype)
        written = sum(_nbytes(plan.shapes[o.index], o.dtype) for o in node.outputs
                      if o is not None)
        try:
            macs = int(op_macs(op))
        except Exception:  # noqa: BLE001 - analytic columns never break a measurement
            macs = 0
        outs = [o for o in node.outputs if o is not None]
        rows.append({
            "index": node.index,
            "node type": _op_name(op),
            "name": f"[{outs[0].name if outs else ''}]:{node.index}",
            "tensor": outs[0].name if outs else "",
            "mem KB": written / 1024.0,
            "MACs": macs,
            "bytes read": int(read),
            "bytes written": int(written),
        })
    return pd.DataFrame(rows)




def _shares(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(% of total, cumulative %) with the cumulative ending at exactly 100."""
    c = np.cumsum(t)
    total = c[-1] if len(c) else 0.0
    if total <= 0:
        n = max(len(t), 1)
        return np.full(len(t), 100.0 / n), np.linspace(100.0 / n, 100.0, len(t))
    pct = 100.0 * t / total
    cdf = 100.0 * c / total
    cdf[-1] = 100.0
    return pct, np.maximum.accumulate(cdf)


@dataclass
class ProfileResult:
    """Measured per-op latency (see the module docstring for every column)."""

    df: pd.DataFrame
    by_type: pd.DataFrame
    timings: dict[str, float]
    overhead: float
    runs: int
    warmup: int
    #: Per-op milliseconds of every profiled run: shape (runs, ops).
    raw: np.ndarray
    #: End-to-end milliseconds of the runs without the hook, and of the profiled runs.
    end_to_end: np.ndarray
    end_to_end_profiled: np.ndarray
    model_name: str = ""
    num_threads: int | None = None
    events: list = field(default_factory=list, repr=False)
    _types: dict = field(default_factory=dict, repr=False)

    # -- tables ----------------------------------------------------------------------------
    def top(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` most expensive ops ("Top by Computation Time"), cdf in this order."""
        d = self.df.sort_values(["avg ms", "index"], ascending=[False, True]).copy()
        pct, cdf = _shares(d["avg ms"].to_numpy(float))
        d["%"], d["cdf %"] = pct, cdf
        return d.head(n).reset_index(drop=True)

    @property
    def total_ms(self) -> float:
        """Sum of the per-op average milliseconds."""
        return float(self.df["avg ms"].sum())

    # -- views -----------------------------------------------------------------------------
    def plot(self, n: int = 15, kind: str = "bar"):
        """Matplotlib ``Figure``: ``"bar"`` = top ``n`` ops (mean with std error bars, p90
        marked) next to the share per node type; ``"waterfall"`` = one average run laid out in
        time, an op per row. Built without pyplot (safe under the Agg backend)."""
        types = sorted(self.df["node type"].unique())
        cmap = _colors(types)
        if kind == "waterfall":
            d = self.df
            fig = R.figure((9, max(2.5, 0.18 * len(d) + 1)))
            ax = fig.add_subplot(1, 1, 1)
            starts = np.concatenate([[0.0], np.cumsum(d["avg ms"].to_numpy(float))[:-1]])
            ax.barh(np.arange(len(d)), d["avg ms"], left=starts,
                    color=[cmap[t] for t in d["node type"]])
            ax.set_yticks(np.arange(len(d)))
            ax.set_yticklabels([f"{i} {t}" for i, t in zip(d["index"], d["node type"])],
                               fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel("ms (cumulative, average run)")
            ax.set_title(f"{self.model_name}: run order" if self.model_name else "run order")
            fig.tight_layout()
            return fig
        if kind != "bar":
            raise ValueError(f"kind must be 'bar' or 'waterfall', not {kind!r}")
        d = self.top(n)
        fig = R.figure((11, max(3.0, 0.3 * len(d) + 1.2)))
        ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        y = np.arange(len(d))
        avg, std = d["avg ms"].to_numpy(float), d["std ms"].to_numpy(float)
        ax.barh(y, avg, xerr=[np.minimum(std, avg), std],
                color=[cmap[t] for t in d["node type"]],
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"})
        ax.plot(d["p90 ms"], y, "kD", markersize=3.5, label="p90")
        ax.set_yticks(y)
        ax.set_yticklabels([f"{i} {t}" for i, t in zip(d["index"], d["node type"])], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ms per invoke (mean ± std; ◆ = p90)")
        ax.set_title(f"top {len(d)} ops" + (f" — {self.model_name}" if self.model_name else ""))
        bt = self.by_type
        y2 = np.arange(len(bt))
        ax2.barh(y2, bt["%"], color=[cmap[t] for t in bt["node type"]])
        ax2.set_yticks(y2)
        ax2.set_yticklabels([f"{t} ×{c}" for t, c in zip(bt["node type"], bt["count"])],
                            fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xlabel("% of op time")
        ax2.set_title("by node type")
        fig.tight_layout()
        return fig

    def to_chrome_trace(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the profiled runs as Chrome trace JSON (a list of ``"X"`` events, µs), which
        opens in Perfetto / ``chrome://tracing``: ``tid`` is the subgraph, ``name`` the op type,
        ``args`` the output tensor, op index and run. Written atomically; an existing file is
        replaced only with ``overwrite=True``. Returns the path."""
        events = []
        t0 = self.events[0][3] if self.events else 0.0
        for run, si, oi, a, b in self.events:
            name, tensor = self._types.get((si, oi), ("?", ""))
            events.append({
                "name": name, "cat": "op", "ph": "X", "pid": 1, "tid": int(si),
                "ts": round((a - t0) * 1e6, 3), "dur": round((b - a) * 1e6, 3),
                "args": {"tensor": tensor, "index": int(oi), "subgraph": int(si),
                         "run": int(run)},
            })
        return R.atomic_write(path, json.dumps(events), overwrite=overwrite)

    def compare(self, other: ProfileResult, labels: Sequence[str] = ("a", "b")) -> pd.DataFrame:
        """See :func:`compare`."""
        return compare(self, other, labels)

    def _repr_html_(self) -> str:
        t = self.timings
        head = [
            ("model", self.model_name or "(in memory)"),
            ("runs / warmup", f"{self.runs} / {self.warmup}"),
            ("init", f"{t['init ms']:.3f} ms"),
            ("first invoke", f"{t['first ms']:.3f} ms"),
            ("warmup avg", f"{t['warmup avg ms']:.3f} ms"),
            ("steady avg ± std", (f"{t['avg ms']:.3f} ± {t['std ms']:.3f} ms "
                                  f"(min {t['min ms']:.3f}, max {t['max ms']:.3f})")),
            ("sum of per-op avg", (f"{t['op sum ms']:.3f} ms; per run ×{self.overhead:.3f} "
                                   "of end-to-end")),
        ]
        top = self.top(10)[["node type", "avg ms", "std ms", "%", "cdf %", "MACs", "name"]]
        bt = self.by_type[["node type", "count", "avg ms", "%", "cdf %", "times called"]]
        return R.wrap("workbench profile", '<div class="wb-row">', R.kv_table(head),
                      R.html_table(bt, 12), "</div>", "<b>top ops</b>", R.html_table(top, 10))

    def __repr__(self) -> str:
        t = self.timings
        return (f"ProfileResult({self.model_name or 'model'}: {len(self.df)} ops, "
                f"{t['avg ms']:.3f} ms/invoke ± {t['std ms']:.3f}, op sum {t['op sum ms']:.3f} "
                f"ms, runs={self.runs})")


def _colors(types: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cm = colormaps["tab20"]
    return {t: cm(i % 20) for i, t in enumerate(types)}


def _by_type(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby("node type", sort=False).agg(
        count=("index", "size"), **{"avg ms": ("avg ms", "sum"), "mem KB": ("mem KB", "sum"),
                                    "times called": ("times called", "sum"),
                                    "MACs": ("MACs", "sum")})
    g = g.reset_index().sort_values(["avg ms", "node type"], ascending=[False, True])
    pct, cdf = _shares(g["avg ms"].to_numpy(float))
    g["%"], g["cdf %"] = pct, cdf
    g["count"] = g["count"].astype(int)
    g["times called"] = g["times called"].astype(int)
    return g[BY_TYPE_COLUMNS].reset_index(drop=True)


def _measure(it: Interpreter, runs: int, warmup: int, warm_timer: _OpTimer, timer: _OpTimer
             ) -> tuple[list[float], list[float], list[float]]:
    """Warm-up invokes (the first one hooked), then ``runs`` (profiled, unhooked) pairs, in
    alternating order within pairs so neither side always runs second; GC paused."""
    clock = time.perf_counter
    gc_was = gc.isenabled()
    gc.disable()
    warm: list[float] = []
    e2e: list[float] = []
    hooked_e2e: list[float] = []
    try:
        for w in range(max(warmup, 1)):
            it.hooks = [warm_timer] if w == 0 else []
            warm_timer.run = 0
            a = clock()
            it.invoke()
            warm.append(clock() - a)
        for r in range(runs):
            for hooked in ((True, False) if r % 2 == 0 else (False, True)):
                it.hooks = [timer] if hooked else []
                timer.run = r
                a = clock()
                it.invoke()
                (hooked_e2e if hooked else e2e).append(clock() - a)
    finally:
        it.hooks = []
        if gc_was:
            gc.enable()
    return warm, e2e, hooked_e2e


def profile(model, inputs: Any = None, runs: int = 50, warmup: int = 5,
            num_threads: int | None = None, seed: int = 0) -> ProfileResult:
    """Measure per-op latency of ``model`` in the workbench interpreter.

    Parameters
    ----------
    model
        A :class:`~workbench.ir.graph.Model`, a path or ``.tflite`` bytes.
    inputs
        ``None`` for seeded random inputs matching the input details (floats standard normal,
        quantized integers in [-100, 100], plain integers in [0, 8]); otherwise one array, a
        list in input order or a dict by tensor/signature name, as ``Interpreter.run``.
    runs, warmup
        Profiled invokes (each paired with an unhooked one) and warm-up invokes (at least one:
        the first).
    num_threads
        Passed to the interpreter (the numpy kernels choose their own BLAS threading).

    Raises
    ------
    UnsupportedOpError
        If an operator has no kernel (from ``allocate_tensors``).
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    t_load = time.perf_counter()
    m = R.load_model(model)
    load_ms = (time.perf_counter() - t_load) * 1e3
    name = os.path.basename(m.source) if getattr(m, "source", None) else ""

    gc.collect()
    t0 = time.perf_counter()
    it = Interpreter(m, num_threads=num_threads)
    if inputs is not None:
        xs = R.ordered_inputs(it, inputs)
        for t, x in zip(m.main.inputs, xs):
            if tuple(x.shape) != tuple(t.shape):
                it.resize_tensor_input(it._index[id(t)], x.shape)
    it.allocate_tensors()
    init_ms = (time.perf_counter() - t0) * 1e3
    if inputs is None:
        xs = R.random_inputs(it.get_input_details(), seed)
    for t, x in zip(m.main.inputs, xs):
        it.set_tensor(it._index[id(t)], x)

    facts = _op_facts(it)
    n_ops = len(facts)
    types = {(0, int(i)): (t, n) for i, t, n in
             zip(facts["index"], facts["node type"], facts["tensor"])}

    warm_timer, timer = _OpTimer(), _OpTimer()
    with blas_threads(num_threads):
        warm, e2e, e2e_hooked = _measure(it, runs, warmup, warm_timer, timer)

    # Control-flow bodies (prepared on demand) get their names too.
    for plan in it._sub_plans.values():
        for node in plan.nodes:
            outs = [o for o in node.outputs if o is not None]
            types.setdefault((node.subgraph, node.index),
                             (_op_name(node.op), outs[0].name if outs else ""))

    raw = np.zeros((runs, n_ops))
    for run, si, oi, a, b in timer.events:
        if si == 0:
            raw[run, oi] += (b - a) * 1e3
    first = np.zeros(n_ops)
    for _, si, oi, a, b in warm_timer.events:
        if si == 0:
            first[oi] += (b - a) * 1e3
    called = np.zeros(n_ops, np.int64)
    for run, si, oi, _, _ in timer.events:
        if si == 0:
            called[oi] += 1

    df = facts.copy()
    avg = raw.mean(axis=0)
    pct, cdf = _shares(avg)
    df["first"] = first
    df["avg ms"] = avg
    df["%"] = pct
    df["cdf %"] = cdf
    df["times called"] = called
    df["std ms"] = raw.std(axis=0, ddof=1) if runs > 1 else np.zeros(n_ops)
    df["p90 ms"] = np.percentile(raw, 90, axis=0) if n_ops else np.zeros(0)
    df["min ms"] = raw.min(axis=0) if n_ops else np.zeros(0)
    df["max ms"] = raw.max(axis=0) if n_ops else np.zeros(0)
    moved = (df["bytes read"] + df["bytes written"]).to_numpy(float)
    df["intensity"] = np.where(moved > 0, df["MACs"].to_numpy(float) / np.maximum(moved, 1), 0.0)
    df = df[COLUMNS]
    df["times called"] = df["times called"].astype(int)
    df["MACs"] = df["MACs"].astype(np.int64)

    e2e_ms = np.array(e2e) * 1e3
    hooked_ms = np.array(e2e_hooked) * 1e3
    warm_ms = np.array(warm) * 1e3
    op_sum = float(avg.sum())
    timings = {
        "load ms": 0.0 if isinstance(model, Model) else load_ms,
        "init ms": init_ms,
        "first ms": float(warm_ms[0]),
        "warmup avg ms": float(warm_ms.mean()),
        "avg ms": float(e2e_ms.mean()),
        "std ms": float(e2e_ms.std(ddof=1)) if runs > 1 else 0.0,
        "min ms": float(e2e_ms.min()),
        "max ms": float(e2e_ms.max()),
        "median ms": float(np.median(e2e_ms)),
        "profiled avg ms": float(hooked_ms.mean()),
        "op sum ms": op_sum,
    }
    # Paired runs r (profiled, unhooked) ran next to each other, so a burst of machine noise
    # hits one pair only; the median of the per-pair ratios ignores such pairs.
    run_sums = raw.sum(axis=1)
    overhead = float(np.median(run_sums / np.maximum(e2e_ms, 1e-9)))
    timings["op sum / avg"] = op_sum / timings["avg ms"] if timings["avg ms"] > 0 else np.nan
    return ProfileResult(df=df, by_type=_by_type(df), timings=timings, overhead=overhead,
                         runs=runs, warmup=max(warmup, 1), raw=raw, end_to_end=e2e_ms,
                         end_to_end_profiled=hooked_ms, model_name=name,
                         num_threads=num_threads, events=timer.events, _types=types)


# --- comparing two profiles ---------------------------------------------------------------------

def _align(a: pd.DataFrame, b: pd.DataFrame) -> list[tuple[int | None, int | None]]:
    """Monotone pairing of the rows of two run-order tables: first by (node type, output
    tensor name), then, between those anchors, by node type alone; the rest stay unpaired."""
    ka = [f"{t}\x00{n}" for t, n in zip(a["node type"], a["name"].map(_tensor_of))]
    kb = [f"{t}\x00{n}" for t, n in zip(b["node type"], b["name"].map(_tensor_of))]
    pairs: list[tuple[int | None, int | None]] = []

    def by_type(i0, i1, j0, j1):
        ta, tb = list(a["node type"][i0:i1]), list(b["node type"][j0:j1])
        sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
        for tag, x0, x1, y0, y1 in sm.get_opcodes():
            if tag == "equal":
                pairs.extend((i0 + x0 + k, j0 + y0 + k) for k in range(x1 - x0))
            else:
                pairs.extend((i0 + k, None) for k in range(x0, x1))
                pairs.extend((None, j0 + k) for k in range(y0, y1))

    sm = difflib.SequenceMatcher(None, ka, kb, autojunk=False)
    i = j = 0
    for blk in sm.get_matching_blocks():
        by_type(i, blk.a, j, blk.b)
        pairs.extend((blk.a + k, blk.b + k) for k in range(blk.size))
        i, j = blk.a + blk.size, blk.b + blk.size
    return pairs


def _tensor_of(name: str) -> str:
    """``[tensor]:index`` -> ``tensor``."""
    return name[1:name.rfind("]")] if name.startswith("[") and "]" in name else name


def compare(a: ProfileResult, b: ProfileResult,
            labels: Sequence[str] = ("float", "int8")) -> pd.DataFrame:
    """Join two profiles of the same architecture op by op.

    Ops are paired by (node type, output tensor name) where the names agree, and otherwise by
    node type in run order; ops present in one model only (the weight ``DEQUANTIZE`` ops of a
    float16 model, the ``QUANTIZE`` of an int8 model with float I/O) get a row with the other
    side empty. ``speedup`` is ``avg ms (a) / avg ms (b)`` (> 1: ``b`` is faster).
    ``df.attrs`` holds the totals: ``{"total a": ms, "total b": ms, "speedup": ratio}``
    (keys use the labels).
    """
    la, lb = labels
    rows = []
    for i, j in _align(a.df, b.df):
        ra = a.df.iloc[i] if i is not None else None
        rb = b.df.iloc[j] if j is not None else None
        ta = float(ra["avg ms"]) if ra is not None else np.nan
        tb = float(rb["avg ms"]) if rb is not None else np.nan
        rows.append({
            "node type": (ra if ra is not None else rb)["node type"],
            f"index ({la})": int(ra["index"]) if ra is not None else pd.NA,
            f"index ({lb})": int(rb["index"]) if rb is not None else pd.NA,
            f"avg ms ({la})": ta,
            f"avg ms ({lb})": tb,
            "speedup": ta / tb if tb > 0 and np.isfinite(ta) else np.nan,
            f"MACs ({la})": int(ra["MACs"]) if ra is not None else pd.NA,
            f"MACs ({lb})": int(rb["MACs"]) if rb is not None else pd.NA,
            "name": _tensor_of((rb if rb is not None else ra)["name"]),
        })
    out = pd.DataFrame(rows)
    for c in (f"index ({la})", f"index ({lb})", f"MACs ({la})", f"MACs ({lb})"):
        out[c] = out[c].astype("Int64")
    ta, tb = a.total_ms, b.total_ms
    out.attrs = {f"total {la}": ta, f"total {lb}": tb, "speedup": ta / tb if tb else np.nan}
    return out


__all__ = ["BY_TYPE_COLUMNS", "COLUMNS", "LITERT_COLUMNS", "ProfileResult", "blas_threads",
           "compare", "profile"]
