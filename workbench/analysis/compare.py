"""``wb.compare``: quantization modes side by side — size, accuracy, measured and estimated latency.

Example::

    r = wb.compare("model.tflite", dataset=calib, eval_data=(x_test, y_test),
                   device=["pixel4", "raspberry_pi_4"])
    r.df        # one row per mode
    r.models    # label -> the quantized Model
    r.plot()    # size vs accuracy, latency bars
    r.save("modes.html")

Each entry of ``modes`` is a quantization mode of :func:`workbench.quantize` (the float model is
quantized with it), ``"float32"`` (the model itself), or an already quantized model (a
:class:`~workbench.ir.graph.Model`, a path or bytes: e.g. a file from TF's converter), labelled
by its file name. The float ``model`` is the reference of every row's output SQNR and top-1
agreement.

Columns of ``.df`` (one row per mode, in the order given)
---------------------------------------------------------
``mode``, ``status`` (``ok`` / ``failed``), ``reason`` (why a mode or one of its measurements
failed; empty when everything ran)
``size_bytes``, ``size_ratio``
    The file size (what ``Model.save`` writes, or the size of the given file) and its ratio to
    the float model's.
``weight_bytes``
    Bytes of all constant buffers, each counted once
    (:func:`workbench.analysis.summary.totals`).
``metric``, ``metric_delta``
    The metric on ``eval_data`` (default: top-1 accuracy, a fraction, when labels are given) and
    its difference from the float model's. NaN without labels and without ``metric``.
``output_sqnr_db``
    ``10 log10(sum ref² / sum (out - ref)²)`` over all model outputs (dequantized) and
    samples, against the float model (as ``wb.diff``'s ``output_sqnr_db``); inf when equal.
``top1_agreement``
    Fraction of samples whose argmax agrees with the float model's, over rank-2 outputs
    ``(batch, classes)`` with more than one class; NaN without such outputs.
``ms_workbench``, ``ms_litert``
    Median milliseconds of one invoke over ``runs`` timed invokes (after one warm-up) in our
    interpreter and in LiteRT (``ai-edge-litert``'s default op resolver, whose default delegate
    is XNNPACK, one thread), on the first evaluation sample. NaN when not measured. LiteRT
    runs in a child process: it aborts the process on some files, which then costs only that
    mode its column (the reason says so).
``est_ms <device>/<delegate>``, ``est_low_ms ...``, ``est_high_ms ...``, ``delegated ...``
    :func:`workbench.delegates.estimate.estimate`'s total and range, and the fraction of ops
    the delegate takes, per device/delegate pair. Estimates, never measurements.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis import _result as R
from workbench.errors import InputError, WorkbenchError
from workbench.ir.graph import Model

#: The float model itself (the reference).
FLOAT = "float32"
DEFAULT_MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
#: Modes that need calibration data.
_CALIBRATED = ("int8", "int16x8")
BASE_COLUMNS = ["mode", "status", "reason", "size_bytes", "size_ratio", "weight_bytes",
                "metric", "metric_delta", "output_sqnr_db", "top1_agreement", "ms_workbench",
                "ms_litert"]


# ------------------------------------------------------------------------------------------
# The result
# ------------------------------------------------------------------------------------------
@dataclass
class CompareResult:
    """Quantization modes side by side (see :func:`compare` and the module docstring).

    Attributes
    ----------
    df
        One row per mode (columns in the module docstring).
    models
        Label -> the Model of each mode that was built or loaded (failed modes are absent).
    estimates
        ``(label, device, delegate)`` -> the :class:`EstimateResult` behind the estimate
        columns.
    metric_name
        What the ``metric`` column holds (``"top-1 accuracy"``, the metric's name, or ``""``).
    engine
        Which interpreter computed the outputs (``"workbench"`` or ``"litert"``).
    notes
        How things were measured, in words (interpreter versions, samples, runs).
    """

    df: pd.DataFrame
    models: dict[str, Model]
    estimates: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    metric_name: str = ""
    engine: str = "workbench"
    notes: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        """The ``device/delegate`` pairs of the estimate columns."""
        return [c[len("est_ms "):] for c in self.df.columns if c.startswith("est_ms ")]

    def plot(self):
        """Two panels: size against the metric (or output SQNR without one), and latency bars
        per mode (measured in our interpreter and LiteRT; estimated per device/delegate, with
        the estimate's range as error bars). Returns a matplotlib ``Figure``."""
        d = self.df[self.df["status"] == "ok"]
        fig = R.figure((12.5, 4.2))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.5]})
        ycol, ylabel = "metric", self.metric_name or "metric"
        if d["metric"].isna().all():
            ycol, ylabel = "top1_agreement", "top-1 agreement with float"
            if d[ycol].isna().all():
                ycol, ylabel = "output_sqnr_db", "output SQNR vs float (dB, inf capped at 100)"
        y = d[ycol].to_numpy(float)
        y = np.where(np.isposinf(y), 100.0, y)
        x = d["size_bytes"].to_numpy(float) / 1024
        ax1.scatter(x, y, color="#1f77b4")
        # Modes of similar size and accuracy sit on top of each other: stack their labels.
        ok = np.isfinite(x) & np.isfinite(y)
        span = [max(float(np.ptp(v[ok])), 1e-12) if ok.any() else 1.0 for v in (x, y)]
        placed: list[int] = []
        for i in np.flatnonzero(ok):
            near = sum(abs(x[i] - x[j]) < 0.08 * span[0] and abs(y[i] - y[j]) < 0.08 * span[1]
                       for j in placed)
            placed.append(i)
            ax1.annotate(str(d["mode"].iloc[i]), (x[i], y[i]), textcoords="offset points",
                         xytext=(4, 4 + 10 * near), fontsize=8)
        ax1.set_xlabel("size (KiB)")
        ax1.set_ylabel(ylabel)
        ax1.set_title("size vs " + ylabel.split(" (")[0], fontsize=10)
        ax1.grid(alpha=0.3)

        series = [(c, name) for c, name in (("ms_workbench", "measured: ours"),
                                             ("ms_litert", "measured: LiteRT"))
                  if d[c].notna().any()]
        series += [(f"est_ms {t}", f"est. {t}") for t in self.targets]
        labels = list(d["mode"].astype(str))
        if series and labels:
            width = 0.8 / len(series)
            pos = np.arange(len(labels))
            for k, (col, name) in enumerate(series):
                v = d[col].to_numpy(float)
                err = None
                if col.startswith("est_ms "):
                    t = col[len("est_ms "):]
                    lo = d[f"est_low_ms {t}"].to_numpy(float)
                    hi = d[f"est_high_ms {t}"].to_numpy(float)
                    err = np.vstack([np.maximum(v - lo, 0), np.maximum(hi - v, 0)])
                ax2.bar(pos + (k - (len(series) - 1) / 2) * width, v, width, yerr=err,
                        label=name, capsize=2)
            ax2.set_xticks(pos)
            ax2.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
            ax2.set_yscale("log")
            ax2.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax2.set_ylabel("ms per invoke (log)")
        ax2.set_title("latency: measured here, estimated on devices", fontsize=10)
        ax2.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        return fig

    def _body(self) -> str:
        notes = "".join(f'<p class="wb-note">{R.esc(n)}</p>' for n in self.notes)
        failed = self.df[self.df["status"] != "ok"]
        fail = ""
        if len(failed):
            fail = "<p>Failed modes</p>" + R.html_table(failed[["mode", "reason"]])
        # Missing values (pandas' NA of the integer columns) show as empty cells.
        shown = self.df.astype(object).where(self.df.notna(), float("nan"))
        return R.html_table(shown, max_rows=100) + fail + notes

    def _repr_html_(self) -> str:
        return R.wrap("Quantization modes compared", self._body())

    def __repr__(self) -> str:
        return f"CompareResult({len(self.df)} modes)\n{self.df.to_string()}"

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the table: ``.csv`` (the ``df``) or ``.html`` (a self-contained page: table,
        notes and the figure as an inline PNG). Atomic; an existing file is replaced only with
        ``overwrite=True`` (else ``FileExistsError``)."""
        p = os.fspath(path)
        ext = os.path.splitext(p)[1].lower()
        if ext == ".csv":
            data = self.df.to_csv(index=False)
        elif ext in (".html", ".htm"):
            import base64
            import io

            buf = io.BytesIO()
            self.plot().savefig(buf, format="png", dpi=100)
            img = base64.b64encode(buf.getvalue()).decode()
            data = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
                    "<title>Quantization modes compared</title></head><body>"
                    + R.wrap("Quantization modes compared", self._body(),
                             f'<img alt="size vs accuracy and latency" '
                             f'src="data:image/png;base64,{img}">')
                    + "</body></html>")
        else:
            raise InputError(f"cannot save a comparison as {ext or 'a file without suffix'!r}; "
                             f"use .csv or .html")
        return R.atomic_write(p, data, overwrite=overwrite)


# ------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------
def _modes(modes) -> list[tuple[str, tuple[str, Any]]]:
    """``modes`` -> [(label, ("mode", name) or ("model", Model / path / bytes))]."""
    from workbench.quantize.quantizer import MODES

    known = (FLOAT, *MODES)
    if isinstance(modes, (str, bytes, os.PathLike, Model)):
        modes = [modes]
    if isinstance(modes, Mapping):
        items = [(str(k), v) for k, v in modes.items()]
    else:
        try:
            items = [(None, v) for v in modes]
        except TypeError:
            raise InputError(f"modes must be a list of mode names or models, got "
                             f"{type(modes).__name__}") from None
    if not items:
        raise InputError("modes is empty")
    out = []
    for k, (label, spec) in enumerate(items):
        if isinstance(spec, str) and spec in known:
            out.append((label or spec, ("mode", spec)))
        elif isinstance(spec, Model):
            name = os.path.basename(spec.source) if spec.source else f"model[{k}]"
            out.append((label or name, ("model", spec)))
        elif isinstance(spec, (bytes, bytearray, memoryview)):
            out.append((label or f"model[{k}]", ("model", bytes(spec))))
        elif isinstance(spec, (str, os.PathLike)):
            if not os.path.isfile(spec):
                raise InputError(f"modes[{k}] = {os.fspath(spec)!r} is neither a mode "
                                 f"({', '.join(known)}) nor an existing .tflite file")
            out.append((label or os.path.basename(os.fspath(spec)),
                        ("model", os.fspath(spec))))
        else:
            raise InputError(f"modes[{k}]: expected a mode name ({', '.join(known)}), a Model, "
                             f"a path or bytes, got {type(spec).__name__}")
    labels = [lb for lb, _ in out]
    dup = sorted({lb for lb in labels if labels.count(lb) > 1})
    if dup:
        raise InputError(f"modes have duplicate labels {dup}; pass a dict {{label: mode}}")
    return out


def _targets(device, delegate) -> list[tuple[str, str]]:
    """(device, delegate) pairs from ``device``/``delegate`` (each one value, a list, or
    ``device`` a list of pairs), each checked against the device profiles."""
    from workbench.delegates.profiles import load_device

    if device is None:
        if delegate is not None:
            raise InputError("delegate= needs device= (the device to estimate on)")
        return []
    devs = [device] if isinstance(device, (str, os.PathLike, tuple)) else list(device)
    dels = [delegate or "cpu"] if delegate is None or isinstance(delegate, str) \
        else list(delegate)
    pairs = []
    for d in devs:
        if isinstance(d, tuple):
            if len(d) != 2:
                raise InputError(f"a device entry tuple must be (device, delegate), got {d!r}")
            pairs.append((d[0], d[1]))
        else:
            pairs.extend((d, x) for x in dels)
    out = []
    for d, x in pairs:
        if not isinstance(x, str):
            raise InputError(f"delegate must be a name such as 'gpu', got {x!r}")
        if not isinstance(d, (str, os.PathLike)):
            raise InputError(f"device must be a device name or profile path, got {d!r}")
        prof = load_device(d)  # InputError (DeviceProfileError) for an unknown device
        prof.processor_for(x)  # ... and for a delegate the device lacks
        out.append((os.fspath(d), x.lower()))
    if len(set(out)) != len(out):
        raise InputError(f"device/delegate pairs repeat: {out}")
    return out


def _samples(data, what: str) -> list:
    """A list of samples from an array (batch along axis 0, each sample keeps a batch
    dimension of 1), an iterable of samples, or a callable returning either."""
    if callable(data):
        data = data()
    if isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise InputError(f"{what} is a scalar, not a batch of samples")
        return [data[i:i + 1] for i in range(data.shape[0])]
    if isinstance(data, dict):
        return [data]
    try:
        out = list(data)
    except TypeError:
        raise InputError(f"{what} must be an array, an iterable of samples or (inputs, "
                         f"labels), got {type(data).__name__}") from None
    if not out:
        raise InputError(f"{what} is empty")
    return out


def _eval_data(eval_data) -> tuple[list, np.ndarray | None]:
    """(samples, labels or None). A tuple ``(inputs, labels)`` is labelled data; any other
    value is unlabelled samples."""
    if isinstance(eval_data, tuple) and len(eval_data) == 2 and not isinstance(
            eval_data[1], dict) and eval_data[1] is not None and np.ndim(eval_data[1]) >= 1:
        xs, ys = eval_data
        return _samples(xs, "eval_data inputs"), np.asarray(ys)
    return _samples(eval_data, "eval_data"), None


def _check_sample(model: Model, xs: list[np.ndarray]) -> list[np.ndarray]:
    """``xs`` if each array has its input's rank and shape (the batch dimension and dimensions
    the signature leaves free, -1, may differ), else InputError: a fully convolutional model
    would run a wrong-sized image and give numbers that mean nothing."""
    for t, x in zip(model.main.inputs, xs):
        sig = list(t.shape_signature) if t.shape_signature is not None and len(
            t.shape_signature) else list(t.shape)
        ok = x.ndim == len(t.shape) and all(
            d == 0 or a == b or s == -1 for d, (a, b, s) in enumerate(zip(x.shape, t.shape, sig)))
        if not ok:
            raise InputError(f"input {t.name!r} has shape {list(x.shape)}, the model takes "
                             f"{list(t.shape)} (only the batch dimension may differ)")
        if x.dtype == object:
            raise InputError(f"input {t.name!r}: expected a numeric array, got objects")
    return xs


def _quantize_kwargs(quantize_options, mode: str) -> dict:
    from workbench.quantize.quantizer import MODES

    if quantize_options is None:
        return {}
    if not isinstance(quantize_options, Mapping):
        raise InputError(f"quantize_options must be a dict, got "
                         f"{type(quantize_options).__name__}")
    if quantize_options and all(k in MODES for k in quantize_options) and all(
            isinstance(v, Mapping) for v in quantize_options.values()):
        kw = dict(quantize_options.get(mode, {}))
    else:
        kw = dict(quantize_options)
    import inspect

    from workbench.quantize.quantizer import quantize

    # model, mode and data are compare's own arguments; anything else must be quantize's.
    allowed = set(inspect.signature(quantize).parameters) - {
        "model", "mode", "representative_dataset"}
    bad = sorted(set(kw) - allowed)
    if bad:
        raise InputError(f"quantize_options {bad} are not options of wb.quantize here; use "
                         f"{sorted(allowed)} (the data goes in compare's dataset=)")
    return kw


# ------------------------------------------------------------------------------------------
# Running models
# ------------------------------------------------------------------------------------------
class _Runner:
    """Runs one model on float samples: float inputs are quantized for integer inputs, outputs
    dequantized to float64 (as ``wb.diff`` does), in our interpreter or in LiteRT."""

    def __init__(self, model: Model, engine: str):
        from workbench.analysis.diff import dequantize

        self.model = model
        self.engine = engine
        self._deq = dequantize
        if engine == "litert":
            self.it = _litert(model.to_bytes())
            self.it.allocate_tensors()
            self.order = [d["index"] for d in self.it.get_input_details()]
            self.out = [d["index"] for d in self.it.get_output_details()]
        else:
            from workbench.interpreter import Interpreter

            self.it = Interpreter(model, num_threads=1)

    def run(self, sample: list[np.ndarray]) -> list[np.ndarray]:
        xs = _model_inputs(self.model, sample)
        if self.engine == "litert":
            for i, x in zip(self.order, xs):
                if tuple(self.it.get_tensor(i).shape) != tuple(x.shape):
                    self.it.resize_tensor_input(i, x.shape)
                    self.it.allocate_tensors()
                self.it.set_tensor(i, x)
            self.it.invoke()
            raw = [self.it.get_tensor(i) for i in self.out]
        else:
            raw = self.it.run(xs)
        return [self._deq(t, np.asarray(x)) for t, x in zip(self.model.main.outputs, raw)]


def _model_inputs(model: Model, sample: list[np.ndarray]) -> list[np.ndarray]:
    """Float ``sample`` as ``model`` takes it: quantized (its scale and zero point, rounded
    half away from zero, as ``wb.diff``) for integer inputs, else cast to the input type."""
    from workbench.analysis.diff import _is_quantized, quantize_input

    if len(model.main.inputs) != len(sample):
        raise InputError(f"the model has {len(model.main.inputs)} inputs, the float model "
                         f"{len(sample)}")
    out = []
    for t, x in zip(model.main.inputs, sample):
        if _is_quantized(t) and np.issubdtype(x.dtype, np.floating):
            x = quantize_input(t, x)
        elif t.numpy_dtype is not None and x.dtype != t.numpy_dtype:
            x = x.astype(t.numpy_dtype)
        out.append(x)
    return out


def _litert(content: bytes):
    """LiteRT's built-in kernels without delegates: the reference numbers of its kernels."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_content=content, num_threads=1,
                       experimental_op_resolver_type=OpResolverType
                       .BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _have_litert() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def _median_ms(invoke: Callable[[], None], runs: int) -> float:
    invoke()  # warm-up: first-touch costs are not the steady state
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        invoke()
        ts.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(ts))


def _time_workbench(model: Model, xs: list[np.ndarray], runs: int) -> float:
    from workbench.interpreter import Interpreter
    from workbench.interpreter.threads import blas_threads

    it = Interpreter(model, num_threads=1)
    it.run(xs)  # allocates for these shapes
    for t, x in zip(model.main.inputs, xs):
        it.set_tensor(it._index[id(t)], x)
    with blas_threads(1):
        return _median_ms(it.invoke, runs)


# LiteRT aborts the whole process (SIGABRT in allocate_tensors) on some files, e.g. a 16x8 graph
# one of its kernels rejects with a failed check; so every LiteRT run that has not been proven
# safe happens in a child process, and a crash costs only that mode its LiteRT column.
_LITERT_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
for job in json.load(open(sys.argv[1])):
    out = {"key": job["key"]}
    try:
        with np.load(job["inputs"]) as z:
            xs = [z[f"arr_{i}"] for i in range(len(z.files))]
        kind = (OpResolverType.AUTO if job["delegates"]
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        with open(job["model"], "rb") as f:
            it = Interpreter(model_content=f.read(), num_threads=1,
                             experimental_op_resolver_type=kind)
        ins = it.get_input_details()
        for d, x in zip(ins, xs):
            if tuple(d["shape"]) != x.shape:
                it.resize_tensor_input(d["index"], x.shape)
        it.allocate_tensors()
        for d, x in zip(ins, xs):
            it.set_tensor(d["index"], x)
        it.invoke()  # warm-up: first-touch costs are not the steady state
        ts = []
        for _ in range(job["runs"]):
            t0 = time.perf_counter()
            it.invoke()
            ts.append((time.perf_counter() - t0) * 1e3)
        out["ms"] = statistics.median(ts) if ts else None
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        out["error"] = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    print("RESULT " + json.dumps(out), flush=True)
"""


def _litert_jobs(jobs: list[tuple[bytes, list[np.ndarray], bool, int]],
                 timeout: float = 120.0) -> list[dict]:
    """Run ``(model bytes, inputs, default delegates?, timed runs)`` jobs in LiteRT in child
    processes: one invoke (a probe) plus ``runs`` timed ones each, one thread. Returns per job
    ``{"ms": median ms or None}`` or ``{"error": reason}``; a job that crashes or hangs the
    child gets that as its error and the remaining jobs run in a new child."""
    import json
    import subprocess
    import sys
    import tempfile

    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="wb-compare-") as d:
        todo = []
        for k, (content, xs, delegates, runs) in enumerate(jobs):
            mp, ip = os.path.join(d, f"m{k}.tflite"), os.path.join(d, f"x{k}.npz")
            with open(mp, "wb") as f:
                f.write(content)
            np.savez(ip, *xs)
            todo.append({"key": k, "model": mp, "inputs": ip, "delegates": bool(delegates),
                         "runs": int(runs)})
        while todo:
            spec = os.path.join(d, "jobs.json")
            with open(spec, "w") as f:
                json.dump(todo, f)
            try:
                proc = subprocess.run([sys.executable, "-c", _LITERT_SCRIPT, spec],
                                      capture_output=True, timeout=timeout * len(todo),
                                      check=False)
                out, err, code = proc.stdout, proc.stderr, proc.returncode
            except subprocess.TimeoutExpired as e:
                out, err, code = e.stdout or b"", e.stderr or b"", None
            for line in out.decode(errors="replace").splitlines():
                if line.startswith("RESULT "):
                    r = json.loads(line[len("RESULT "):])
                    results[r.pop("key")] = r
            todo = [j for j in todo if j["key"] not in results]
            if not todo:
                break
            first = todo.pop(0)  # the job the child was running when it died
            if code is None:
                why = f"LiteRT did not finish within {timeout * (len(todo) + 1):g} s"
            else:
                lines = [ln.strip() for ln in err.decode(errors="replace").splitlines()
                         if ln.strip() and not ln.startswith("INFO:")]
                if code == 0:
                    why = "LiteRT printed no result"
                else:
                    if code < 0:
                        try:
                            sig = signal.Signals(-code).name
                        except ValueError:
                            sig = f"signal {-code}"
                        why = f"LiteRT crashed ({sig})"
                    else:
                        why = f"LiteRT failed (exit status {code})"
                if lines:
                    why += ": " + lines[-1][:200]
            results[first["key"]] = {"error": why}
    return [results[k] for k in range(len(jobs))]


def _sqnr(sig: float, noise: float) -> float:
    from workbench.analysis.diff import _sqnr as sq

    return sq(sig, noise)


def _top1(outputs: list[np.ndarray], labels: np.ndarray) -> float:
    """Top-1 accuracy of the first output against class ids (or one-hot rows)."""
    y = outputs[0]
    n = y.shape[0] if y.ndim else 1
    y = y.reshape(n, -1)
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape == y.shape:  # one-hot / probabilities
        lab = np.argmax(lab, axis=1)
    lab = lab.reshape(-1)
    if lab.size != n:
        raise InputError(f"{lab.size} labels for {n} output rows")
    return float(np.mean(np.argmax(y, axis=1) == lab))


def _concat(per_sample: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Outputs of every sample, stacked per model output along the batch axis."""
    return [np.concatenate([np.reshape(s[k], (-1, *np.shape(s[k])[1:])) if np.ndim(s[k])
                            else np.reshape(s[k], (1,)) for s in per_sample])
            for k in range(len(per_sample[0]))]


def _progress(items: list, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc="compare", leave=False)


def _reason(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


# ------------------------------------------------------------------------------------------
# Public entry point
# ------------------------------------------------------------------------------------------
def compare(model, modes: Iterable = DEFAULT_MODES, *, dataset=None, eval_data=None,
            metric: Callable[[list, Any], float] | None = None, device=None, delegate=None,
            threads: int | None = None, measure: bool | str = True, runs: int = 20,
            engine: str = "workbench", calibration: str | dict = "minmax",
            quantize_options: dict | None = None, progress: bool = True) -> CompareResult:
    """Quantize ``model`` in several modes and compare them side by side.

    Parameters
    ----------
    model
        The float model (:class:`~workbench.ir.graph.Model`, path or bytes): what every mode
        quantizes, and the reference of output SQNR and top-1 agreement.
    modes
        Mode names (``"float32"`` = the model itself, ``"dynamic"``, ``"float16"``,
        ``"int8"``, ``"int16x8"``, ``"weight_only"``), already quantized models (Model, path or
        bytes; labelled by file name), or a dict ``{label: mode or model}``.
    dataset
        Representative (calibration) data for ``int8``/``int16x8``, as :func:`wb.quantize`
        takes it. Without it those modes fail (their row says so).
    eval_data
        ``(inputs, labels)`` (a tuple) or unlabelled samples. ``inputs``: an array (samples
        along axis 0, each run with a batch of 1) or an iterable of samples (one array, a list
        in input order, or a dict by input name), as float data: integer-input models get it
        quantized with their input's scale. ``labels``: class ids or one-hot rows for the
        first output. Without ``eval_data``, ``dataset`` is used for SQNR / agreement only
        (never for accuracy).
    metric
        ``metric(outputs, labels) -> float``: ``outputs`` is a list (one per model output) of
        float arrays stacked over the samples (dequantized); ``labels`` the labels, or without
        labels the float model's outputs in the same form. Default: top-1 accuracy of the
        first output when labels are given, else none (the SQNR and agreement columns remain).
    device, delegate
        Estimated-latency columns (:func:`wb.estimate`): a device name or profile path, or a
        list of them; a delegate name or list (default ``"cpu"``); or ``device`` a list of
        ``(device, delegate)`` pairs. None: no estimate columns.
    threads
        CPU threads of the estimates (None: the device's big cores).
    measure
        ``True``: median latency in our interpreter and, if ``ai-edge-litert`` is installed,
        in LiteRT (in a child process, which a LiteRT abort cannot take down with this one);
        ``"workbench"`` or ``"litert"``: only that one; ``False``: none.
    runs
        Timed invokes per model and interpreter.
    engine
        Interpreter computing the outputs for metric/SQNR/agreement: ``"workbench"`` (ours)
        or ``"litert"`` (LiteRT's built-in kernels, no delegate).
    calibration
        Range method of the calibrated modes (see :func:`wb.quantize`).
    quantize_options
        Keyword arguments for every :func:`wb.quantize` call, or a dict by mode name of them
        (e.g. ``{"int8": {"denylist": ["SOFTMAX"]}}``).
    progress
        Show a progress bar over the modes.

    Returns
    -------
    CompareResult

    Raises
    ------
    InputError
        Bad arguments (unknown mode, duplicate labels, unknown device or delegate, empty or
        malformed evaluation data, labels that do not match the samples). A mode that fails
        (quantization, loading, running) gets a row with ``status="failed"`` and its reason.
    """
    from workbench.analysis.summary import totals
    from workbench.quantize.quantizer import quantize

    if engine not in ("workbench", "litert"):
        raise InputError(f"engine must be 'workbench' or 'litert', got {engine!r}")
    if measure not in (True, False, "workbench", "litert"):
        raise InputError(f"measure must be True, False, 'workbench' or 'litert', got "
                         f"{measure!r}")
    if isinstance(runs, bool) or not isinstance(runs, (int, np.integer)) or runs < 1:
        raise InputError(f"runs must be a positive integer, got {runs!r}")
    if metric is not None and not callable(metric):
        raise InputError(f"metric must be callable(outputs, labels) -> float, got "
                         f"{type(metric).__name__}")
    try:
        ref = R.load_model(model)
    except TypeError as e:
        raise InputError(f"model must be a Model, a path or bytes: {e}") from None
    ref_label = os.path.basename(ref.source) if ref.source else "model"
    entries = _modes(modes)
    for _, (kind, spec) in entries:  # a malformed option is the caller's error, not a mode's
        if kind == "mode":
            _quantize_kwargs(quantize_options, spec)
    pairs = _targets(device, delegate)
    have_litert = _have_litert()
    if engine == "litert" and not have_litert:
        raise InputError("engine='litert' needs ai-edge-litert installed")
    measure_ours = measure in (True, "workbench")
    measure_litert = measure == "litert" or (measure is True and have_litert)
    if measure == "litert" and not have_litert:
        raise InputError("measure='litert' needs ai-edge-litert installed")

    if dataset is not None and not callable(dataset) and not isinstance(
            dataset, (np.ndarray, list, tuple, dict)):
        # A one-shot iterator (a generator) would be used up by the first calibrated mode.
        dataset = _samples(dataset, "dataset")
    # Evaluation samples, as lists of arrays in the float model's input order.
    from workbench.interpreter import Interpreter

    ref_it = Interpreter(ref)
    labels = None
    if eval_data is not None:
        raw, labels = _eval_data(eval_data)
    elif dataset is not None:
        raw = _samples(dataset, "dataset")
    else:
        raw = []
    samples = []
    for k, s in enumerate(raw):
        if isinstance(s, tuple):
            s = list(s)
        try:
            samples.append(_check_sample(ref, R.ordered_inputs(ref_it, s)))
        except InputError as e:
            raise InputError(f"evaluation sample {k}: {e}") from None
    if not samples and measure:
        samples = [R.random_inputs(ref_it.get_input_details())]
        random_only = True
    else:
        random_only = False

    ref_outs = None
    if samples and not random_only:
        if engine == "litert":
            probe = _litert_jobs([(ref.to_bytes(), _model_inputs(ref, samples[0]), False, 0)])
            if "error" in probe[0]:
                raise InputError(f"LiteRT cannot run the float model ({probe[0]['error']}); "
                                 f"use engine='workbench'")
        try:
            runner = _Runner(ref, engine)
            ref_outs = _concat([runner.run(s) for s in samples])
        except (WorkbenchError, ValueError) as e:
            raise InputError(f"the float model cannot run the evaluation data: {e}") from None
        if labels is not None and metric is None:
            _top1(ref_outs, labels)  # labels that do not fit the samples: InputError now
    metric_name = ""
    if ref_outs is not None and (metric is not None or labels is not None):
        metric_name = getattr(metric, "__name__", "metric") if metric is not None \
            else "top-1 accuracy"

    def score(outs: list[np.ndarray]) -> float:
        if metric is not None:
            return float(metric(outs, labels if labels is not None else ref_outs))
        if labels is not None:
            return _top1(outs, labels)
        return float("nan")

    # The float model's metric first: a metric that fails, fails before any quantizing.
    ref_metric = score(ref_outs) if ref_outs is not None and metric_name else float("nan")
    ref_size = totals(ref)["file_size"]
    rows: list[dict] = []
    built: dict[str, Model] = {}
    estimates: dict = {}
    for label, (kind, spec) in _progress(entries, progress):
        row: dict[str, Any] = {"mode": label, "status": "ok", "reason": ""}
        try:
            if kind == "mode" and spec == FLOAT:
                m = ref
            elif kind == "mode":
                kw = {"calibration": calibration, "progress": False,
                      **_quantize_kwargs(quantize_options, spec)}
                if spec in _CALIBRATED and dataset is None and "stats" not in kw:
                    raise InputError(f"{spec} needs calibration data: pass dataset=")
                m = quantize(ref, spec, dataset if spec in _CALIBRATED else None, **kw)
            else:
                m = R.load_model(spec)
        # Any failure of one mode (a quantizer limit, an unreadable file) becomes its row's
        # reason: the other modes' results, minutes of work, must not be lost to it.
        except Exception as e:  # noqa: BLE001 - reported in the row, with its type
            row.update(status="failed", reason=_reason(e))
            rows.append(row)
            continue
        built[label] = m
        t = totals(m)
        row["size_bytes"] = int(t["file_size"])
        row["size_ratio"] = t["file_size"] / ref_size if ref_size else float("nan")
        row["weight_bytes"] = int(t["weight_bytes"])
        rows.append(row)

    # LiteRT, in child processes: probes for engine="litert" (an evaluation in this process
    # must not abort it), and the timings.
    probe: dict[str, dict] = {}
    timed: dict[str, dict] = {}
    if samples and (engine == "litert" or measure_litert):
        jobs, keys = [], []
        for label, m in built.items():
            try:
                xs = _model_inputs(m, samples[0])
            except InputError as e:
                probe[label] = timed[label] = {"error": str(e)}
                continue
            if engine == "litert" and m is not ref:
                jobs.append((m.to_bytes(), xs, False, 0))
                keys.append((probe, label))
            if measure_litert:
                jobs.append((m.to_bytes(), xs, True, runs))
                keys.append((timed, label))
        for (where, label), r in zip(keys, _litert_jobs(jobs)):
            where[label] = r

    for row in rows:
        label = row["mode"]
        if label not in built:
            continue
        m = built[label]
        why: list[str] = []
        if ref_outs is not None and "error" in probe.get(label, {}):
            why.append(f"evaluation: {probe[label]['error']}")
        elif ref_outs is not None:
            try:
                if m is ref:
                    outs = ref_outs
                else:
                    runner = _Runner(m, engine)
                    outs = _concat([runner.run(s) for s in samples])
                row.update(_agreement(ref_outs, outs))
                row["metric"] = ref_metric if m is ref else score(outs)
            except Exception as e:  # noqa: BLE001 - as above, for running the mode
                why.append(f"evaluation: {_reason(e)}")
        if samples and measure_ours:
            try:
                row["ms_workbench"] = _time_workbench(m, _model_inputs(m, samples[0]), runs)
            except Exception as e:  # noqa: BLE001
                why.append(f"workbench timing: {_reason(e)}")
        if label in timed:
            if "error" in timed[label]:
                why.append(f"LiteRT timing: {timed[label]['error']}")
            else:
                row["ms_litert"] = timed[label]["ms"]
        for dev, dele in pairs:
            col = f"{dev}/{dele}"
            try:
                est = _estimate(m, dev, dele, threads)
            except (WorkbenchError, ValueError) as e:
                why.append(f"estimate {col}: {_reason(e)}")
                continue
            estimates[(label, dev, dele)] = est
            s = est.summary
            row[f"est_ms {col}"] = est.total_ms
            row[f"est_low_ms {col}"] = est.low_ms
            row[f"est_high_ms {col}"] = est.high_ms
            row[f"delegated {col}"] = s["ops_delegated"] / s["ops"] if s["ops"] else float("nan")
        row["reason"] = "; ".join(why)

    cols = list(BASE_COLUMNS)
    for dev, dele in pairs:
        c = f"{dev}/{dele}"
        cols += [f"est_ms {c}", f"est_low_ms {c}", f"est_high_ms {c}", f"delegated {c}"]
    df = pd.DataFrame(rows).reindex(columns=cols)
    for c in cols[3:]:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    df["metric_delta"] = df["metric"] - ref_metric
    for c in ("size_bytes", "weight_bytes"):
        df[c] = df[c].astype("Int64")

    notes = []
    if ref_outs is not None:
        notes.append(f"Outputs from {'our interpreter' if engine == 'workbench' else 'LiteRT'} "
                     f"on {len(samples)} evaluation sample(s); SQNR and agreement against the "
                     f"float model {ref_label!r}" + (f"; metric: {metric_name}"
                                                      if metric_name else "") + ".")
    elif eval_data is None and dataset is None:
        notes.append("No eval_data or dataset: no accuracy, SQNR or agreement columns.")
    if measure_ours or measure_litert:
        src = "random inputs" if random_only else "the first evaluation sample"
        what = []
        if measure_ours:
            what.append("our interpreter (1 BLAS thread)")
        if measure_litert:
            import importlib.metadata as md

            what.append(f"LiteRT {md.version('ai-edge-litert')} (default op resolver with its "
                        f"default XNNPACK delegate, 1 thread, in a child process)")
        notes.append(f"Measured: median of {runs} invokes after one warm-up on {src}, in "
                     + " and ".join(what) + " on this machine.")
    elif measure is True and not have_litert:
        notes.append("LiteRT (ai-edge-litert) is not installed: no LiteRT column.")
    if pairs:
        notes.append("est_* columns are wb.estimate's model-based estimates (with low/high "
                     "range), not measurements.")
    return CompareResult(df=df, models=built, estimates=estimates, metric_name=metric_name,
                         engine=engine, notes=notes)


def _estimate(m: Model, device: str, delegate: str, threads: int | None):
    from workbench.delegates.estimate import estimate

    return estimate(m, device=device, delegate=delegate, threads=threads)


def _agreement(ref: list[np.ndarray], outs: list[np.ndarray]) -> dict[str, float]:
    sig = noise = 0.0
    agree = rows = 0
    for r, c in zip(ref, outs):
        if r.size != c.size:
            raise InputError(f"output shapes differ from the float model's: {list(c.shape)} "
                             f"vs {list(r.shape)}")
        c = c.reshape(r.shape)
        sig += float(np.sum(r * r))
        noise += float(np.sum((c - r) ** 2))
        if r.ndim == 2 and r.shape[1] > 1:
            agree += int(np.sum(np.argmax(r, 1) == np.argmax(c, 1)))
            rows += r.shape[0]
    if len(ref) != len(outs):
        raise InputError(f"{len(outs)} outputs, the float model has {len(ref)}")
    return {"output_sqnr_db": _sqnr(sig, noise),
            "top1_agreement": agree / rows if rows else float("nan")}


__all__ = ["DEFAULT_MODES", "CompareResult", "compare"]
