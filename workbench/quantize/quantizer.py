"""Post-training quantization of any float ``.tflite`` model, as a transformation of the IR.

``quantize(model, mode=...)`` returns a new :class:`~workbench.ir.graph.Model`; the input is
never modified. Modes:

``int8``
    Full integer: int8 activations (asymmetric, per tensor), int8 weights (symmetric, per
    channel), int32 biases (scale = input scale x weight scale). Float or integer I/O.
``int16x8``
    int16 activations (symmetric, zero point 0), int8 weights, int64 biases.
``dynamic``
    Dynamic range: int8 weights for ops with hybrid kernels (CONV_2D, DEPTHWISE_CONV_2D,
    FULLY_CONNECTED, TRANSPOSE_CONV; GATHER tables followed by DEQUANTIZE); activations stay
    float and LiteRT quantizes them at run time.
``weight_only``
    int8 weights dequantized once at load by DEQUANTIZE ops; every kernel runs in float.
``float16``
    float16 constants, each feeding a DEQUANTIZE (as TensorFlow's converter writes them).

Ops that cannot be quantized (no integer kernel in LiteRT, a missing calibration range,
a denylist entry) stay float, with DEQUANTIZE before and QUANTIZE after them; the reason is
recorded in the report. The per-op facts live in :mod:`workbench.quantize.rules`; as a safety
net the result is prepared in our interpreter, whose kernels make LiteRT's Prepare checks, and
an op refused in its quantized form is redone in float. Values are rounded as TF's converter
rounds them, so the same float model and data give the same integer weights. What was
chosen for every tensor is in ``result.quantization_report`` (a :class:`QuantizationReport`,
whose ``.df`` lists tensor, role, dtype, scale, zero point, axis, range and calibration
method). The weight modes reach every subgraph (Keras RNNs become WHILE bodies); the integer
modes quantize the main subgraph and keep control-flow bodies float.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from workbench.errors import InputError, ModelError, UnsupportedOpError
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph, Tensor
from workbench.ir.ops import BuiltinOperator as B
from workbench.ir.ops import TensorType as T

from . import rules
from .rules import RULES, OpRule

log = logging.getLogger(__name__)

MODES = ("int8", "int16x8", "dynamic", "weight_only", "float16")

_INT_TYPES = {np.dtype(np.int8): T.INT8, np.dtype(np.uint8): T.UINT8,
              np.dtype(np.int16): T.INT16, np.dtype(np.float32): T.FLOAT32}
_QRANGE = {T.INT8: (-128, 127), T.UINT8: (0, 255), T.INT16: (-32767, 32767)}
_NP = {T.INT8: np.int8, T.UINT8: np.uint8, T.INT16: np.int16, T.INT32: np.int32,
       T.INT64: np.int64}


# ------------------------------------------------------------------------------------------
# The report
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class QuantizationReport:
    """What :func:`quantize` chose.

    Attributes
    ----------
    mode
        The quantization mode.
    df
        One row per quantized tensor: ``tensor``, ``role`` (activation / input / output /
        weight / bias / constant / requantized), ``dtype``, ``scale`` and ``zero_point``
        (first channel), ``axis`` (per-channel axis or None), ``channels``, ``min``/``max`` (the
        float range the parameters encode), ``method`` (calibration method or rule: ``same`` as
        input, ``fixed`` by the op, ``weights``).
    float_ops
        Ops left in float: ``subgraph`` and ``op_index`` (in the float model), ``op``,
        ``output``, ``reason``.
    stats
        The calibration statistics used (reusable as ``quantize(..., stats=...)``), or None.
    """

    mode: str
    df: Any
    float_ops: Any
    stats: Any = None

    def _repr_html_(self) -> str:
        from workbench.analysis._result import html_table, wrap

        return wrap(f"Quantization report ({self.mode})", html_table(self.df),
                    "<p>Ops kept in float</p>", html_table(self.float_ops))


class _Recorder:
    def __init__(self, mode: str):
        self.mode = mode
        self.rows: list[dict] = []
        self.float_rows: list[dict] = []

    def tensor(self, t: Tensor, role: str, method: str) -> None:
        q = t.quantization
        per_channel = q.scale.size > 1
        lo, hi = _encoded_range(t)
        self.rows.append({
            "tensor": t.name, "role": role, "dtype": t.type_name, "scale": float(q.scale[0]),
            "zero_point": int(q.zero_point[0]),
            "axis": int(q.quantized_dimension) if per_channel else None,
            "channels": int(q.scale.size), "min": lo, "max": hi, "method": method})

    def float_op(self, index: int, op: Operator, reason: str, subgraph: int = 0) -> None:
        out = next((t.name for t in op.outputs if t is not None), "")
        self.float_rows.append({"subgraph": subgraph, "op_index": index, "op": op.name,
                                "output": out, "reason": reason})
        log.info("op %d (%s) kept in float: %s", index, op.name, reason)

    def build(self, stats) -> QuantizationReport:
        import pandas as pd

        cols = ["tensor", "role", "dtype", "scale", "zero_point", "axis", "channels", "min",
                "max", "method"]
        return QuantizationReport(
            self.mode, pd.DataFrame(self.rows, columns=cols),
            pd.DataFrame(self.float_rows,
                         columns=["subgraph", "op_index", "op", "output", "reason"]),
            stats)


def _encoded_range(t: Tensor) -> tuple[float, float]:
    q = t.quantization
    if t.dtype not in _QRANGE:
        return float("nan"), float("nan")
    lo, hi = _QRANGE[int(t.dtype)]
    if t.dtype == T.INT8 and q.scale.size > 1:
        lo = -127
    s = q.scale.astype(np.float64)
    zp = q.zero_point.astype(np.float64)
    return float(np.min(s * (lo - zp))), float(np.max(s * (hi - zp)))


# ------------------------------------------------------------------------------------------
# Quantization arithmetic
# ------------------------------------------------------------------------------------------
#: Smallest activation scale written (2**-28): at smaller ones a fused RELU6's bound 6.0
#: quantizes beyond int32 and LiteRT refuses the op (``no_integer_overflow_from_quantization``;
#: TF's converter writes such files for near-dead channels). Only ranges below ~1e-4 (int16)
#: or ~1e-6 (int8) meet it.
MIN_ACTIVATION_SCALE = 2.0**-28


def params_from_range(lo: float, hi: float, dtype: int) -> QuantParams:
    """Per-tensor parameters for a float range: asymmetric for int8/uint8, symmetric
    (zero point 0, levels +-32767) for int16. The range is widened to include 0 so that zero
    (padding, ReLU) is exact; an empty range gets scale 1; scales stay at least
    :data:`MIN_ACTIVATION_SCALE`."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"calibration range [{lo}, {hi}] is not finite")
    if dtype == T.INT16:
        m = max(-lo, hi)
        scale = max(m / 32767, MIN_ACTIVATION_SCALE) if m > 0 else 1.0
        return QuantParams(scale=[scale], zero_point=[0])
    qmin, qmax = _QRANGE[dtype]
    if hi - lo <= 0:
        return QuantParams(scale=[1.0], zero_point=[qmin])
    scale = max((hi - lo) / (qmax - qmin), MIN_ACTIVATION_SCALE)
    zp = int(np.clip(_round(np.float64(qmin - lo / scale)), qmin, qmax))
    return QuantParams(scale=[scale], zero_point=[zp])


def quantize_array(x: np.ndarray, q: QuantParams, dtype: int) -> np.ndarray:
    """Round ``x`` to the integer grid of ``q`` (per-channel along its axis), saturating."""
    s = q.scale.astype(np.float64)
    zp = q.zero_point.astype(np.float64)
    if s.size > 1:
        shape = [1] * x.ndim
        shape[q.quantized_dimension] = s.size
        s, zp = s.reshape(shape), zp.reshape(shape)
    info = np.iinfo(_NP[dtype])
    lo = -127 if dtype == T.INT8 and q.scale.size > 1 else info.min
    # In float32 times the float32 inverse scale, as TF's converter computes: values near .5
    # round the same way as in its files (measured on its weights and biases).
    inv = np.float32(1.0) / s.astype(np.float32)
    v = _round((x.astype(np.float32) * inv).astype(np.float64)) + zp
    return np.clip(v, lo, info.max).astype(_NP[dtype])


def _round(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (``std::round``, as TF's converter rounds weights and biases;
    numpy's ``round`` goes to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def weight_params(w: np.ndarray, axis: int | None) -> QuantParams:
    """Symmetric int8 weight parameters (levels +-127), per channel along ``axis`` or per
    tensor when ``axis`` is None. An all-zero channel gets scale 1 (any positive scale
    encodes it exactly)."""
    w = np.asarray(w, dtype=np.float64)
    if axis is None:
        m = np.array([np.max(np.abs(w), initial=0.0)])
    else:
        m = np.max(np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)), axis=1,
                   initial=0.0)
    scale = np.where(m > 0, m / 127.0, 1.0)
    return QuantParams(scale=scale, zero_point=np.zeros(scale.size, np.int64),
                       quantized_dimension=0 if axis is None else axis)


# ------------------------------------------------------------------------------------------
# Graph building helpers
# ------------------------------------------------------------------------------------------
class _Builder:
    """Creates tensors with unique names and QUANTIZE/DEQUANTIZE ops for one subgraph."""

    def __init__(self, model: Model, sg: Subgraph):
        self.model, self.sg = model, sg
        self.names = {t.name for t in sg.tensors}
        self.versions: dict[int, int] = {}
        self.original: dict[int, str] = {}  # id(renamed float constant) -> its first name

    def name(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}{k}", k + 1
        self.names.add(name)
        return name

    def tensor(self, base: str, like: Tensor, dtype: int, q: QuantParams | None = None,
               data: np.ndarray | None = None) -> Tensor:
        t = self.sg.new_tensor(self.name(base), like.shape, dtype, data=data, quantization=q)
        t.shape_signature = like.shape_signature
        return t

    def replacement(self, old: Tensor, dtype: int, q: QuantParams | None,
                    data: np.ndarray) -> Tensor:
        """A constant replacing ``old`` under its name (weights keep their names); ``old``,
        dropped later unless a float op still reads it, is renamed ``<name>_float``."""
        name = self.original.get(id(old))
        if name is not None or not any(x is old for x in self.sg.tensors):
            return self.tensor(name or old.name, old, dtype, q, data)
        name = self.original[id(old)] = old.name
        old.name = self.name(f"{name}_float")
        t = self.sg.new_tensor(name, old.shape, dtype, data=data, quantization=q)
        t.shape_signature = old.shape_signature
        return t

    def op(self, code: int, inputs: list, outputs: list, options=None) -> Operator:
        return Operator(self.model.opcode(code), inputs=inputs, outputs=outputs,
                        options=options)


def _finish(model: Model, versions: dict[int, int]) -> None:
    """Drop unused tensors/buffers and give each op code the highest version its ops need
    (TFLite keeps one entry per op type, as the converter's UpdateOpVersion does)."""
    used_buffers: set[int] = set()
    # Constants with identical bytes share one buffer, as TF's converter writes them (biases
    # shared by several convs are split per op, then their equal buffers merged again).
    same: dict[bytes, Any] = {}
    for sg in model.subgraphs:
        sg.remove_unused_tensors()
        for t in sg.tensors:
            if t.buffer is not None and t.buffer.nbytes and not t.is_variable:
                t.buffer = same.setdefault(t.buffer.data.tobytes(), t.buffer)
        used_buffers.update(id(t.buffer) for t in sg.tensors if t.buffer is not None)
    used_buffers.update(id(m.buffer) for m in model.metadata)
    model.buffers = [b for b in model.buffers if id(b) in used_buffers]
    best: dict[tuple, int] = {}
    for _, _, op in model.iter_ops():
        key = (int(op.opcode.builtin_code), op.opcode.custom_code)
        v = max(op.opcode.version, versions.get(id(op), 1))
        best[key] = max(best.get(key, 1), v)
    codes: dict[tuple, Any] = {}
    model.operator_codes = []
    for _, _, op in model.iter_ops():
        key = (int(op.opcode.builtin_code), op.opcode.custom_code)
        if key not in codes:
            codes[key] = dataclasses.replace(op.opcode, version=best[key])
            model.operator_codes.append(codes[key])
        op.opcode = codes[key]


def _copy(model) -> Model:
    """A private, editable copy of the model (a path, bytes or a Model)."""
    from workbench import load
    from workbench.analysis._result import load_model

    return load(load_model(model).to_bytes())


def _denylist_matcher(sg: Subgraph, denylist) -> set[int]:
    """ids of the operators named by ``denylist`` (op type names, op indices, or output tensor
    names). An entry that names nothing is an error: a typo must not silently quantize."""
    out: set[int] = set()
    if denylist is None:
        return out
    if isinstance(denylist, (str, int)):
        denylist = [denylist]
    for entry in denylist:
        hit = False
        for i, op in enumerate(sg.operators):
            if isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
                match = i == int(entry)
            elif isinstance(entry, str):
                match = op.name == entry.upper() or any(
                    t is not None and t.name == entry for t in op.outputs)
            else:
                raise InputError(f"denylist entry {entry!r} is not an op type name, an op "
                                 "index or a tensor name")
            if match:
                out.add(id(op))
                hit = True
        if not hit:
            raise InputError(f"denylist entry {entry!r} matches no operator (op type, op index "
                             f"0..{len(sg.operators) - 1}, or an op's output tensor name)")
    return out


# ------------------------------------------------------------------------------------------
# Calibration
# ------------------------------------------------------------------------------------------
def _calibrate(model: Model, dataset, stats, calibration, options, progress):
    if stats is None:
        if dataset is None:
            raise InputError("this mode needs a representative_dataset (or stats= from "
                             "workbench.quantize.calibrate.collect) to calibrate activations")
        from .calibrate import collect

        stats = collect(model, dataset, progress=progress)
    return stats, stats.ranges(method=calibration, **(options or {}))


def _method_of(calibration, name: str) -> str:
    if isinstance(calibration, dict):
        m = calibration.get(name, "minmax")
        return str(m[0] if isinstance(m, tuple) else m)
    return str(calibration)


# ------------------------------------------------------------------------------------------
# Full integer (int8 / int16x8)
# ------------------------------------------------------------------------------------------
class _IntegerPass:
    def __init__(self, model: Model, act: int, ranges: dict, calibration, per_channel: bool,
                 deny: set[int], rec: _Recorder, forced: dict[tuple[int, int], str]):
        self.m, self.sg, self.act = model, model.main, act
        self.ranges, self.calibration = ranges, calibration
        self.per_channel, self.deny, self.rec = per_channel, deny, rec
        self.forced = forced  # (subgraph, op index) -> why it must stay float
        # id(quantized op) -> (subgraph, its index in the float model)
        self.changed: dict[int, tuple[int, int]] = {}
        self.b = _Builder(model, self.sg)
        self.qver: dict[int, Tensor] = {}   # id(float tensor) -> its quantized version
        self.fver: dict[int, Tensor] = {}   # id(tensor quantized in place) -> float version
        self.converted: set[int] = set()    # tensors whose type we changed in place
        self.new_ops: list[Operator] = []
        self.requant: dict[tuple, Tensor] = {}
        self.consts: dict[tuple, Tensor] = {}

    # -- deciding --------------------------------------------------------------------------
    def has_range(self, t: Tensor) -> bool:
        return t.name in self.ranges and all(np.isfinite(self.ranges[t.name]))

    def why_float(self, op: Operator, produced_q: set[int]) -> str | None:
        rule = RULES.get(op.code)
        if id(op) in self.deny:
            return "denylisted"
        if rule is None:
            return "no integer kernel in LiteRT (or not supported by this quantizer)"
        if self.act == T.INT16 and not rule.int16:
            return "LiteRT has no 16x8 kernel for this op"
        acts = rules.acts_of(rule, op)
        for i, t in enumerate(op.inputs):
            if t is None:
                continue
            if t.is_constant and t.sparsity is not None:
                return f"input {i} is a sparse constant"
            if i in acts:
                if t.dtype != T.FLOAT32:
                    return f"input {i} is {t.type_name}, not float32"
                if not t.is_constant and id(t) not in produced_q and not self.has_range(t):
                    return f"no calibration range for input {t.name!r}"
            elif i in rule.weights:
                if not _float_constant(t):
                    return f"weights (input {i}) are not a float32 constant"
            elif i == rule.bias:
                if not _float_constant(t):
                    return f"bias (input {i}) is not a float32 constant"
            elif t.dtype == T.FLOAT32:
                return f"float input {i} has no quantized form in this op"
        if any(op.inputs[i] is None for i in acts if i < len(op.inputs)) or \
                any(i >= len(op.inputs) for i in acts):
            return "an activation input is missing"
        for t in op.outputs:
            if t is None or t.dtype != T.FLOAT32:
                return "an output is not float32"
            if self.output_rule(op, rule) in ("calibrated", "same_inputs") and \
                    not self.has_range(t):
                return f"no calibration range for output {t.name!r}"
        return None

    def output_rule(self, op: Operator, rule: OpRule) -> str:
        return rule.output

    def share_ranges(self, ops: list[Operator], qops: set[int]) -> None:
        """Give the calibrated producers of a same-scale op's inputs the op's output range, so
        that no requantizing QUANTIZE is needed (TF's converter does the same)."""
        producers, consumers = self.sg.producers(), self.sg.consumers()
        outputs = {id(t) for t in self.sg.outputs}
        for op in reversed(ops):
            rule = RULES.get(op.code)
            if id(op) not in qops or rule.output != "same_inputs":
                continue
            out = self.ranges[op.outputs[0].name]
            for i in rules.acts_of(rule, op):
                t = op.inputs[i]
                p = producers.get(id(t))
                if p is None or id(p) not in qops or t.is_constant or id(t) in outputs or \
                        RULES[p.code].output != "calibrated" or len(p.outputs) != 1 or \
                        len(consumers.get(id(t), [])) != 1:
                    continue
                self.ranges[t.name] = out

    # -- tensor versions -------------------------------------------------------------------
    def emit(self, op: Operator) -> Operator:
        self.new_ops.append(op)
        self.b.versions[id(op)] = rules.op_version(op)
        return op

    def act_params(self, t: Tensor) -> QuantParams:
        lo, hi = self.ranges[t.name]
        return params_from_range(lo, hi, self.act)

    def get_q(self, t: Tensor, want: QuantParams | None = None,
              like: QuantParams | None = None) -> Tensor:
        """The quantized (activation-type) version of ``t``, requantized to ``want``; an
        all-zero constant takes the parameters ``like`` (of another input of its op), so an
        arbitrary scale of its own cannot upset the op's multipliers."""
        if t.is_constant:
            data = np.asarray(t.data, np.float64)
            if want is None and not np.any(data) and like is not None:
                want = like  # all zeros: any scale is exact; take a neighbour's
            key = (id(t), None if want is None else (float(want.scale[0]),
                                                     int(want.zero_point[0])))
            if key not in self.consts:
                q = want or params_from_range(np.min(data, initial=0), np.max(data, initial=0),
                                              self.act)
                c = self.b.replacement(t, self.act, q, quantize_array(data, q, self.act))
                self.rec.tensor(c, "constant", "minmax of the constant")
                self.consts[key] = c
            return self.consts[key]
        if id(t) in self.qver:
            q = self.qver[id(t)]
        else:
            q = self.b.tensor(f"{t.name}_{'int16' if self.act == T.INT16 else 'int8'}", t,
                              self.act, self.act_params(t))
            self.emit(self.b.op(B.QUANTIZE, [t], [q]))
            self.rec.tensor(q, "activation", _method_of(self.calibration, t.name))
            self.qver[id(t)] = q
        if want is None or _same_params(q.quantization, want):
            return q
        key = (id(q), float(want.scale[0]), int(want.zero_point[0]))
        if key not in self.requant:
            r = self.b.tensor(f"{q.name}_requantized", q, self.act, want)
            self.emit(self.b.op(B.QUANTIZE, [q], [r]))
            self.rec.tensor(r, "requantized", "same as the consumer's output")
            self.requant[key] = r
        return self.requant[key]

    def get_f(self, t: Tensor) -> Tensor:
        """The float version of ``t`` (a DEQUANTIZE of it if we made it integer)."""
        if id(t) not in self.converted:
            return t
        if id(t) not in self.fver:
            f = self.b.tensor(f"{t.name}_dequantized", t, T.FLOAT32)
            self.emit(self.b.op(B.DEQUANTIZE, [t], [f]))
            self.fver[id(t)] = f
        return self.fver[id(t)]

    def convert(self, t: Tensor, q: QuantParams, dtype: int | None = None) -> None:
        t.dtype = self.act if dtype is None else dtype
        t.quantization = q
        if t.buffer is not None and t.buffer.nbytes == 0:
            t.buffer = None
        self.converted.add(id(t))

    # -- the pass --------------------------------------------------------------------------
    def run(self, in_type: int, out_type: int) -> None:
        sg = self.sg
        old_ops = list(sg.operators)
        # Which ops run in integer: decided in order, since an op's input range may come from
        # the rule of its (quantized) producer rather than from calibration.
        qops: set[int] = set()
        produced_q: set[int] = set()
        for idx, op in enumerate(old_ops):
            floats = [t for t in [*op.inputs, *op.outputs]
                      if t is not None and t.dtype == T.FLOAT32]
            if not floats:
                continue  # an integer/bool op (shapes, indices): nothing to quantize
            reason = self.forced.get((0, idx)) or self.why_float(op, produced_q)
            if reason is None:
                qops.add(id(op))
                self.changed[id(op)] = (0, idx)
                produced_q.update(id(t) for t in op.outputs)
            else:
                self.rec.float_op(idx, op, reason)
        self.ranges = dict(self.ranges)
        self.share_ranges(old_ops, qops)
        self.inputs(in_type, qops)
        for op in old_ops:
            if id(op) in qops:
                self.quantize_op(op)
            else:
                op.inputs = [None if t is None else self.get_f(t) for t in op.inputs]
                self.emit(op)
                self.b.versions[id(op)] = op.opcode.version
        self.outputs(out_type)
        sg.operators = self.new_ops
        for o in self.new_ops:
            for t in [*o.inputs, *o.outputs]:
                if t is not None:
                    sg.add_tensor(t)

    def inputs(self, in_type: int, qops: set[int]) -> None:
        consumers = self.sg.consumers()
        for t in self.sg.inputs:
            if t.dtype != T.FLOAT32 or in_type == T.FLOAT32 or not self.has_range(t):
                continue
            if not any(id(o) in qops for o in consumers.get(id(t), [])):
                continue
            q = self.act_params(t)
            if in_type == self.act:
                self.convert(t, q)
                self.qver[id(t)] = t
                self.rec.tensor(t, "input", _method_of(self.calibration, t.name))
            else:  # uint8 I/O of an int8 model: same scale, zero point shifted by 128
                self.convert(t, QuantParams(scale=q.scale, zero_point=q.zero_point + 128),
                             in_type)
                qi = self.b.tensor(f"{t.name}_int8", t, self.act, q)
                self.emit(self.b.op(B.QUANTIZE, [t], [qi]))
                self.qver[id(t)] = qi
                self.rec.tensor(t, "input", _method_of(self.calibration, t.name))

    def outputs(self, out_type: int) -> None:
        sg = self.sg
        for k, t in enumerate(list(sg.outputs)):
            if id(t) in self.converted and out_type == T.FLOAT32:
                new = self.get_f(t)
            elif id(t) in self.converted and out_type != t.dtype and t.dtype == self.act:
                new = self.retype(t, t.quantization, out_type)  # uint8 output
            elif id(t) not in self.converted and out_type != T.FLOAT32 and \
                    t.dtype == T.FLOAT32 and self.has_range(t):
                new = self.retype(t, self.act_params(t), out_type)
            else:
                continue
            # The user-facing output keeps the original name; the internal tensor is renamed.
            name = t.name
            t.name = self.b.name(f"{name}_{t.type_name.lower()}")
            new.name = name
            sg.outputs[k] = new
            for sd in self.m.signature_defs:
                if sd.subgraph is sg:
                    sd.outputs = {n: (new if x is t else x) for n, x in sd.outputs.items()}

    def retype(self, t: Tensor, q: QuantParams, dtype: int) -> Tensor:
        """A QUANTIZE of ``t`` into ``dtype`` encoding the range of ``q`` (uint8 shifts the
        zero point by 128)."""
        zp = q.zero_point + 128 if dtype == T.UINT8 and t.dtype != T.UINT8 else q.zero_point
        new = self.b.tensor(f"{t.name}_out", t, dtype, QuantParams(scale=q.scale.copy(),
                                                                   zero_point=zp))
        self.emit(self.b.op(B.QUANTIZE, [t], [new]))
        self.rec.tensor(new, "output", "same as the model output")
        return new

    def quantize_op(self, op: Operator) -> None:
        rule = RULES[op.code]
        acts = rules.acts_of(rule, op)
        orule = self.output_rule(op, rule)
        ins = list(op.inputs)
        out_q: QuantParams | None = None
        if orule == "same_inputs":
            out_q = self.act_params(op.outputs[0])
            for i in acts:
                ins[i] = self.get_q(ins[i], out_q)
        else:
            for i in sorted(acts, key=lambda i: ins[i].is_constant):  # constants last
                others = [ins[j] for j in acts if j != i and ins[j] is not None and
                          ins[j].quantization is not None and ins[j].dtype == self.act]
                ins[i] = self.get_q(ins[i], like=others[0].quantization if others else None)
        s_in = float(ins[acts[0]].quantization.scale[0])
        for i, axis in rule.weights.items():
            w = np.asarray(ins[i].data, np.float64)
            q = weight_params(w, axis if self.per_channel else None)
            wt = self.b.replacement(ins[i], T.INT8, q, quantize_array(w, q, T.INT8))
            self.rec.tensor(wt, "weight", "symmetric absmax" +
                            (" per channel" if q.scale.size > 1 else ""))
            bi = rule.bias
            if bi is not None and bi < len(ins) and ins[bi] is not None:
                bt = ins[bi]
                # float32 product, as LiteRT compares it with s_in * s_w in float
                bs = (np.float32(s_in) * q.scale.astype(np.float32)).astype(np.float64)
                nb = int(np.asarray(bt.data).size)
                if bs.size == 1 and nb > 1:
                    bs = np.full(nb, bs[0])
                bq = QuantParams(scale=bs, zero_point=np.zeros(bs.size, np.int64),
                                 quantized_dimension=0)
                btype = T.INT64 if self.act == T.INT16 else T.INT32
                inv = np.float32(1.0) / bs.astype(np.float32)
                data = (np.asarray(bt.data, np.float32).reshape(-1) * inv).astype(np.float64)
                lim = np.iinfo(_NP[btype])
                bias = np.clip(_round(data), lim.min, lim.max).astype(_NP[btype])
                ins[bi] = self.b.replacement(bt, btype, bq, bias.reshape(bt.shape))
                self.rec.tensor(ins[bi], "bias", "input scale x weight scale")
            ins[i] = wt
        if orule == "calibrated":
            for t in op.outputs:
                self.convert(t, self.act_params(t))
                self.rec.tensor(t, "activation", _method_of(self.calibration, t.name))
        elif orule == "same":
            src = ins[acts[0]].quantization
            for t in op.outputs:
                self.convert(t, QuantParams(scale=src.scale.copy(),
                                            zero_point=src.zero_point.copy()))
                self.rec.tensor(t, "activation", "same as input")
        elif orule == "fixed":
            s, zp = rule.fixed[self.act]
            for t in op.outputs:
                self.convert(t, QuantParams(scale=[s], zero_point=[zp]))
                self.rec.tensor(t, "activation", "fixed by the op")
        else:
            for t in op.outputs:
                self.convert(t, QuantParams(scale=out_q.scale.copy(),
                                            zero_point=out_q.zero_point.copy()))
                self.rec.tensor(t, "activation", _method_of(self.calibration, t.name))
        for t in op.outputs:
            self.qver[id(t)] = t
        op.inputs = ins
        if self.act == T.INT16 and op.code in (B.ADD, B.SUB):
            # pot_scale_int16 (the default) would demand power-of-two scales
            op.options = dataclasses.replace(op.options, pot_scale_int16=False)
        if self.act == T.INT16 and hasattr(op.options, "quantized_bias_type"):
            # Declared as TF's converter does: LiteRT's 16x8 FULLY_CONNECTED rounds differently
            # without it (measured: one step off on some elements against our interpreter).
            op.options = dataclasses.replace(op.options, quantized_bias_type=T.INT64)
        limit = rules.multiplier_limit(op)
        if limit is not None:
            raise _Refused(self.changed[id(op)], limit)
        self.emit(op)
        self.b.versions[id(op)] = max(op.opcode.version, rules.op_version(op))


class _Refused(Exception):
    """An op found unfit for its quantized form mid-pass: redo the pass with it in float."""

    def __init__(self, key: tuple[int, int], reason: str):
        super().__init__(reason)
        self.key, self.reason = key, reason


def _float_constant(t: Tensor) -> bool:
    """A dense float32 constant (sparse ones hold their non-zeros only: left as they are)."""
    return t.is_constant and t.dtype == T.FLOAT32 and t.sparsity is None


def _fits_float16(x: np.ndarray) -> bool:
    """Whether every finite value stays finite in float16 (a clip bound of 3e38 would become
    inf, and inf * 0 is nan): such constants stay float32."""
    finite = np.asarray(x)[np.isfinite(x)]
    return not finite.size or float(np.max(np.abs(finite))) <= float(np.finfo(np.float16).max)


def _same_params(a: QuantParams, b: QuantParams) -> bool:
    return np.float32(a.scale[0]) == np.float32(b.scale[0]) and \
        int(a.zero_point[0]) == int(b.zero_point[0])


# ------------------------------------------------------------------------------------------
# Weight modes
# ------------------------------------------------------------------------------------------
def _dynamic(m: Model, per_channel: bool, weight_only: bool, min_elements: int,
             deny: set[int], rec: _Recorder, forced: dict[tuple[int, int], str]
             ) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    """int8 weights in every subgraph (Keras RNNs become WHILE bodies whose FULLY_CONNECTED
    ops hold the weights, as TF's converter quantizes them too)."""
    versions: dict[int, int] = {}
    changed: dict[int, tuple[int, int]] = {}
    for si, sg in enumerate(m.subgraphs):
        v, c = _dynamic_subgraph(m, si, per_channel, weight_only, min_elements,
                                 deny if si == 0 else set(), rec, forced)
        versions.update(v)
        changed.update(c)
    return versions, changed


def _dynamic_subgraph(m: Model, si: int, per_channel: bool, weight_only: bool,
                      min_elements: int, deny: set[int], rec: _Recorder,
                      forced: dict[tuple[int, int], str]
                      ) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    sg = m.subgraphs[si]
    b = _Builder(m, sg)
    table = rules.WEIGHT_OPS if weight_only else {**rules.HYBRID, B.GATHER: (0, -1)}
    done: dict[int, Tensor] = {}
    new_ops: list[Operator] = []
    changed: dict[int, tuple[int, int]] = {}
    for idx, op in enumerate(sg.operators):
        spec = table.get(op.code)
        w = op.inputs[spec[0]] if spec and spec[0] < len(op.inputs) else None
        if spec is None or w is None or not _float_constant(w):
            new_ops.append(op)
            continue
        if id(op) in deny or (si, idx) in forced:
            rec.float_op(idx, op, forced.get((si, idx), "denylisted"), si)
            new_ops.append(op)
            continue
        if w.num_elements < min_elements:
            rec.float_op(idx, op, f"weights have {w.num_elements} < {min_elements} elements",
                         si)
            new_ops.append(op)
            continue
        axis = spec[1] if per_channel and spec[1] >= 0 else None
        if op.code == B.DEPTHWISE_CONV_2D and not weight_only:
            # LiteRT's hybrid depthwise kernel reads one scale per channel whatever the
            # tensor holds (measured: per-tensor weights give zeros), so always per channel
            axis = spec[1]
        if id(w) not in done:
            data = np.asarray(w.data, np.float64)
            q = weight_params(data, axis)
            wq = b.replacement(w, T.INT8, q, quantize_array(data, q, T.INT8))
            rec.tensor(wq, "weight", "symmetric absmax" + (" per channel" if axis is not None
                                                           else ""))
            if weight_only:
                wf = b.tensor(f"{b.original.get(id(w), w.name)}_dequantized", w, T.FLOAT32)
                deq = b.op(B.DEQUANTIZE, [wq], [wf])
                new_ops.insert(0, deq)
                b.versions[id(deq)] = rules.op_version(deq)
                wq = wf
            done[id(w)] = wq
        ins = list(op.inputs)
        ins[spec[0]] = done[id(w)]
        op.inputs = ins
        changed[id(op)] = (si, idx)
        if not weight_only and op.code == B.GATHER:
            # A hybrid gather returns int8 rows; a DEQUANTIZE turns them back into floats.
            out = op.outputs[0]
            qo = b.tensor(f"{out.name}_int8", out, T.INT8, ins[0].quantization)
            op.outputs = [qo]
            new_ops.append(op)
            deq = b.op(B.DEQUANTIZE, [qo], [out])
            new_ops.append(deq)
            b.versions[id(deq)] = rules.op_version(deq)
        else:
            if not weight_only and op.code == B.FULLY_CONNECTED:
                # LiteRT's newer hybrid scheme: activations quantized with a zero point
                op.options = dataclasses.replace(op.options, asymmetric_quantize_inputs=True)
            new_ops.append(op)
        b.versions[id(op)] = max(op.opcode.version, rules.op_version(op))
    sg.operators = new_ops
    for o in new_ops:
        for t in [*o.inputs, *o.outputs]:
            if t is not None:
                sg.add_tensor(t)
    return b.versions, changed


def _float16(m: Model, deny: set[int], rec: _Recorder) -> dict[int, int]:
    versions: dict[int, int] = {}
    for si, sg in enumerate(m.subgraphs):
        b = _Builder(m, sg)
        done: dict[int, Tensor] = {}
        head: list[Operator] = []
        for idx, op in enumerate(sg.operators):
            if si == 0 and id(op) in deny:
                rec.float_op(idx, op, "denylisted")
                continue
            ins = list(op.inputs)
            for i, t in enumerate(ins):
                if t is None or not _float_constant(t):
                    continue
                if id(t) not in done and not _fits_float16(t.data):
                    log.info("constant %r kept in float32: outside float16's range", t.name)
                    done[id(t)] = t
                if id(t) not in done:
                    h = b.replacement(t, T.FLOAT16, None,
                                      np.asarray(t.data, np.float32).astype(np.float16))
                    f = b.tensor(f"{t.name}_dequantized", t, T.FLOAT32)
                    deq = b.op(B.DEQUANTIZE, [h], [f])
                    versions[id(deq)] = rules.op_version(deq)
                    head.append(deq)
                    rec.rows.append({"tensor": h.name, "role": "weight", "dtype": "FLOAT16",
                                     "scale": None, "zero_point": None, "axis": None,
                                     "channels": None, "min": float(np.min(t.data)),
                                     "max": float(np.max(t.data)), "method": "float16"})
                    done[id(t)] = f
                ins[i] = done[id(t)]
            op.inputs = ins
        sg.operators = head + sg.operators
        for o in head:
            for t in [*o.inputs, *o.outputs]:
                sg.add_tensor(t)
    return versions


# ------------------------------------------------------------------------------------------
# Public entry point
# ------------------------------------------------------------------------------------------
def _refused_op(m: Model, changed: dict[int, tuple[int, int]]
                ) -> tuple[tuple[int, int], str] | None:
    """(subgraph, index in the float model) of a quantized op our interpreter refuses to
    prepare, and why; None if everything prepares (or the refusal is not about an op we
    changed, e.g. a custom float op without a kernel here: nothing to verify or fix then)."""
    from workbench.interpreter import Interpreter

    try:
        Interpreter(m).allocate_tensors()
    except (UnsupportedOpError, ModelError) as e:
        found = re.search(r"subgraphs\[(\d+)\]\.operators\[(\d+)\]", str(e))
        si, k = (int(found.group(1)), int(found.group(2))) if found else (-1, -1)
        if 0 <= si < len(m.subgraphs) and k < len(m.subgraphs[si].operators):
            op = m.subgraphs[si].operators[k]
            if id(op) in changed:
                return changed[id(op)], f"refused quantized by LiteRT's rules: {e}"
        log.warning("quantized model could not be verified: %s", e)
    return None


def _io_type(value, name: str, allowed: Iterable[int]) -> int:
    try:
        t = _INT_TYPES[np.dtype(value)]
    except (TypeError, KeyError):
        t = None
    if t is None or t not in allowed:
        names = ", ".join(np.dtype(_NP.get(a, np.float32)).name for a in allowed)
        raise InputError(f"{name}={value!r} is not supported here; use one of: {names}")
    return t


def quantize(model: Model | str | os.PathLike | bytes, mode: str = "int8",
             representative_dataset: Any = None, *, calibration: str | dict = "minmax",
             calibration_options: dict | None = None, per_channel: bool = True,
             inference_input_type: Any = np.float32, inference_output_type: Any = np.float32,
             denylist: Iterable[str | int] | str | int | None = None,
             weight_only: bool = False, stats: Any = None, progress: bool = True,
             min_weight_elements: int = 1024) -> Model:
    """Quantize a float model; returns a new :class:`~workbench.ir.graph.Model`.

    Parameters
    ----------
    model
        A float ``.tflite`` model: a :class:`Model`, a path or bytes. It is never modified.
    mode
        ``"int8"``, ``"int16x8"``, ``"dynamic"``, ``"weight_only"`` or ``"float16"`` (see the
        module docstring).
    representative_dataset
        Calibration data for ``int8``/``int16x8``, as TensorFlow's converter takes it: a callable
        returning an iterable, or an iterable, of samples (a list of arrays in input order, a
        dict by input name, or one array).
    calibration
        Range method (``"minmax"``, ``"moving_average"``, ``"percentile"``, ``"mse"``,
        ``"kl"``), or a dict ``{tensor name: method or (method, options)}``; tensors it leaves
        out use minmax.
    calibration_options
        Keyword options of the range method (e.g. ``{"percentile": 99.99}``).
    per_channel
        Per-channel weight scales (axis 0 for CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV; axis 3
        for DEPTHWISE_CONV_2D). False: one scale per weight tensor.
    inference_input_type, inference_output_type
        Type of the model's float inputs/outputs after full-integer quantization:
        ``np.float32`` (QUANTIZE/DEQUANTIZE inside the model, the default), the activation
        type (``np.int8`` or ``np.int16``) or, for int8, ``np.uint8``.
    denylist
        Ops to keep in float: op type names (``"SOFTMAX"``), op indices, or op output tensor
        names. An entry matching nothing raises :class:`InputError`.
    weight_only
        With ``mode="dynamic"``: DEQUANTIZE the int8 weights at load instead of running hybrid
        kernels (same as ``mode="weight_only"``).
    stats
        Precomputed calibration statistics (``workbench.quantize.calibrate.collect``), reused
        instead of running the dataset again.
    progress
        Show a progress bar while calibrating.
    min_weight_elements
        Dynamic/weight-only modes leave smaller weight tensors in float (TensorFlow's
        converter uses 1024).

    Returns
    -------
    Model
        The quantized model, verified (it is re-read from the bytes it serializes to), with
        ``quantization_report``: a :class:`QuantizationReport`.
    """
    if mode not in MODES:
        raise InputError(f"unknown quantization mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "dynamic" and weight_only:
        mode = "weight_only"
    from workbench.analysis._result import load_model

    src = load_model(model)
    if not any(t.dtype == T.FLOAT32 for t in src.main.tensors):
        raise InputError("the model has no float32 tensors to quantize (is it quantized "
                         "already?); quantize the float model")
    used_stats, ranges = None, {}
    if mode in ("int8", "int16x8"):
        act = T.INT8 if mode == "int8" else T.INT16
        io_allowed = (T.FLOAT32, T.INT8, T.UINT8) if act == T.INT8 else (T.FLOAT32, T.INT16)
        in_type = _io_type(inference_input_type, "inference_input_type", io_allowed)
        out_type = _io_type(inference_output_type, "inference_output_type", io_allowed)
        _denylist_matcher(src.main, denylist)  # a bad entry fails before calibrating
        opts = dict(calibration_options or {})
        if act == T.INT16:  # the grid the range methods optimize for: symmetric int16
            opts = {"num_bits": 16, "symmetric": True, **opts}
        used_stats, ranges = _calibrate(src, representative_dataset, stats, calibration,
                                        opts, progress)
    # Each quantized op is checked by preparing the result in our interpreter, whose kernels
    # make LiteRT's Prepare checks: an op refused in its quantized form is redone in float,
    # so an unforeseen combination never yields a file LiteRT rejects.
    forced: dict[tuple[int, int], str] = {}
    while True:
        m = _copy(src)
        deny = _denylist_matcher(m.main, denylist)
        rec = _Recorder(mode)
        if mode in ("int8", "int16x8"):
            p = _IntegerPass(m, act, ranges, calibration, per_channel, deny, rec, forced)
            try:
                p.run(in_type, out_type)
            except _Refused as e:
                forced[e.key] = e.reason
                continue
            versions, changed = p.b.versions, p.changed
        elif mode in ("dynamic", "weight_only"):
            versions, changed = _dynamic(m, per_channel, mode == "weight_only",
                                         min_weight_elements, deny, rec, forced)
        else:
            versions, changed = _float16(m, deny, rec), {}
        _finish(m, versions)
        refused = _refused_op(m, changed) if changed else None
        if refused is None or refused[0] in forced:
            break
        forced[refused[0]] = refused[1]
    from workbench import load

    out = load(m.to_bytes())
    out.quantization_report = rec.build(used_stats)
    return out
