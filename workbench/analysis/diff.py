"""Layer-by-layer numerical comparison of a float model and its quantized version.

:func:`diff` runs the reference (float) model and the candidate (quantized: int8, int16x8,
float16, dynamic-range, ...) in our interpreter over every sample of a dataset, captures every
operator output, pairs the tensors of the two graphs, dequantizes the candidate's integer
tensors (per-channel aware) and returns a :class:`DiffResult`.

Pairing
-------
Operators are paired in execution order: first by (op type, output tensor name) where the
converter kept the names, then, between those anchors, by (op type, output shape). Operators
only one model has (the ``QUANTIZE``/``DEQUANTIZE`` an int8 model with float I/O adds at its
edges, the weight ``DEQUANTIZE`` ops of a float16 model) stay unpaired and are listed in
``.unmatched``. Outputs of paired operators are paired by position.

Columns of ``.df`` (one row per paired tensor with a floating-point reference, run order)
----------------------------------------------------------------------------------------
The first ten are TFLite ``QuantizationDebugger.layer_statistics_dump()``'s, with its
definitions: for each sample the error is ``diff = candidate - reference`` (candidate
dequantized) and each metric is computed on that sample's ``diff``; the column is the mean
(``nanmean``) over the samples.

``op_name``, ``tensor_idx``, ``tensor_name``
    The candidate's op type, output tensor index (subgraph 0) and output tensor name.
``num_elements``
    ``diff.size``.
``stddev``, ``mean_error``
    ``np.std(diff)`` and ``np.average(diff)``.
``max_abs_error``, ``mean_squared_error``
    ``max(|diff|)`` and ``average(diff ** 2)``.
``scale``, ``zero_point``
    The candidate tensor's (first) quantization parameters; NaN / 0 for a float tensor.

One difference from QuantizationDebugger: its debug model feeds every float op with the
*dequantized quantized* inputs, so its errors are each layer's own; here both models run end to
end, so the error of a layer includes what it inherits from the layers before it (what the
application sees). Read the table top-down: the first layer where the error jumps is the culprit.

Our additional columns, computed over all samples pooled:

``range``
    ``max - min`` of the reference tensor.
``rmse/scale``
    Root-mean-square error in units of the quantization step (per channel for per-channel
    tensors). Rounding to a uniform grid of step ``scale`` makes an error uniform on
    ``[-scale/2, scale/2]``, whose standard deviation is ``scale / sqrt(12) ≈ 0.289 · scale``
    (compare within a model: on the fine grid of int16 activations, float error inherited from
    upstream 8-bit weights is many steps, so int16x8 layers sit far above 0.29).
    So ``rmse/scale ≈ 0.29`` means the layer is as accurate as its quantization grid allows;
    a few times that is normal accumulated error; much larger (>> 1) means a problem: a badly
    chosen scale (outliers, clipping), an op that quantizes poorly, or error inherited from a
    bad layer upstream. NaN for tensors that are not quantized (float16, dynamic-range).
``sqnr_db``
    ``10 · log10(sum(reference²) / sum(diff²))``: signal-to-quantization-noise ratio (inf when
    exact). Each 6 dB is about one bit; int8 layers typically sit at 20–40 dB.
``sqnr_drop``
    How many dB of SQNR this layer loses: the lowest SQNR of its (non-constant) inputs minus its
    own (SQNRs capped at 200 dB). Unlike ``rmse/scale`` it does not read the layer's scale, so it
    also catches a layer whose *scale itself* is bad (too coarse a grid: ``rmse/scale`` stays
    ≈ 0.29 of that wrong scale while the SQNR falls); and it is local, whereas inherited error
    makes every layer below a bad one look bad by ``sqnr_db``.
``cosine``
    Cosine similarity of the flattened reference and candidate over all samples.

``.summary`` holds model-level figures: ``output_sqnr_db`` (over all model outputs),
``top1_agreement`` (fraction of rows of rank-2 outputs whose argmax agrees; absent without
rank-2 outputs), ``samples``, and ``metric`` (the mean over samples of
``metric(ref_outputs, cand_outputs)``, as QuantizationDebugger's ``model_debug_metrics``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis import _result as R
from workbench.interpreter.interpreter import Hook, Interpreter
from workbench.ir.graph import Model, Tensor

#: QuantizationDebugger's layer_statistics_dump columns, in order.
DEBUGGER_COLUMNS = ["op_name", "tensor_idx", "num_elements", "stddev", "mean_error",
                    "max_abs_error", "mean_squared_error", "scale", "zero_point", "tensor_name"]
EXTRA_COLUMNS = ["range", "rmse/scale", "sqnr_db", "sqnr_drop", "cosine"]
COLUMNS = DEBUGGER_COLUMNS + EXTRA_COLUMNS
_UNIFORM_RMSE = 1.0 / np.sqrt(12.0)
_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}
#: SQNR values above this (dB) count as this in ``sqnr_drop`` (exact tensors are +inf).
_SQNR_CAP = 200.0


class _Capture(Hook):
    """Copies of every subgraph-0 operator output of the last invoke, by tensor index."""

    def __init__(self):
        self.values: dict[int, np.ndarray] = {}

    def after_op(self, node, outputs):
        if node.subgraph != 0:
            return
        for info, arr in zip(node.outputs, outputs):
            if info is not None:
                self.values[info.index] = np.array(arr, copy=True)


def _quant(t: Tensor):
    q = t.quantization
    if q is None or q.scale.size == 0:
        return None
    return q


def _is_quantized(t: Tensor) -> bool:
    return _quant(t) is not None and np.issubdtype(t.numpy_dtype or np.float32, np.integer)


def _numeric(t: Tensor) -> bool:
    """Whether ``t`` holds numbers the diff can compare (not strings, resources or complex
    values, which it passes through)."""
    d = t.numpy_dtype
    return d is not None and d.kind in "fiub"


def dequantize(t: Tensor, x: np.ndarray) -> np.ndarray:
    """``x`` (a value of ``t``) as float64: ``scale * (q - zero_point)`` (per channel along the
    quantized dimension) for a quantized integer tensor, a plain cast otherwise."""
    x = np.asarray(x)
    if not _is_quantized(t):
        return x.astype(np.float64)
    q = _quant(t)
    scale = q.scale.astype(np.float64)
    zp = q.zero_point.astype(np.float64) if q.zero_point.size else np.zeros(1)
    if scale.size > 1 and x.ndim:
        shape = [1] * x.ndim
        shape[q.quantized_dimension] = -1
        scale, zp = scale.reshape(shape), np.broadcast_to(zp, scale.shape).reshape(shape)
    return (x.astype(np.float64) - zp) * scale


def quantize_input(t: Tensor, x: np.ndarray) -> np.ndarray:
    """A float input for quantized tensor ``t``: ``x / scale + zero_point`` rounded half away
    from zero and clamped to the integer type (first scale / zero point)."""
    q = _quant(t)
    dt = t.numpy_dtype
    scale = float(q.scale[0])
    zp = float(q.zero_point[0]) if q.zero_point.size else 0.0
    v = np.asarray(x, np.float64) / scale
    v = np.sign(v) * np.floor(np.abs(v) + 0.5) + zp
    info = np.iinfo(dt)
    return np.clip(v, info.min, info.max).astype(dt)


def _out_pairs(ref: Model, cand: Model) -> tuple[list[tuple[int, int, int]], list, list]:
    """Paired operators: (ref op index, cand op index, output position); and the unpaired ops
    of each side (as ``"TYPE index"``)."""
    ra, ca = ref.main.operators, cand.main.operators

    def name0(op):
        o = op.outputs[0] if op.outputs else None
        return o.name if o is not None else ""

    def shape0(op):
        o = op.outputs[0] if op.outputs else None
        return tuple(o.shape) if o is not None else ()

    ka = [f"{op.name}\x00{name0(op)}" for op in ra]
    kb = [f"{op.name}\x00{name0(op)}" for op in ca]
    pairs: list[tuple[int, int]] = []

    def by_shape(i0, i1, j0, j1):
        ta = [(ra[i].name, shape0(ra[i])) for i in range(i0, i1)]
        tb = [(ca[j].name, shape0(ca[j])) for j in range(j0, j1)]
        sm = difflib.SequenceMatcher(None, ta, tb, autojunk=False)
        for blk in sm.get_matching_blocks():
            pairs.extend((i0 + blk.a + k, j0 + blk.b + k) for k in range(blk.size))

    sm = difflib.SequenceMatcher(None, ka, kb, autojunk=False)
    i = j = 0
    for blk in sm.get_matching_blocks():
        by_shape(i, blk.a, j, blk.b)
        pairs.extend((blk.a + k, blk.b + k) for k in range(blk.size))
        i, j = blk.a + blk.size, blk.b + blk.size
    pa = {p[0] for p in pairs}
    pb = {p[1] for p in pairs}
    un_a = [f"{op.name} {k}" for k, op in enumerate(ra) if k not in pa]
    un_b = [f"{op.name} {k}" for k, op in enumerate(ca) if k not in pb]
    return pairs, un_a, un_b


def _sample_list(sample) -> Any:
    if isinstance(sample, dict):
        return sample
    if isinstance(sample, np.ndarray) or not isinstance(sample, (list, tuple)):
        return [sample]
    return list(sample)


def _cand_inputs(ref_it: Interpreter, cand: Model, sample) -> list[np.ndarray]:
    xs = R.ordered_inputs(ref_it, sample)
    out = []
    for t, x in zip(cand.main.inputs, xs):
        x = np.asarray(x)
        dt = t.numpy_dtype
        if _is_quantized(t) and np.issubdtype(x.dtype, np.floating):
            x = quantize_input(t, x)
        elif dt is not None and x.dtype != dt:
            x = x.astype(dt)
        out.append(x)
    return out


def _sqnr(signal_power: float, noise_power: float) -> float:
    if noise_power <= 0:
        return float("inf")
    if signal_power <= 0:
        return float("-inf")
    return float(10.0 * np.log10(signal_power / noise_power))


@dataclass
class DiffResult:
    """Per-layer and model-level error of a candidate model against a reference (see the
    module docstring for every column)."""

    df: pd.DataFrame
    summary: dict[str, Any]
    #: Operators of either model without a counterpart (``"TYPE index"``).
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    reference_name: str = ""
    candidate_name: str = ""

    def ranked(self, by: str = "sqnr_drop") -> pd.DataFrame:
        """Rows sorted worst first by ``by`` (``"rmse/scale"`` / ``"sqnr_drop"`` descending, or
        ``"sqnr_db"`` ascending); NaN last."""
        asc = by == "sqnr_db"  # every other column: larger is worse
        return self.df.sort_values(by, ascending=asc, na_position="last",
                                   kind="stable").reset_index(drop=True)

    def suggest_denylist(self, k: int = 3, by: str = "sqnr_drop") -> list[str]:
        """See :func:`suggest_denylist`."""
        return suggest_denylist(self, k=k, by=by)

    def plot(self, n: int = 30):
        """Matplotlib ``Figure``: per-layer ``rmse/scale`` (with the 0.289 ideal marked) and
        ``sqnr_db`` bars, in run order (first ``n`` layers)."""
        d = self.df.head(n)
        labels = [f"{i} {op}" for i, op in zip(d["tensor_idx"], d["op_name"])]
        y = np.arange(len(d))
        fig = R.figure((10, max(2.5, 0.25 * len(d) + 1.2)))
        ax1 = fig.add_subplot(1, 2, 1)
        rs = d["rmse/scale"].to_numpy(float)
        ax1.barh(y, np.nan_to_num(rs, nan=0.0),
                 color=["#d62728" if v > 2 else "#1f77b4" for v in np.nan_to_num(rs)])
        ax1.axvline(_UNIFORM_RMSE, color="#2ca02c", ls="--", lw=1, label="ideal 1/√12")
        ax1.set_yticks(y)
        ax1.set_yticklabels(labels, fontsize=7)
        ax1.invert_yaxis()
        ax1.set_xlabel("rmse / scale")
        ax1.legend(fontsize=7)
        ax2 = fig.add_subplot(1, 2, 2, sharey=ax1)
        sq = d["sqnr_db"].to_numpy(float)
        finite = np.where(np.isfinite(sq), sq, np.nan)
        cap = np.nanmax(finite) if np.isfinite(finite).any() else 0.0
        ax2.barh(y, np.where(np.isposinf(sq), cap, np.nan_to_num(sq, nan=0.0)), color="#9467bd")
        ax2.set_xlabel("SQNR dB")
        ax2.tick_params(labelleft=False)
        title = "diff"
        if self.candidate_name:
            title += f": {self.candidate_name}"
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        s = [(k, v) for k, v in self.summary.items() if not isinstance(v, (list, dict))]
        parts = [R.kv_table(s)]
        worst = self.ranked().head(5)
        if len(worst):
            parts.append("<h4>worst layers (SQNR drop)</h4>" + R.html_table(
                worst[["op_name", "tensor_name", "sqnr_drop", "rmse/scale", "sqnr_db",
                       "cosine"]]))
        parts.append("<h4>per layer</h4>" + R.html_table(self.df, max_rows=40))
        if any(self.unmatched.values()):
            parts.append('<p class="wb-note">unpaired ops: ' + R.esc("; ".join(
                f"{k}: {', '.join(v)}" for k, v in self.unmatched.items() if v)) + "</p>")
        return R.wrap("diff " + (self.candidate_name or ""), *parts)


def suggest_denylist(result: DiffResult, k: int = 3, by: str = "sqnr_drop") -> list[str]:
    """The output tensor names of the ``k`` quantized layers to keep in float, worst first by
    ``by`` (``"rmse/scale"`` or ``"sqnr_drop"`` descending, or ``"sqnr_db"`` ascending). Layers that are not
    quantized (NaN scale) are skipped.

    The default, ``sqnr_drop``, is local: it blames the layer where the SQNR falls, not the
    layers below it that inherit the error (which, measured in their own finer steps, can show a
    larger ``rmse/scale`` than the culprit), and it also catches a bad *output* scale, which
    ``rmse/scale`` cannot see (the error is ≈ 0.29 steps of the wrong, too coarse, grid). Since errors accumulate downstream, re-run :func:`diff`
    after deny-listing the first one before trusting the rest of the ranking."""
    d = result.df[result.df["scale"].notna()]
    d = d[d[by].notna()]
    d = d.sort_values(by, ascending=(by == "sqnr_db"), kind="stable")
    return list(d["tensor_name"].head(k))


def diff(reference_model, candidate_model, dataset: Iterable,
         metric: Callable[[list, list], float] | None = None) -> DiffResult:
    """Compare ``candidate_model`` (quantized) with ``reference_model`` (float) layer by layer.

    ``dataset``: an iterable of samples for the reference model (each one array, a list in
    input order or a dict by input name). Float inputs are quantized for a candidate with
    integer inputs (its scale / zero point, round half away from zero, clamp).
    ``metric(ref_outputs, cand_outputs)`` (lists of float arrays, one per model output) is
    averaged over the samples into ``summary["metric"]``. Models: :class:`Model`, path or bytes.
    """
    ref = R.load_model(reference_model)
    cand = R.load_model(candidate_model)
    rit, cit = Interpreter(ref), Interpreter(cand)
    rcap, ccap = _Capture(), _Capture()
    rit.hooks.append(rcap)
    cit.hooks.append(ccap)
    rsg, csg = ref.main, cand.main
    rindex = {id(t): i for i, t in enumerate(rsg.tensors)}
    cindex = {id(t): i for i, t in enumerate(csg.tensors)}

    op_pairs, un_a, un_b = _out_pairs(ref, cand)
    tensor_pairs: list[tuple[int, int, str]] = []  # ref idx, cand idx, cand op name
    for i, j in op_pairs:
        ro, co = rsg.operators[i], csg.operators[j]
        for a, b in zip(ro.outputs, co.outputs):
            if a is None or b is None or a.numpy_dtype is None or b.numpy_dtype is None:
                continue
            if not np.issubdtype(a.numpy_dtype, np.floating) and not _is_quantized(a):
                continue
            if not np.issubdtype(b.numpy_dtype, np.floating) and not _is_quantized(b):
                continue
            tensor_pairs.append((rindex[id(a)], cindex[id(b)], co.name))

    # Hidden pairs (not rows of the table), for the input SQNR of ``sqnr_drop``: the model
    # inputs, and the outputs of candidate-only QUANTIZE / DEQUANTIZE ops (paired with the
    # reference tensor their input stands for).
    ref_of = {cj: ri for ri, cj, _ in tensor_pairs}
    for a, b in zip(rsg.inputs, csg.inputs):
        ref_of.setdefault(cindex[id(b)], rindex[id(a)])
    hidden = [(rindex[id(a)], cindex[id(b)], "") for a, b in zip(rsg.inputs, csg.inputs)
              if _numeric(a) and _numeric(b)]
    paired_ops = {j for _, j in op_pairs}
    for j, op in enumerate(csg.operators):
        if j in paired_ops or op.name not in _EDGE_OPS or not op.inputs or op.inputs[0] is None:
            continue
        src, dst = op.inputs[0], op.outputs[0]
        ri = ref_of.get(cindex[id(src)])
        if ri is not None and dst is not None and tuple(dst.shape) == tuple(src.shape):
            ref_of[cindex[id(dst)]] = ri
            hidden.append((ri, cindex[id(dst)], ""))
    all_pairs = tensor_pairs + [h for h in hidden if h[1] not in {p[1] for p in tensor_pairs}]
    per: dict[int, dict[str, list]] = {j: {m: [] for m in DEBUGGER_COLUMNS[2:7]}
                                       for _, j, _ in all_pairs}
    acc = {j: {"sig": 0.0, "noise": 0.0, "dot": 0.0, "cc": 0.0, "nse": 0.0, "n": 0,
               "lo": np.inf, "hi": -np.inf} for _, j, _ in all_pairs}
    out_sig = out_noise = 0.0
    agree = rows = 0
    metric_vals: list[float] = []
    n_samples = 0
    for sample in dataset:
        sample = _sample_list(sample)
        rcap.values.clear()
        ccap.values.clear()
        r_out = rit.run(sample)
        c_out = cit.run(_cand_inputs(rit, cand, sample))
        n_samples += 1
        for t, x in zip(rsg.inputs, R.ordered_inputs(rit, sample)):
            rcap.values[rindex[id(t)]] = np.asarray(x)
        for t, x in zip(csg.inputs, _cand_inputs(rit, cand, sample)):
            ccap.values[cindex[id(t)]] = x
        for ri, cj, _ in all_pairs:
            if ri not in rcap.values or cj not in ccap.values:
                continue
            rt, ct = rsg.tensors[ri], csg.tensors[cj]
            r = dequantize(rt, rcap.values[ri])
            c = dequantize(ct, ccap.values[cj])
            if r.shape != c.shape:
                if r.size != c.size:
                    continue
                c = c.reshape(r.shape)
            d = c - r
            p = per[cj]
            p["num_elements"].append(d.size)
            p["stddev"].append(np.std(d))
            p["mean_error"].append(np.average(d))
            p["max_abs_error"].append(np.max(np.abs(d)) if d.size else np.nan)
            p["mean_squared_error"].append(np.average(d ** 2))
            a = acc[cj]
            a["sig"] += float(np.sum(r * r))
            a["noise"] += float(np.sum(d * d))
            a["dot"] += float(np.sum(r * c))
            a["cc"] += float(np.sum(c * c))
            a["n"] += d.size
            if d.size:
                a["lo"] = min(a["lo"], float(r.min()))
                a["hi"] = max(a["hi"], float(r.max()))
            if _is_quantized(ct):
                q = _quant(ct)
                sc = q.scale.astype(np.float64)
                if sc.size > 1 and d.ndim:
                    shape = [1] * d.ndim
                    shape[q.quantized_dimension] = -1
                    sc = sc.reshape(shape)
                a["nse"] += float(np.sum((d / sc) ** 2))
        # Non-numeric outputs (strings...) reach a user metric as they are, nothing else.
        numeric = [_numeric(a) and _numeric(b) for a, b in zip(rsg.outputs, csg.outputs)]
        rf = [dequantize(t, x) if ok else np.asarray(x)
              for t, x, ok in zip(rsg.outputs, r_out, numeric)]
        cf = [dequantize(t, x).reshape(np.shape(r)) if ok else np.asarray(x)
              for t, x, r, ok in zip(csg.outputs, c_out, rf, numeric)]
        for r, c, ok in zip(rf, cf, numeric):
            if not ok:
                continue
            out_sig += float(np.sum(r * r))
            out_noise += float(np.sum((c - r) ** 2))
            if r.ndim == 2 and r.shape[1] > 1:
                agree += int(np.sum(np.argmax(r, 1) == np.argmax(c, 1)))
                rows += r.shape[0]
        if metric is not None:
            metric_vals.append(float(metric(rf, cf)))

    records = []
    for ri, cj, op_name in tensor_pairs:
        p, a = per[cj], acc[cj]
        if not p["num_elements"]:
            continue
        ct = csg.tensors[cj]
        q = _quant(ct) if _is_quantized(ct) else None
        rec = {"op_name": op_name, "tensor_idx": cj,
               "num_elements": int(np.mean(p["num_elements"]))}
        for m in ("stddev", "mean_error", "max_abs_error", "mean_squared_error"):
            rec[m] = float(np.nanmean(p[m]))
        rec["scale"] = float(q.scale[0]) if q is not None else np.nan
        rec["zero_point"] = int(q.zero_point[0]) if q is not None and q.zero_point.size else 0
        rec["tensor_name"] = ct.name
        rec["range"] = a["hi"] - a["lo"] if a["n"] else np.nan
        rec["rmse/scale"] = float(np.sqrt(a["nse"] / a["n"])) if q is not None and a["n"] \
            else np.nan
        rec["sqnr_db"] = _sqnr(a["sig"], a["noise"])
        den = np.sqrt(a["sig"] * a["cc"])
        rec["cosine"] = float(a["dot"] / den) if den > 0 else (1.0 if a["noise"] == 0
                                                                else np.nan)
        records.append(rec)
    def in_sqnr(t) -> float | None:
        a = acc.get(cindex[id(t)])
        if a is None or not a["n"]:
            return None
        return min(_sqnr(a["sig"], a["noise"]), _SQNR_CAP)

    producer = {id(o): op for op in csg.operators for o in op.outputs if o is not None}
    for rec in records:
        op = producer.get(id(csg.tensors[rec["tensor_idx"]]))
        ins = [in_sqnr(t) for t in (op.inputs if op is not None else [])
               if t is not None and not t.is_constant]
        ins = [v for v in ins if v is not None]
        rec["sqnr_drop"] = (min(ins) - min(rec["sqnr_db"], _SQNR_CAP)) if ins else np.nan
    df = pd.DataFrame(records, columns=COLUMNS)
    df["tensor_idx"] = df["tensor_idx"].astype(int)
    df["num_elements"] = df["num_elements"].astype(int)
    df["zero_point"] = df["zero_point"].astype(int)

    summary: dict[str, Any] = {"samples": n_samples, "layers": len(df),
                               "output_sqnr_db": _sqnr(out_sig, out_noise)}
    if rows:
        summary["top1_agreement"] = agree / rows
    if metric is not None:
        summary["metric"] = float(np.mean(metric_vals)) if metric_vals else np.nan
    res = DiffResult(df=df, summary=summary, unmatched={"reference": un_a, "candidate": un_b},
                     reference_name=str(getattr(ref, "source", "") or ""),
                     candidate_name=str(getattr(cand, "source", "") or ""))
    worst = res.suggest_denylist(1)
    if worst:
        summary["worst_layer"] = worst[0]
    if df["rmse/scale"].notna().any():
        summary["max_rmse/scale"] = float(df["rmse/scale"].max())
    return res


__all__ = ["COLUMNS", "DEBUGGER_COLUMNS", "DiffResult", "dequantize", "diff", "quantize_input",
           "suggest_denylist"]
