"""Memory of a model: planned arena, its lower bound, weights, process RSS, and tflite-micro.

:func:`memory_report` returns a :class:`MemoryReport`:

``arena_bytes`` / ``strategy``
    Our planner's arena (:func:`workbench.interpreter.planner.plan_memory`, best of several
    orders) for the non-constant tensors of subgraph 0, each rounded up to 64 bytes.
``lower_bound``
    The largest total of live (rounded) tensor bytes at any step: no placement can do better.
``greedy_bytes``
    TFLite's arena planner order (greedy by size, best-fit gaps) on the same tensors.
``weights_bytes``
    Bytes of all constant buffers, each once (what sits in flash on a microcontroller).
``rss_growth``
    Growth of the process's peak resident set while running one (the first) invoke in our
    interpreter, after ``allocate_tensors`` and setting inputs. **Approximate**: it counts what
    numpy and Python allocate (our interpreter keeps every intermediate, it does not reuse an
    arena), allocator caching and page granularity, and other threads of the process. Measured
    by resetting the kernel's high-water mark (``/proc/self/clear_refs``, Linux) or, elsewhere,
    by sampling RSS with ``psutil`` every 0.5 ms. ``None`` (with ``rss_reason``) when a kernel is
    missing.
``timeline``
    One row per step (operator, run order): live tensors, their bytes (rounded as in the plan)
    and the largest one. Its maximum equals ``lower_bound``.
``micro``
    For quantized models, what tflite-micro's Python runtime reports after allocating the model
    (``RecordingMicroAllocator``): ``head`` (the non-persistent arena: planned tensors plus
    kernel scratch buffers, 16-byte aligned), ``tail`` (persistent: tensor structs, op data),
    ``total``, the per-kind lines (``details``), and for a like-for-like comparison ``ours``
    (our arena), ``ours (16 B aligned)`` / ``lower bound (16 B aligned)`` (our planner with
    tensors rounded to tflite-micro's 16 bytes instead of 64) and ``planner (simulated)``
    (:func:`tflm_plan_bytes`: tflite-micro's own planning rules replayed, so ``head`` minus it
    is kernel scratch memory). It runs in a subprocess (tflite-micro aborts the process
    on some models) with a timeout; ``None`` with ``micro_reason`` when it cannot run the
    model.
``df``
    The per-tensor placements (index, name, size, first, last, offset).
"""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis import _result as R
from workbench.analysis.summary import _op_name, human_bytes, totals
from workbench.interpreter.planner import MemoryPlan, plan_memory

#: tflite-micro's arena buffer alignment (``MicroArenaBufferAlignment()``).
MICRO_ALIGNMENT = 16

TIMELINE_COLUMNS = ["step", "node type", "live tensors", "live bytes", "largest tensor"]

_MICRO_SCRIPT = textwrap.dedent("""
    import sys
    from tflite_micro.python.tflite_micro import runtime
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    it = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
    sys.stdout.flush()
    it.print_allocations()
""")

_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_DETAIL = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) "
                     r"bytes for (\d+)")


@dataclass
class MemoryReport:
    """Arena plan vs lower bound vs TFLite-style greedy, weights, RSS and tflite-micro."""

    plan: MemoryPlan
    weights_bytes: int
    timeline: pd.DataFrame
    rss_growth: int | None = None
    rss_reason: str | None = None
    rss_method: str | None = None
    micro: dict[str, Any] | None = None
    micro_reason: str | None = None
    model_name: str = ""
    num_ops: int = 0
    _names: dict = field(default_factory=dict, repr=False)

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    @property
    def lower_bound(self) -> int:
        return self.plan.lower_bound

    @property
    def greedy_bytes(self) -> int:
        return self.plan.greedy_bytes

    @property
    def strategy(self) -> str:
        return self.plan.strategy

    @property
    def df(self) -> pd.DataFrame:
        """Per-tensor placements: index, name, size (rounded), first/last step, offset."""
        cols = ["index", "name", "size", "first", "last", "offset"]
        if not self.plan.allocations:
            return pd.DataFrame(columns=cols)
        return self.plan.df[cols].reset_index(drop=True)

    @property
    def peak_step(self) -> int:
        """The step with the most live bytes (the first one, if several)."""
        return int(self.timeline["live bytes"].idxmax()) if len(self.timeline) else 0

    def summary(self) -> dict[str, Any]:
        """The headline figures as a plain dict."""
        out = {"arena bytes": self.arena_bytes, "strategy": self.strategy,
               "lower bound": self.lower_bound, "tflite greedy bytes": self.greedy_bytes,
               "weights bytes": self.weights_bytes, "rss growth": self.rss_growth}
        if self.micro is not None:
            out.update({"micro head": self.micro["head"], "micro tail": self.micro["tail"],
                        "micro total": self.micro["total"]})
        return out

    # -- views -----------------------------------------------------------------------------
    def plot(self, label_top: int = 8):
        """Matplotlib ``Figure``: live bytes per step with the arena, lower bound and (if any)
        tflite-micro head as lines; below, every tensor as a rectangle (lifetime x offset, as
        TFLite's memory viewer draws it), the ``label_top`` largest named."""
        from matplotlib.collections import PatchCollection
        from matplotlib.patches import Rectangle

        fig = R.figure((10, 6.5))
        ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
        tl = self.timeline
        kib = 1024.0
        steps = tl["step"].to_numpy()
        ax.bar(steps, tl["live bytes"] / kib, width=0.9, color="tab:blue", alpha=0.35,
               label="live tensors")
        lines = [(self.arena_bytes, f"arena ({self.strategy})", "tab:red", "-"),
                 (self.lower_bound, "lower bound", "k", "--"),
                 (self.greedy_bytes, "TFLite greedy", "tab:orange", ":")]
        if self.micro is not None:
            lines.append((self.micro["head"], "tflite-micro head", "tab:purple", "-."))
        for v, lab, c, ls in lines:
            ax.axhline(v / kib, color=c, ls=ls, lw=1, label=f"{lab}: {v / kib:,.1f} KiB")
        top = max([v for v, *_ in lines] + [1]) / kib
        ax.set_ylim(0, top * 1.6)
        ax.set_ylabel("KiB")
        ax.set_title(f"live tensor bytes per step — {self.model_name}" if self.model_name
                     else "live tensor bytes per step")
        ax.legend(fontsize=7, loc="upper right", ncol=2)
        allocs = self.plan.allocations
        rects, colors = [], []
        cm = _cmap()
        for k, a in enumerate(allocs):
            rects.append(Rectangle((a.first - 0.45, a.offset / kib), a.last - a.first + 0.9,
                                   a.size / kib))
            colors.append(cm(k % 20))
        ax2.add_collection(PatchCollection(rects, facecolor=colors, edgecolor="k",
                                           linewidth=0.3, alpha=0.85))
        for a in sorted(allocs, key=lambda x: -x.size)[:label_top]:
            if a.size < 0.04 * max(self.arena_bytes, 1):
                break
            short = a.name if len(a.name) <= 28 else "…" + a.name[-27:]
            ax2.text((a.first + a.last) / 2, (a.offset + a.size / 2) / kib, short,
                     ha="center", va="center", fontsize=6, clip_on=True)
        ax2.axhline(self.arena_bytes / kib, color="tab:red", lw=1)
        ax2.set_xlim(-0.6, max(self.num_ops - 1, 0) + 0.6)
        ax2.set_ylim(0, max(self.arena_bytes, 1) / kib * 1.05)
        ax2.set_xlabel("step (operator, run order)")
        ax2.set_ylabel("arena offset (KiB)")
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        lb = self.lower_bound
        rows = [
            ("model", self.model_name or "(in memory)"),
            ("arena (ours)", (f"{human_bytes(self.arena_bytes)} ({self.arena_bytes:,} B, "
                             f"{self.strategy})")),
            ("lower bound", (f"{human_bytes(lb)} ({lb:,} B); arena is "
                            f"+{self.plan.overhead:.1%}")),
            ("TFLite-style greedy", (f"{human_bytes(self.greedy_bytes)} "
                                    f"({self.greedy_bytes:,} B)")),
            ("weights", f"{human_bytes(self.weights_bytes)} ({self.weights_bytes:,} B)"),
            ("peak RSS growth, one invoke",
             f"≈ {human_bytes(self.rss_growth)} ({self.rss_method})"
             if self.rss_growth is not None else f"n/a: {self.rss_reason}"),
        ]
        if self.micro is not None:
            mc = self.micro
            rows.append(("tflite-micro arena", (f"head {mc['head']:,} B, tail {mc['tail']:,} B, "
                                               f"total {mc['total']:,} B")))
            rows.append(("ours at 16 B alignment", (f"{mc['ours (16 B aligned)']:,} B (lower "
                                                   f"bound {mc['lower bound (16 B aligned)']:,}"
                                                   " B)")))
        elif self.micro_reason:
            rows.append(("tflite-micro", self.micro_reason))
        peak = self.timeline.iloc[[self.peak_step]] if len(self.timeline) else self.timeline
        top = self.df.sort_values("size", ascending=False).head(5)
        return R.wrap("workbench memory report", '<div class="wb-row">', R.kv_table(rows),
                      "</div>", "<b>peak step</b>", R.html_table(peak, 1),
                      "<b>largest tensors</b>", R.html_table(top, 5))

    def __repr__(self) -> str:
        micro = f", micro head {self.micro['head']:,} B" if self.micro else ""
        return (f"MemoryReport({self.model_name or 'model'}: arena {self.arena_bytes:,} B "
                f"({self.strategy}), lower bound {self.lower_bound:,} B, TFLite greedy "
                f"{self.greedy_bytes:,} B, weights {self.weights_bytes:,} B{micro})")


def _cmap():
    from matplotlib import colormaps

    return colormaps["tab20"]


def timeline(model, plan: MemoryPlan) -> pd.DataFrame:
    """Live tensors per step of subgraph 0 (sizes rounded as in ``plan``)."""
    sg = model.main
    n = len(sg.operators)
    rows = []
    for s in range(n):
        live = [a for a in plan.allocations if a.first <= s <= a.last]
        big = max(live, key=lambda a: a.size) if live else None
        rows.append({"step": s, "node type": _op_name(sg.operators[s]),
                     "live tensors": len(live), "live bytes": int(sum(a.size for a in live)),
                     "largest tensor": big.name if big else ""})
    return pd.DataFrame(rows, columns=TIMELINE_COLUMNS)


def plan_bytes(model, alignment: int) -> tuple[int, int]:
    """(arena, lower bound) of our planner (best of its orders) with tensors rounded up to
    ``alignment`` bytes instead of the planner's 64, e.g. 16 to compare with tflite-micro."""
    from workbench.interpreter import planner as P

    sg = model.main
    base = P.lifetimes(model)
    for a in base:
        t = sg.tensors[a.index]
        bits = np.dtype(t.numpy_dtype).itemsize * 8 if t.numpy_dtype is not None else 32
        raw = (int(np.prod(t.shape, dtype=np.int64)) * bits + 7) // 8
        a.size = -(-raw // alignment) * alignment
    best = None
    for key in P._ORDERS.values():
        allocs = [P.Allocation(**a.__dict__) for a in base]
        size = P._place(allocs, sorted(allocs, key=key))
        best = size if best is None else min(best, size)
    return int(best or 0), int(P.lower_bound(base))


def tflm_plan_bytes(model) -> int | None:
    """The arena head tflite-micro's ``GreedyMemoryPlanner`` gives the tensors of subgraph 0,
    kernel scratch buffers not included (None for models with several subgraphs).

    A re-implementation of its rules: lifetimes in "allocation scopes" (subgraph inputs created
    at scope 0, operator k at scope k + 1, outputs kept to the end), sizes rounded to 16 bytes,
    buffers placed largest first at the *first* gap that fits (TFLite's arena picks the best
    fit). Equal sizes go in decreasing tensor index: the planner fills its sort array from the
    end and sorts it stably. It explains tflite-micro's head exactly on the corpus whenever no
    kernel asks for scratch memory (TRANSPOSE_CONV's int32 accumulator is one that does)."""
    if len(model.subgraphs) != 1:
        return None
    sg = model.main
    index = {id(t): i for i, t in enumerate(sg.tensors)}
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    def created(i: int, scope: int) -> None:
        first[i] = last[i] = scope

    for t in list(sg.inputs) + list(sg.outputs):
        created(index[id(t)], 0)
    scope = 0
    for op in sg.operators:
        scope += 1
        for t in op.outputs:
            if t is not None:
                created(index[id(t)], scope)
        for t in [*op.inputs, *op.outputs]:
            if t is not None and index[id(t)] in first:
                last[index[id(t)]] = scope
    for t in sg.outputs:
        last[index[id(t)]] = scope
    bufs = []
    for i, t in enumerate(sg.tensors):
        if t.is_constant or t.is_variable or i not in first or t.numpy_dtype is None:
            continue
        n = int(np.prod(t.shape, dtype=np.int64)) * t.numpy_dtype.itemsize
        if n:
            bufs.append((-(-n // MICRO_ALIGNMENT) * MICRO_ALIGNMENT, first[i], last[i], i))
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last) by offset
    for size, f, la, _ in sorted(bufs, key=lambda b: (-b[0], -b[3])):
        cand = 0
        for off, sz, pf, pl in placed:
            if pf > la or f > pl:
                continue
            if off - cand >= size:
                break
            cand = max(cand, off + sz)
        pos = next((k for k, p in enumerate(placed) if p[0] > cand), len(placed))
        placed.insert(pos, (cand, size, f, la))
    return max((off + sz for off, sz, _, _ in placed), default=0)


# --- RSS ----------------------------------------------------------------------------------------

def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_kb("VmHWM") is not None
    except OSError:
        return False


def peak_rss_growth(fn) -> tuple[int | None, str]:
    """Run ``fn()`` and return (peak RSS during it minus RSS before it, method)."""
    gc.collect()
    if _reset_hwm():
        base = _status_kb("VmRSS")
        fn()
        peak = _status_kb("VmHWM")
        if base is not None and peak is not None:
            return max(peak - base, 0), "VmHWM"
    try:
        import psutil
    except ImportError:
        fn()
        return None, "unavailable"
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.0005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return max(peak[0] - base, 0), "psutil sampling"


# --- tflite-micro -------------------------------------------------------------------------------

def is_quantized(model) -> bool:
    """True if subgraph 0 computes on quantized integer activations."""
    for t in model.main.tensors:
        if t.is_constant:
            continue
        q = t.quantization
        if q is not None and np.size(q.scale) > 0 and t.type_name in ("INT8", "UINT8", "INT16"):
            return True
    return False


def micro_arena(model_bytes: bytes, arena_size: int, timeout: float = 120.0
                ) -> tuple[dict[str, Any] | None, str | None]:
    """Allocate the model in tflite-micro's Python runtime (a subprocess) and parse what its
    ``RecordingMicroAllocator`` prints. Returns (dict, None) or (None, reason)."""
    fd, path = tempfile.mkstemp(suffix=".tflite")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model_bytes)
        try:
            proc = subprocess.run([sys.executable, "-c", _MICRO_SCRIPT, path, str(arena_size)],
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return None, f"tflite-micro did not finish within {timeout:g} s"
    finally:
        os.unlink(path)
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if "No module named" in text and "tflite_micro" in text:
            return None, "the tflite-micro package is not installed"
        if proc.returncode < 0:
            return None, f"tflite-micro crashed (signal {-proc.returncode})"
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.startswith((" ", "Traceback", "  File"))]
        why = "; ".join(dict.fromkeys(lines[:3])) or f"exit status {proc.returncode}"
        return None, f"tflite-micro cannot run this model: {why}"
    found = {k: int(v) for k, v in _LINE.findall(text)}
    if not {"total", "head", "tail"} <= set(found):
        return None, "tflite-micro printed no allocation summary"
    details = {m[0]: {"used": int(m[1]), "requested": int(m[2]), "count": int(m[3])}
               for m in _DETAIL.findall(text)}
    return {**found, "details": details, "arena_size": arena_size, "log": text.strip()}, None


# --- the report ---------------------------------------------------------------------------------

def memory_report(model, inputs: Any = None, *, measure_rss: bool = True,
                  micro: bool | None = None, micro_timeout: float = 120.0,
                  seed: int = 0) -> MemoryReport:
    """Memory figures of ``model`` (a Model, a path or bytes); see the module docstring.

    Parameters
    ----------
    inputs
        For the RSS measurement: as ``profile`` (``None``: seeded random inputs).
    measure_rss
        Run one invoke in our interpreter to measure peak RSS growth (needs kernels for
        every op; planning does not).
    micro
        Ask tflite-micro for its arena: ``None`` = for quantized models only.
    """
    from workbench.errors import UnsupportedOpError
    from workbench.interpreter import Interpreter

    m = R.load_model(model)
    name = os.path.basename(m.source) if getattr(m, "source", None) else ""
    plan = plan_memory(m)
    report = MemoryReport(plan=plan, weights_bytes=int(totals(m)["weight_bytes"]),
                          timeline=timeline(m, plan), model_name=name,
                          num_ops=len(m.main.operators))

    if measure_rss:
        try:
            it = Interpreter(m)
            if inputs is not None:
                xs = R.ordered_inputs(it, inputs)
                for t, x in zip(m.main.inputs, xs):
                    if tuple(x.shape) != tuple(t.shape):
                        it.resize_tensor_input(it._index[id(t)], x.shape)
            it.allocate_tensors()
            if inputs is None:
                xs = R.random_inputs(it.get_input_details(), seed)
            for t, x in zip(m.main.inputs, xs):
                it.set_tensor(it._index[id(t)], x)
            report.rss_growth, report.rss_method = peak_rss_growth(it.invoke)
            if report.rss_growth is None:
                report.rss_reason = "neither /proc/self/clear_refs nor psutil is available"
        except UnsupportedOpError as e:
            report.rss_reason = f"not measured: {e}"

    if micro is None:
        micro = is_quantized(m)
    if micro:
        data = _model_bytes(model, m)
        arena = max(10 * len(data), 2 * plan.arena_bytes) + (1 << 20)
        report.micro, report.micro_reason = micro_arena(data, arena, micro_timeout)
        if report.micro is not None:
            ours16, lb16 = plan_bytes(m, MICRO_ALIGNMENT)
            report.micro.update({"ours": plan.arena_bytes, "ours (16 B aligned)": ours16,
                                 "lower bound (16 B aligned)": lb16,
                                 "planner (simulated)": tflm_plan_bytes(m)})
    else:
        report.micro_reason = "not requested (float model)"
    return report


def _model_bytes(source, m) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            return f.read()
    return m.to_bytes()  # a Model may have been edited since it was loaded


__all__ = ["MICRO_ALIGNMENT", "TIMELINE_COLUMNS", "MemoryReport", "memory_report", "micro_arena",
           "peak_rss_growth", "plan_bytes", "tflm_plan_bytes", "timeline"]
