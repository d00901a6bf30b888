"""Op-support rules of TFLite's delegates, one module per delegate.

Each module has ``OPTIONS`` (rule options and their defaults), ``DEFAULTS`` (partitioning
defaults as TFLite's delegate options set them) and ``check(view, options) -> Verdict`` for one
op. :func:`check_op` and :func:`check_subgraph` are the entry points; the partitioner
(:mod:`workbench.delegates.partition`) turns verdicts into partitions.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import InputError
from workbench.ir.graph import Model

from ._common import DYNAMIC, OpView, Verdict, build_views, no

__all__ = ["DELEGATES", "DelegateSpec", "Verdict", "check_op", "check_subgraph",
           "delegate_spec"]


@dataclass(frozen=True)
class DelegateSpec:
    """A delegate's identity, rule options and TFLite's partitioning defaults."""

    name: str
    title: str
    module: str
    #: ``min_nodes_per_partition`` default (GraphPartitionHelper): smaller partitions stay on CPU.
    min_nodes_per_partition: int = 1
    #: ``max_delegated_partitions`` default; None = unlimited.
    max_delegated_partitions: int | None = None
    #: Whether the delegate accepts graphs with dynamic-sized tensors.
    allows_dynamic_tensors: bool = False
    #: Which DEQUANTIZE(constant) outputs count as constants: "", "fp16" or "fp16+int8".
    fold_dequant: str = ""
    #: FP16GraphPartitionHelper (GPU, Core ML): DEQUANTIZE(fp16 const) nodes join the first
    #: partition when every consumer is in it.
    joins_fp16_dequant: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def check(self) -> Callable[[OpView, dict[str, Any]], Verdict]:
        return importlib.import_module(self.module).check


def _spec(name: str, title: str, **kw: Any) -> DelegateSpec:
    mod = importlib.import_module(f"{__name__}.{name}")
    return DelegateSpec(name=name, title=title, module=mod.__name__, options=dict(mod.OPTIONS),
                        **mod.DEFAULTS, **kw)


#: The delegates we model, by name.
DELEGATES: dict[str, DelegateSpec] = {
    s.name: s for s in (
        _spec("xnnpack", "XNNPACK (default CPU delegate)"),
        _spec("gpu", "GPU delegate (OpenCL / OpenGL ES / Metal)", joins_fp16_dequant=True),
        _spec("nnapi", "NNAPI delegate (Android)"),
        _spec("hexagon", "Hexagon DSP delegate"),
        _spec("coreml", "Core ML delegate (iOS)", joins_fp16_dequant=True),
        _spec("cpu", "CPU (built-in kernels, no delegate)"),
    )
}


def delegate_spec(delegate: str) -> DelegateSpec:
    """The :class:`DelegateSpec` of ``delegate`` (case-insensitive), or an InputError."""
    key = str(delegate).lower().strip()
    key = {"dsp": "hexagon", "xnnpack_delegate": "xnnpack", "none": "cpu"}.get(key, key)
    if key not in DELEGATES:
        raise InputError(f"unknown delegate {delegate!r}; choose one of "
                         f"{', '.join(sorted(DELEGATES))}")
    return DELEGATES[key]


def _options(spec: DelegateSpec, given: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise InputError(f"unknown option(s) {', '.join(unknown)} for the {spec.name} "
                         f"delegate; its options are: {allowed}")
    opts = dict(spec.options)
    opts.update(given)
    validate = getattr(importlib.import_module(spec.module), "validate", None)
    if validate is not None:
        validate(opts)
    return opts


def check_subgraph(model: Model, delegate: str, *, subgraph: int = 0,
                   **options: Any) -> tuple[list[Verdict], dict[str, Any]]:
    """A :class:`Verdict` per op of one subgraph, and the options used.

    Parameters
    ----------
    model
        The model.
    delegate
        A key of :data:`DELEGATES`.
    subgraph
        Subgraph index.
    **options
        The delegate's rule options (see ``DELEGATES[name].options``).
    """
    spec = delegate_spec(delegate)
    opts = _options(spec, options)
    if not 0 <= int(subgraph) < len(model.subgraphs):
        raise InputError(f"subgraph {subgraph} out of range: the model has "
                         f"{len(model.subgraphs)} subgraph(s)")
    views = build_views(model, int(subgraph), spec.fold_dequant)
    check = spec.check
    if not spec.allows_dynamic_tensors:
        # TFLite prepares the whole graph before applying a static-shape delegate and refuses
        # the delegate outright if any tensor is dynamic (Subgraph::ModifyGraphWithDelegate).
        dyn = [t for v in views for t in v.outputs if v.is_dynamic(t)]
        if dyn:
            reason = no(DYNAMIC.format(t=views[0].tensor_index(dyn[0])))
            return [reason] * len(views), opts
    verdicts = [check(v, opts) for v in views]
    finalize = getattr(importlib.import_module(spec.module), "finalize", None)
    if finalize is not None:
        finalize(views, verdicts, opts)
    return verdicts, opts


def check_op(model: Model, op_index: int, delegate: str, *, subgraph: int = 0,
             **options: Any) -> Verdict:
    """Whether ``delegate`` claims operator ``op_index`` of ``model``, and why not.

    Parameters
    ----------
    model
        The model (a :class:`~workbench.ir.graph.Model`).
    op_index
        Index of the operator in the subgraph's execution order.
    delegate
        ``"xnnpack"``, ``"gpu"``, ``"nnapi"``, ``"hexagon"``, ``"coreml"`` or ``"cpu"``.
    subgraph
        Subgraph index.
    **options
        Rule options of the delegate, e.g. ``android_api=28`` for NNAPI.

    Returns
    -------
    Verdict
        ``supported`` and, when not, a ``reason`` in TFLite's words.
    """
    verdicts, _ = check_subgraph(model, delegate, subgraph=subgraph, **options)
    n = len(verdicts)
    if isinstance(op_index, bool) or not isinstance(op_index, (int, np.integer)) or \
            not 0 <= op_index < n:
        raise InputError(f"op index {op_index!r} out of range: subgraph {subgraph} has {n} "
                         "operators")
    return verdicts[int(op_index)]

