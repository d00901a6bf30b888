"""The cost model: estimated latency of each op on a device's processor, plus partition costs.

Per op, on processor ``p`` running ``threads`` threads (a roofline with per-kind efficiency)::

    compute = MACs / (peak_p[dtype] * efficiency_p[kind] * speedup_p(threads))
    memory  = bytes moved / bandwidth_p(threads)
    op time = max(compute, memory) + dispatch_p

``bytes moved`` is the op's activation inputs + outputs + constant inputs (weights). The
``dtype`` is what the op computes in (``float32``, ``float16``, ``int8``, ``int16`` or
``hybrid``: float activations with 8-bit weights); a processor that has no peak for it runs it as
its ``dtype_map`` says (the GPU runs int8 models in float16, Core ML runs float32 in float16) or
else in float32. On a GPU, float32 runs as float16 unless ``precision="float32"`` (TFLite's
``allow_precision_loss``/``gpu_precision_loss_allowed``, on in its benchmark tool).
``speedup(n) = 1 + (min(n, cores) - 1) * thread_efficiency`` for a CPU, 1 elsewhere.

Each delegated partition adds ``launch_p`` (enqueue + synchronisation) and, for every tensor
crossing between the CPU and it, ``transfer_latency_p + bytes / transfer_gbps_p``.

Every number comes from a :class:`~workbench.delegates.profiles.DeviceProfile`; the fitted ones
say so in their ``provenance``. The result is an *estimate*: its range is the estimate times
the processor's ``uncertainty`` band (from the calibration residuals), never a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.analysis.summary import POOLS, REDUCTIONS, ZERO, op_macs
from workbench.delegates.profiles import KINDS, Processor
from workbench.errors import InputError
from workbench.ir.graph import Model, Operator, Tensor
from workbench.ir.ops import BuiltinOperator, TensorType

_B = BuiltinOperator.__members__
_CONV = {int(_B[n]) for n in ("CONV_2D", "TRANSPOSE_CONV", "CONV_3D", "CONV_3D_TRANSPOSE")
         if n in _B}
_DEPTHWISE = {int(_B["DEPTHWISE_CONV_2D"])}
_FC = {int(_B[n]) for n in (
    "FULLY_CONNECTED", "BATCH_MATMUL", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "RNN", "UNIDIRECTIONAL_SEQUENCE_RNN",
    "BIDIRECTIONAL_SEQUENCE_RNN", "SVDF", "STABLEHLO_DOT_GENERAL") if n in _B}
_KIND_INDEX = {k: i for i, k in enumerate(KINDS)}

FEATURE_COLUMNS = ["index", "op", "kind", "dtype", "macs", "in_bytes", "out_bytes",
                   "weight_bytes", "bytes"]


def op_kind(op: Operator) -> str:
    """The efficiency class of an op: conv, depthwise, fc, pool, elementwise, reduce, move or
    other (ops counted as zero MACs that move data are ``move``)."""
    code = int(op.code) if op.code is not None else -1
    if code in _CONV:
        return "conv"
    if code in _DEPTHWISE:
        return "depthwise"
    if code in _FC:
        return "fc"
    if code in POOLS:
        return "pool"
    if code in REDUCTIONS:
        return "reduce"
    if code in ZERO and code != int(_B["CUSTOM"]):
        return "move"
    if op_macs(op) > 0:
        return "elementwise"
    return "other"


_INT8 = {int(TensorType.INT8), int(TensorType.UINT8)}
_LOWBIT = _INT8 | {int(TensorType.INT4)} if hasattr(TensorType, "INT4") else _INT8


def op_dtype(op: Operator) -> str:
    """What the op computes in: the dtype of its first runtime (non-constant) input, with float
    activations over 8-bit constant weights reported as ``hybrid``."""
    acts = [t for t in op.inputs if t is not None and not t.is_constant]
    consts = [t for t in op.inputs if t is not None and t.is_constant]
    t = acts[0] if acts else (op.outputs[0] if op.outputs and op.outputs[0] is not None
                              else None)
    if t is None:
        return "float32"
    dt = int(t.dtype)
    if dt in _INT8:
        return "int8"
    if dt == int(TensorType.INT16):
        return "int16"
    if dt == int(TensorType.FLOAT16):
        return "float16"
    if dt == int(TensorType.FLOAT32):
        if any(int(c.dtype) in _LOWBIT for c in consts):
            return "hybrid"
        return "float32"
    # integer index/shape arithmetic: cheap scalar code on any processor
    return "int8" if acts and op.outputs and op.outputs[0] is not None and int(
        op.outputs[0].dtype) in _INT8 else "float32"


def _tbytes(t: Tensor | None) -> int:
    if t is None:
        return 0
    try:
        return int(t.nbytes)
    except Exception:  # noqa: BLE001 - unknown/odd types (strings, resources) move ~nothing
        return 0


def op_features(model: Model, subgraph: int = 0) -> pd.DataFrame:
    """One row per op of ``subgraph`` with what the cost model needs.

    Columns: ``index``, ``op``, ``kind`` (:func:`op_kind`), ``dtype`` (:func:`op_dtype`),
    ``macs`` (:func:`workbench.analysis.summary.op_macs`), ``in_bytes`` (runtime inputs),
    ``out_bytes``, ``weight_bytes`` (constant inputs) and ``bytes`` (their sum).
    """
    try:
        sg = model.subgraphs[subgraph]
    except (IndexError, TypeError):
        raise InputError(f"subgraph {subgraph!r} does not exist (the model has "
                         f"{len(model.subgraphs)})") from None
    rows = []
    for i, op in enumerate(sg.operators):
        ins = [t for t in op.inputs if t is not None]
        ib = sum(_tbytes(t) for t in ins if not t.is_constant)
        wb = sum(_tbytes(t) for t in ins if t.is_constant)
        ob = sum(_tbytes(t) for t in op.outputs if t is not None)
        try:
            name = str(op.name)
        except Exception:  # noqa: BLE001
            name = "UNKNOWN"
        rows.append({"index": i, "op": name, "kind": op_kind(op), "dtype": op_dtype(op),
                     "macs": op_macs(op), "in_bytes": ib, "out_bytes": ob,
                     "weight_bytes": wb, "bytes": ib + ob + wb})
    return pd.DataFrame(rows, columns=FEATURE_COLUMNS)


# --- per-op times ----------------------------------------------------------------------------

@dataclass
class OpArrays:
    """The numeric columns of an :func:`op_features` table, as arrays (the fit reuses them)."""

    kind: np.ndarray  # int index into KINDS
    dtype: np.ndarray  # str
    macs: np.ndarray  # float
    nbytes: np.ndarray  # float

    @classmethod
    def from_features(cls, f: pd.DataFrame) -> OpArrays:
        return cls(kind=np.array([_KIND_INDEX.get(k, _KIND_INDEX["other"]) for k in f["kind"]],
                                 dtype=np.int64),
                   dtype=f["dtype"].to_numpy(dtype=object),
                   macs=f["macs"].to_numpy(dtype=np.float64),
                   nbytes=f["bytes"].to_numpy(dtype=np.float64))

    def take(self, idx: np.ndarray) -> OpArrays:
        return OpArrays(self.kind[idx], self.dtype[idx], self.macs[idx], self.nbytes[idx])


def run_dtype(proc: Processor, dtype: str, precision: str | None = None) -> str:
    """The dtype ``proc`` computes a ``dtype`` op in."""
    if proc.kind == "gpu" and dtype == "float32" and (precision or "float16") == "float16":
        dtype = "float16"
    return proc.peak(dtype)[1]


def op_seconds(proc: Processor, ops: OpArrays, threads: int = 1,
               precision: str | None = None) -> dict[str, np.ndarray]:
    """Roofline time of each op on ``proc``: arrays ``compute``, ``memory``, ``dispatch``,
    ``total`` (seconds) and ``run_dtype``."""
    n = len(ops.macs)
    peak = np.empty(n)
    rd = np.empty(n, dtype=object)
    for d in set(ops.dtype.tolist()):
        m = ops.dtype == d
        r = run_dtype(proc, d, precision)
        peak[m] = proc.peak_gmacs[r] * 1e9
        rd[m] = r
    eff = np.array([proc.eff(k) for k in KINDS])[ops.kind]
    compute = ops.macs / (peak * eff * proc.speedup(threads))
    memory = ops.nbytes / proc.bandwidth(threads)
    dispatch = np.full(n, proc.dispatch_us * 1e-6)
    return {"compute": compute, "memory": memory, "dispatch": dispatch,
            "total": np.maximum(compute, memory) + dispatch, "run_dtype": rd}


def transfer_seconds(proc: Processor, nbytes: float, ntensors: int) -> float:
    """Moving ``ntensors`` tensors of ``nbytes`` in total between CPU memory and ``proc``."""
    if proc.kind == "cpu" or proc.transfer_gbps is None or ntensors == 0:
        return 0.0
    return ntensors * proc.transfer_latency_us * 1e-6 + nbytes / (proc.transfer_gbps * 1e9)


def partition_seconds(proc: Processor, in_bytes: float, out_bytes: float, n_in: int,
                      n_out: int) -> tuple[float, float]:
    """(launch, transfer) seconds of one delegated partition on ``proc``."""
    return proc.launch_us * 1e-6, transfer_seconds(proc, in_bytes + out_bytes, n_in + n_out)


def predict_seconds(ops: OpArrays, assign: np.ndarray, parts: list[dict], cpu: Processor,
                    dproc: Processor | None, threads: int, precision: str | None = None
                    ) -> float:
    """Whole-model estimate in seconds: CPU ops, delegated ops and partition overheads.

    ``assign[i]`` is op i's partition id (-1 = CPU); ``parts`` the delegated partitions as
    dicts with ``in_bytes``, ``out_bytes``, ``n_in``, ``n_out``. The fit calls this directly.
    """
    on_dev = assign >= 0
    total = 0.0
    if (~on_dev).any():
        total += float(op_seconds(cpu, ops.take(~on_dev), threads)["total"].sum())
    if on_dev.any() and dproc is not None:
        total += float(op_seconds(dproc, ops.take(on_dev), threads, precision)["total"].sum())
        for p in parts:
            launch, xfer = partition_seconds(dproc, p["in_bytes"], p["out_bytes"], p["n_in"],
                                             p["n_out"])
            total += launch + xfer
    return total
