"""``wb.estimate``: which ops a delegate runs on a device, which fall back and why, and what it
will cost — an *estimate* from the calibrated cost model, never a measurement.

Example::

    r = wb.estimate(model, device="pixel4", delegate="gpu")
    r.total_ms, r.low_ms, r.high_ms    # estimate and its range
    r.df                               # per op: processor, partition, MACs, bytes, ms, bound,
                                       # fallback reason
    r.partitions                       # per partition: ops, launch, transfers, ms
    r.plot()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.delegates.cost import (
    OpArrays,
    op_features,
    op_seconds,
    partition_seconds,
)
from workbench.delegates.profiles import DeviceProfile, load_device
from workbench.errors import InputError

#: Options of ``estimate`` itself; everything else goes to the partitioner / op rules.
_PARTITION_OPTS = ("min_nodes_per_partition", "max_delegated_partitions")
_PRECISIONS = ("float16", "float32")

OP_COLUMNS = ["index", "op", "kind", "dtype", "run_dtype", "processor", "delegated", "partition",
              "macs", "bytes", "compute_ms", "memory_ms", "dispatch_ms", "est_ms", "low_ms",
              "high_ms", "bound", "reason"]
PART_COLUMNS = ["partition", "processor", "delegated", "ops", "first_op", "last_op", "macs",
                "ops_ms", "launch_ms", "transfer_ms", "transfer_bytes", "est_ms", "low_ms",
                "high_ms", "bound"]


def assign_partitions(model, delegate: str, subgraph: int = 0, **options: Any
                      ) -> tuple[np.ndarray, list[dict], Any]:
    """Partition id per op (-1: CPU) and the delegated partitions' boundary traffic.

    Returns ``(assign, parts, partitioning)`` where ``parts`` holds, per delegated partition,
    ``id``, ``ops``, ``in_bytes``/``n_in`` (runtime tensors entering it) and
    ``out_bytes``/``n_out`` (tensors leaving it), from
    :func:`workbench.delegates.partition.partition`.
    """
    from workbench.delegates.partition import partition

    pt = partition(model, delegate, subgraph=subgraph, **options)
    n = len(pt.op_partition)
    assign = np.full(n, -1, dtype=np.int64)
    parts = []
    for p in pt.partitions:
        if p.processor != "delegate":
            continue
        assign[p.ops] = p.id
        rt_in = [t for t in p.inputs if not t.constant]
        parts.append({"id": p.id, "ops": list(p.ops), "in_bytes": float(p.input_bytes),
                      "n_in": len(rt_in), "out_bytes": float(p.output_bytes),
                      "n_out": len(p.outputs)})
    return assign, parts, pt


def _model_name(model) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.path.basename(os.fspath(model))
    return getattr(model, "name", "") or "model"


@dataclass
class EstimateResult:
    """Estimated latency of one model on one device with one delegate (see :func:`estimate`).

    Attributes
    ----------
    df
        One row per op: ``index``, ``op``, ``kind``, ``dtype`` (model), ``run_dtype`` (what the
        processor computes in), ``processor``, ``partition``, ``macs``, ``bytes``,
        ``compute_ms``, ``memory_ms``, ``dispatch_ms``, ``est_ms`` and its range
        ``low_ms``/``high_ms``, ``bound`` (compute / memory / dispatch) and ``reason`` (why a
        CPU op was not delegated; empty when delegated or when no delegate was asked for).
    partitions
        One row per partition (TFLite's node subsets, CPU ones included): ops, MACs, op time,
        ``launch_ms`` and ``transfer_ms`` (delegated partitions only), total and range, and
        its bound (compute / memory / dispatch / launch / transfer: its largest component).
    total_ms, low_ms, high_ms
        The whole-model estimate and its range (ranges of all parts added).
    """

    model_name: str
    device: DeviceProfile
    delegate: str
    threads: int
    precision: str | None
    df: pd.DataFrame
    partitions: pd.DataFrame
    partitioning: Any = None
    options: dict = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return float(self.partitions["est_ms"].sum())

    @property
    def low_ms(self) -> float:
        return float(self.partitions["low_ms"].sum())

    @property
    def high_ms(self) -> float:
        return float(self.partitions["high_ms"].sum())

    @property
    def fallbacks(self) -> pd.DataFrame:
        """Ops that run on the CPU although a delegate was asked for, grouped by reason."""
        d = self.df[~self.df["delegated"] & (self.df["reason"] != "")]
        if self.delegate == "cpu" or d.empty:
            return pd.DataFrame(columns=["op", "reason", "count", "est_ms"])
        g = d.groupby(["op", "reason"], sort=False).agg(count=("index", "size"),
                                                        est_ms=("est_ms", "sum"))
        return g.reset_index().sort_values("count", ascending=False, ignore_index=True)

    @property
    def summary(self) -> dict[str, Any]:
        deleg = self.partitions[self.partitions["delegated"]]
        return {
            "model": self.model_name, "device": self.device.name, "delegate": self.delegate,
            "threads": self.threads, "estimate_ms": self.total_ms, "low_ms": self.low_ms,
            "high_ms": self.high_ms, "ops": len(self.df),
            "ops_delegated": int(self.df["delegated"].sum()),
            "delegate_partitions": len(deleg),
            "transfer_ms": float(self.partitions["transfer_ms"].sum()),
            "launch_ms": float(self.partitions["launch_ms"].sum()),
        }

    def slowest_partition(self) -> pd.Series:
        return self.partitions.loc[self.partitions["est_ms"].idxmax()]

    def by_kind(self) -> pd.DataFrame:
        """Estimated ms, MACs and op count per (processor, op kind)."""
        return (self.df.groupby(["processor", "kind"]).agg(
            ops=("index", "size"), macs=("macs", "sum"), est_ms=("est_ms", "sum"))
            .reset_index().sort_values("est_ms", ascending=False, ignore_index=True))

    def plot(self, top: int = 15):
        """Partitions (bars with the estimate's range) and the ``top`` most expensive ops."""
        from workbench.analysis._result import figure

        fig = figure((10, 4.2))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
        p = self.partitions
        colors = {self.device.cpu.name: "#4c78a8"}
        palette = ["#f58518", "#54a24b", "#e45756", "#72b7b2"]
        for name in p["processor"].unique():
            colors.setdefault(name, palette[len(colors) % len(palette)])
        y = np.arange(len(p))
        ops_ms = p["ops_ms"].to_numpy()
        over = (p["launch_ms"] + p["transfer_ms"]).to_numpy()
        ax1.barh(y, ops_ms, color=[colors[c] for c in p["processor"]])
        ax1.barh(y, over, left=ops_ms, color="#bbbbbb", label="launch + transfer")
        err = np.vstack([p["est_ms"] - p["low_ms"], p["high_ms"] - p["est_ms"]])
        ax1.errorbar(p["est_ms"], y, xerr=err, fmt="none", ecolor="k", capsize=3, lw=1)
        ax1.set_yticks(y, [f"#{i} {c}{' (' + self.delegate + ')' if dl else ''} ({n} ops)"
                           for i, c, dl, n in zip(p["partition"], p["processor"],
                                                  p["delegated"], p["ops"])], fontsize=8)
        ax1.invert_yaxis()
        ax1.set_xlabel("estimated ms (bar: estimate, whisker: range)")
        ax1.set_title("partitions", fontsize=10)
        if (over > 0).any():
            ax1.legend(fontsize=7, loc="lower right")
        d = self.df.nlargest(top, "est_ms")
        y2 = np.arange(len(d))
        ax2.barh(y2, d["est_ms"], color=[colors.get(c, "#999999") for c in d["processor"]])
        ax2.errorbar(d["est_ms"], y2, xerr=np.vstack([d["est_ms"] - d["low_ms"],
                                                      d["high_ms"] - d["est_ms"]]),
                     fmt="none", ecolor="k", capsize=2, lw=0.8)
        ax2.set_yticks(y2, [f"{i} {o} [{b}]" for i, o, b in zip(d["index"], d["op"], d["bound"])],
                       fontsize=7)
        ax2.invert_yaxis()
        ax2.set_xlabel("estimated ms")
        ax2.set_title(f"top {len(d)} ops", fontsize=10)
        fig.suptitle(f"ESTIMATE (not a measurement): {self.model_name} on "
                     f"{self.device.display_name}, {self.delegate}, {self.threads} thread(s): "
                     f"{self.total_ms:.2f} ms [{self.low_ms:.2f}, {self.high_ms:.2f}]",
                     fontsize=10)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        from workbench.analysis import _result as R

        s = self.summary
        head = R.kv_table([
            ("model", self.model_name), ("device", self.device.display_name),
            ("delegate", self.delegate), ("CPU threads", self.threads),
            ("estimate", (f"{s['estimate_ms']:.3f} ms (range {s['low_ms']:.3f} - "
                          f"{s['high_ms']:.3f} ms)")),
            ("ops delegated", f"{s['ops_delegated']} / {s['ops']}"),
            ("delegate partitions", s["delegate_partitions"]),
            ("launch + transfer", f"{s['launch_ms'] + s['transfer_ms']:.3f} ms"),
        ])
        note = ('<p class="wb-note">Estimate from a roofline cost model calibrated on '
                'published TFLite latencies; the range is the calibration residual band. '
                'It is not a measurement.</p>')
        parts = [note, f'<div class="wb-row">{head}',
                 R.html_table(self.partitions.drop(columns=["first_op", "last_op"]), 12),
                 "</div>"]
        fb = self.fallbacks
        if len(fb):
            parts += ["<b>fallbacks (run on the CPU)</b>", R.html_table(fb, 12)]
        parts += ["<b>most expensive ops</b>",
                  R.html_table(self.df.nlargest(15, "est_ms").drop(columns=["reason"]), 15)]
        return R.wrap(f"Latency estimate: {self.device.display_name} / {self.delegate}", *parts)

    def __repr__(self) -> str:
        return (f"EstimateResult({self.model_name} on {self.device.name}/{self.delegate}: "
                f"{self.total_ms:.3f} ms [{self.low_ms:.3f}, {self.high_ms:.3f}] (estimate))")


def estimate(model, device: str | DeviceProfile | dict = "pixel4", delegate: str = "cpu",
             threads: int | None = None, *, subgraph: int = 0, precision: str | None = None,
             **delegate_options: Any) -> EstimateResult:
    """Estimate per-op and total latency of ``model`` on ``device`` with ``delegate``.

    Parameters
    ----------
    model
        A :class:`~workbench.ir.graph.Model`, a ``.tflite`` path or bytes.
    device
        A device name (:func:`workbench.delegates.profiles.list_devices`), a profile JSON
        path, a dict or a :class:`DeviceProfile`.
    delegate
        ``"cpu"`` (built-in kernels), ``"xnnpack"``, ``"gpu"``, ``"nnapi"``, ``"hexagon"`` or
        ``"coreml"``. The device must have it (an iPhone has no NNAPI).
    threads
        CPU threads for the ops the CPU runs. None: all big cores of the device's CPU profile
        (TFLite's published benchmarks use 4 on Android, 2 on iOS).
    precision
        GPU only: ``"float16"`` (default, ``allow_precision_loss``) or ``"float32"``; also
        set by the GPU rule option ``precision_loss_allowed=True/False``.
    **delegate_options
        ``min_nodes_per_partition``, ``max_delegated_partitions`` and the delegate's op-rule
        options (e.g. ``android_api=29``), passed to the partitioner.

    Returns
    -------
    EstimateResult
    """
    from workbench.analysis._result import load_model

    if not isinstance(delegate, str):
        raise InputError(f"delegate must be a name such as 'gpu', got {delegate!r}")
    dev = load_device(device)
    dproc = dev.processor_for(delegate)
    cpu = dev.cpu
    if threads is None:
        threads = cpu.cores
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    if precision is None and "precision_loss_allowed" in delegate_options:
        # the GPU rule option of the same meaning (TFLite's allow_precision_loss)
        precision = "float16" if delegate_options["precision_loss_allowed"] else "float32"
    if precision is not None and precision not in _PRECISIONS:
        raise InputError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    m = load_model(model)
    feats = op_features(m, subgraph)
    assign, parts, pt = assign_partitions(m, delegate, subgraph=subgraph, **delegate_options)
    ops = OpArrays.from_features(feats)
    n = len(feats)
    cols = {k: np.zeros(n) for k in ("compute", "memory", "dispatch", "total")}
    run_dt = np.empty(n, dtype=object)
    lo_f = np.ones(n)
    hi_f = np.ones(n)
    proc_name = np.empty(n, dtype=object)
    for proc, mask in ((cpu, assign < 0), (dproc, assign >= 0)):
        if not mask.any():
            continue
        r = op_seconds(proc, ops.take(mask), int(threads), precision)
        for k, col in cols.items():
            col[mask] = r[k]
        run_dt[mask] = r["run_dtype"]
        lo_f[mask], hi_f[mask] = proc.uncertainty
        proc_name[mask] = proc.name
    reasons = [""] * n
    if delegate.lower() != "cpu":
        for i in range(n):
            if assign[i] < 0:
                reasons[i] = pt.reason(i) or ""
    bound = np.where(cols["dispatch"] >= np.maximum(cols["compute"], cols["memory"]), "dispatch",
                     np.where(cols["compute"] >= cols["memory"], "compute", "memory"))
    ms = 1e3
    df = pd.DataFrame({
        "index": feats["index"], "op": feats["op"], "kind": feats["kind"],
        "dtype": feats["dtype"], "run_dtype": run_dt, "processor": proc_name,
        "delegated": assign >= 0,
        "partition": [pt.op_partition[i] for i in range(n)], "macs": feats["macs"],
        "bytes": feats["bytes"], "compute_ms": cols["compute"] * ms,
        "memory_ms": cols["memory"] * ms, "dispatch_ms": cols["dispatch"] * ms,
        "est_ms": cols["total"] * ms, "low_ms": cols["total"] * lo_f * ms,
        "high_ms": cols["total"] * hi_f * ms, "bound": bound, "reason": reasons,
    }, columns=OP_COLUMNS)
    dparts = {p["id"]: p for p in parts}
    rows = []
    for p in pt.partitions:
        sub = df.iloc[p.ops]
        on_dev = p.id in dparts
        proc = dproc if on_dev else cpu
        launch = xfer = 0.0
        xbytes = 0.0
        if on_dev:
            q = dparts[p.id]
            launch, xfer = partition_seconds(dproc, q["in_bytes"], q["out_bytes"], q["n_in"],
                                             q["n_out"])
            xbytes = q["in_bytes"] + q["out_bytes"]
        lo, hi = proc.uncertainty
        ops_ms = float(sub["est_ms"].sum())
        over = (launch + xfer) * ms
        # the partition's bound: where most of its time goes (ops by their own bound)
        comp = sub.groupby("bound")["est_ms"].sum().to_dict()
        comp.update(launch=launch * ms, transfer=xfer * ms)
        rows.append({"partition": p.id, "processor": proc.name, "delegated": on_dev,
                     "ops": len(p.ops),
                     "first_op": p.ops[0], "last_op": p.ops[-1],
                     "macs": int(sub["macs"].sum()), "ops_ms": ops_ms, "launch_ms": launch * ms,
                     "transfer_ms": xfer * ms, "transfer_bytes": int(xbytes),
                     "est_ms": ops_ms + over, "low_ms": (ops_ms + over) * lo,
                     "high_ms": (ops_ms + over) * hi, "bound": max(comp, key=comp.get)})
    partitions = pd.DataFrame(rows, columns=PART_COLUMNS)
    opts = dict(delegate_options)
    return EstimateResult(model_name=_model_name(model), device=dev, delegate=delegate.lower(),
                          threads=int(threads), precision=precision, df=df,
                          partitions=partitions, partitioning=pt, options=opts)
