"""Automatic mixed precision: keep the most damaging layers in float until a metric is met.

:func:`auto_mixed_precision` quantizes the float model (calibrating once), measures the user's
metric, and while the target is not met: ranks the quantized layers by the damage they do
(:func:`workbench.diff`'s ``sqnr_drop``, the SQNR a layer loses relative to its inputs, so the
culprit is blamed rather than the layers downstream that inherit its error), adds the worst
``step`` of them to the quantizer's denylist (they run in float between DEQUANTIZE/QUANTIZE),
re-quantizes and measures again. The diff is recomputed after every step, since keeping one
layer in float changes the errors of all layers after it. The result reports every step: what
was kept, the metric, and whether the target was met.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import InputError
from workbench.ir.graph import Model

log = logging.getLogger(__name__)

#: ``metric_fn`` names computed by :func:`workbench.diff` on the dataset (float vs quantized).
DIFF_METRICS = ("output_sqnr_db", "top1_agreement")


@dataclass
class MixedPrecisionResult:
    """What :func:`auto_mixed_precision` did.

    Attributes
    ----------
    model
        The last quantized model (the first one meeting the target, or the last tried).
    kept_float
        Output tensor names (of the float model) of the layers kept in float, in the order they
        were added.
    met
        Whether the target was met.
    metric
        The metric of ``model``.
    df
        One row per step: ``step``, ``float_layers`` (count), ``added`` (names added at this
        step), ``metric``, ``met``, ``size`` (bytes of the quantized file).
    """

    model: Model
    kept_float: list[str]
    met: bool
    metric: float
    target: float
    df: Any = None
    history: list[dict] = field(default_factory=list)

    def _repr_html_(self) -> str:
        from workbench.analysis import _result as R

        head = R.kv_table([("target", self.target), ("met", self.met), ("metric", self.metric),
                           ("layers kept in float", len(self.kept_float))])
        return R.wrap("auto mixed precision", head, R.html_table(self.df, max_rows=40))


def _strip_suffix(name: str, float_names: set[str]) -> str | None:
    """The float model's name of a quantized model's tensor (the quantizer may add a type
    suffix such as ``_int8`` to a renamed output); None when it has none."""
    if name in float_names:
        return name
    base = re.sub(r"_(u?int(8|16)|float32)\d*$", "", name)
    return base if base in float_names else None


def _materialize(dataset) -> list:
    if callable(dataset):
        dataset = dataset()
    if isinstance(dataset, np.ndarray):
        return [dataset[i:i + 1] for i in range(dataset.shape[0])]
    try:
        out = list(dataset)
    except TypeError:
        raise InputError(f"dataset must be an iterable of samples or a callable returning one, "
                         f"got {type(dataset).__name__}") from None
    if not out:
        raise InputError("the dataset yielded no samples")
    return out


def auto_mixed_precision(model, dataset, target_metric: float, *,
                         metric_fn: Callable[[Model], float] | str = "output_sqnr_db",
                         higher_is_better: bool = True, mode: str = "int8",
                         calibration: str | dict = "minmax",
                         calibration_options: dict | None = None, step: int = 1,
                         grow: bool = False, max_float_layers: int | None = None,
                         diff_samples: int = 16, progress: bool = True,
                         **quantize_options) -> MixedPrecisionResult:
    """Quantize ``model`` keeping the most damaging layers in float until a metric is met.

    Parameters
    ----------
    model
        The float model (:class:`Model`, path or bytes).
    dataset
        Representative samples (as :func:`workbench.quantize` takes them): calibration, and the
        layer ranking by :func:`workbench.diff` (its first ``diff_samples``).
    target_metric
        The value to reach: ``metric >= target`` (``<=`` when ``higher_is_better=False``).
    metric_fn
        ``metric_fn(quantized_model) -> float``, e.g. the accuracy on your labelled data; or
        the name of a :func:`workbench.diff` summary figure computed on the ``diff_samples``:
        ``"output_sqnr_db"`` (default) or ``"top1_agreement"`` (fraction of samples whose
        argmax agrees with the float model's).
    higher_is_better
        Direction of the metric.
    mode, calibration, calibration_options, **quantize_options
        Passed to :func:`workbench.quantize` (``mode`` ``"int8"`` or ``"int16x8"``).
    step, grow
        Layers kept in float per step; with ``grow`` the group doubles every step (1, 2, 4,
        ...), for large models.
    max_float_layers
        Stop after keeping this many layers in float (default: no limit).
    diff_samples
        Samples used to rank the layers (and for the diff metrics).
    progress
        Show progress while calibrating.

    Returns
    -------
    MixedPrecisionResult
        The model, the layers kept in float, whether the target was met and a per-step table.
        When the target cannot be met (every quantized layer ranked is in float, or the limit
        is reached) ``met`` is False and the last model is returned.
    """
    from workbench.analysis._result import load_model
    from workbench.analysis.diff import diff

    from .calibrate import collect
    from .quantizer import quantize

    if mode not in ("int8", "int16x8"):
        raise InputError(f"auto_mixed_precision needs a calibrated mode (int8, int16x8), got "
                         f"{mode!r}")
    if step < 1:
        raise InputError(f"step must be >= 1, got {step}")
    if isinstance(metric_fn, str):
        if metric_fn not in DIFF_METRICS:
            raise InputError(f"metric_fn {metric_fn!r} is not a diff metric {DIFF_METRICS}; "
                             f"pass a callable metric_fn(model) -> float")
    elif not callable(metric_fn):
        raise InputError("metric_fn must be a callable or a diff metric name")
    if not math.isfinite(float(target_metric)):
        raise InputError(f"target_metric must be finite, got {target_metric}")
    fmodel = load_model(model)
    samples = _materialize(dataset)
    ranking = samples[:max(1, diff_samples)]
    stats = collect(fmodel, samples, progress=progress)
    float_names = {o.name for op in fmodel.main.operators for o in op.outputs if o is not None}

    def met(v: float) -> bool:
        return v >= target_metric if higher_is_better else v <= target_metric

    def build(deny: list[str]) -> Model:
        return quantize(fmodel, mode, None, calibration=calibration,
                        calibration_options=calibration_options, stats=stats,
                        denylist=list(deny) or None, progress=False, **quantize_options)

    def measure(q: Model):
        d = diff(fmodel, q, ranking)
        if isinstance(metric_fn, str):
            if metric_fn not in d.summary:
                raise InputError(f"diff has no {metric_fn!r} for this model (top1_agreement "
                                 f"needs rank-2 outputs)")
            return float(d.summary[metric_fn]), d
        return float(metric_fn(q)), d

    deny: list[str] = []
    history: list[dict] = []
    q = build(deny)
    value, d = measure(q)
    history.append({"step": 0, "float_layers": 0, "added": [], "metric": value,
                    "met": met(value), "size": len(q.to_bytes())})
    group = step
    while not met(value):
        if max_float_layers is not None and len(deny) >= max_float_layers:
            break
        ranked = [_strip_suffix(n, float_names) for n in d.suggest_denylist(k=len(d.df))]
        ranked = [n for n in ranked if n is not None and n not in deny]
        if not ranked:
            break
        n_add = group
        if max_float_layers is not None:
            n_add = min(n_add, max_float_layers - len(deny))
        added = ranked[:n_add]
        deny.extend(added)
        q = build(deny)
        value, d = measure(q)
        history.append({"step": len(history), "float_layers": len(deny), "added": added,
                        "metric": value, "met": met(value), "size": len(q.to_bytes())})
        log.info("auto_mixed_precision: %d layers in float, metric %.4g", len(deny), value)
        if grow:
            group *= 2
    import pandas as pd

    df = pd.DataFrame(history, columns=["step", "float_layers", "added", "metric", "met",
                                        "size"])
    return MixedPrecisionResult(model=q, kept_float=list(deny), met=met(value), metric=value,
                                target=float(target_metric), df=df, history=history)


__all__ = ["auto_mixed_precision", "MixedPrecisionResult"]

