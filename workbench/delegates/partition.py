"""TFLite-style delegate partitioning: claimed ops → node subsets → delegated partitions.

This mirrors what happens when a delegate is applied to a TFLite interpreter:

1. The delegate decides, op by op, which nodes it *claims* (the op-support rules in
   :mod:`workbench.delegates.rules`).
2. The graph is cut into **node subsets** the way TFLite's
   ``PartitionGraphIntoIndependentNodeSubsets`` does it (greedy mode, the interpreter's default):
   epochs are built one after another; the first node whose inputs are all ready fixes the
   epoch's kind (claimed or not), then every ready node of the same kind joins, sweeping the
   execution order again and again until nothing more can join. A claimed node that depends
   on an unclaimed one (which depends on an earlier claimed one) therefore lands in a later
   subset: subsets are maximal sets that never need a round trip through the other processor.
   Ops with side effects (resource-variable ops, control flow) are chained so their order
   holds, as TFLite does with control edges.
3. The delegate keeps only some subsets (``GraphPartitionHelper``): sorted by node count,
   largest first, at most ``max_delegated_partitions`` of them and none smaller than
   ``min_nodes_per_partition``. The kept nodes are partitioned once more (that is what
   ``ReplaceNodeSubsetsWithDelegateKernels`` does), and every other op runs on the CPU.

Each resulting partition lists the tensors crossing its boundary (``inputs``/``outputs``,
TFLite's delegate-node tensors, constants included) with their bytes; the runtime
(non-constant) ones are the data moved between processors on every inference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import InputError
from workbench.ir.graph import Model, Operator, Subgraph, Tensor
from workbench.ir.ops import Op, TensorType

from .rules import Verdict, check_subgraph, delegate_spec

__all__ = ["BoundaryTensor", "Partition", "Partitioning", "node_subsets", "partition"]

# Reasons for claimed ops that still run on the CPU (TFLite only logs counts for these).
REASON_SMALL = "Partition too small: {n} node(s) < min_nodes_per_partition={m}."
REASON_NOT_LARGEST = "Partition not among the {k} largest (max_delegated_partitions={k})."


@dataclass(frozen=True)
class BoundaryTensor:
    """A tensor crossing a partition boundary."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    bytes: int
    #: Constant (weights): handed to the delegate once at init, not moved per inference.
    constant: bool


@dataclass
class Partition:
    """One node subset in execution order."""

    id: int
    #: ``"delegate"`` or ``"cpu"``.
    processor: str
    #: Operator indices of the subgraph, in the order TFLite lists them.
    ops: list[int]
    inputs: list[BoundaryTensor] = field(default_factory=list)
    outputs: list[BoundaryTensor] = field(default_factory=list)

    @property
    def input_bytes(self) -> int:
        """Runtime bytes entering the partition per inference (constants excluded)."""
        return sum(t.bytes for t in self.inputs if not t.constant)

    @property
    def output_bytes(self) -> int:
        """Bytes leaving the partition per inference."""
        return sum(t.bytes for t in self.outputs)

    @property
    def constant_bytes(self) -> int:
        """Constant bytes the delegate receives once (weights it prepares at init)."""
        return sum(t.bytes for t in self.inputs if t.constant)

    def __len__(self) -> int:
        return len(self.ops)


def node_subsets(nodes: list[tuple[list[int], list[int]]], claimed: list[bool],
                 side_effect: list[bool] | None = None,
                 greedy: bool = True) -> list[tuple[bool, list[int], list[int], list[int]]]:
    """Cut a graph into independent node subsets, as TFLite's partitioner does.

    Parameters
    ----------
    nodes
        Per node in execution order: (input tensor ids, output tensor ids); ``-1`` entries
        (omitted optional tensors) are ignored.
    claimed
        Per node: whether it belongs to the delegate's set.
    side_effect
        Per node: whether it might have side effects; such nodes keep their relative order.
    greedy
        TFLite's default (``greedily=true``). Non-greedy closes an epoch at the first node
        that cannot join, which keeps the original order strictly.

    Returns
    -------
    list of (claimed, node ids, input tensor ids, output tensor ids)
        Input and output ids are sorted and unique; inputs include tensors that are always
        ready (model inputs, constants), outputs include model outputs only when the caller
        appends them (see :func:`partition`).
    """
    if len(claimed) != len(nodes):
        raise InputError(f"claimed has {len(claimed)} entries for {len(nodes)} nodes")
    if greedy:
        return _greedy_subsets(nodes, claimed, side_effect)
    return _sweep_subsets(nodes, claimed, side_effect, greedy=False)


def _sweep_subsets(nodes, claimed, side_effect=None, greedy=True):
    """TFLite's loop transcribed literally: sweep the execution order again and again, adding
    every ready node of the epoch's kind. O(epochs x sweeps x nodes); the reference that
    :func:`_greedy_subsets` must reproduce exactly (tests compare them)."""
    n = len(nodes)
    if len(claimed) != n:
        raise InputError(f"claimed has {len(claimed)} entries for {n} nodes")
    not_ready, always = -1, -2
    epoch_of: dict[int, int] = {}
    for _, outs in nodes:
        for t in outs:
            if t >= 0:
                epoch_of[t] = not_ready
    node_epoch = [not_ready] * n
    # Control edges chain side-effecting nodes in execution order (TFLite adds them only
    # in greedy mode, since the non-greedy sweep never reorders).
    waits = [0] * n
    next_of: dict[int, int] = {}
    if greedy and side_effect is not None:
        last = -1
        for i, s in enumerate(side_effect):
            if s:
                if last >= 0:
                    next_of[last] = i
                    waits[i] += 1
                last = i
    subsets: list[dict[str, Any]] = []

    def try_add(i: int) -> bool:
        cur = subsets[-1]
        ep = len(subsets) - 1
        if node_epoch[i] != not_ready:
            return False
        ins, outs = nodes[i]
        if any(t >= 0 and epoch_of.get(t, always) == not_ready for t in ins):
            return False
        if waits[i]:
            return False
        if cur["type"] is None:
            cur["type"] = claimed[i]
        if cur["type"] != claimed[i]:
            return False
        node_epoch[i] = ep
        cur["nodes"].append(i)
        for t in outs:
            if t >= 0:
                epoch_of[t] = ep
        for t in ins:
            if t < 0:
                continue
            e = epoch_of.get(t, always)
            if e != ep:
                cur["ins"].append(t)
                if e >= 0:
                    subsets[e]["outs"].append(t)
        if i in next_of:
            waits[next_of[i]] -= 1
        return True

    while True:
        subsets.append({"type": None, "nodes": [], "ins": [], "outs": []})
        while True:
            did = False
            stop = False
            for i in range(n):
                if try_add(i):
                    did = True
                elif did and not greedy:
                    stop = True
                    break
            if stop or not did:
                break
        if not subsets[-1]["nodes"]:
            subsets.pop()
            break
    return [(bool(s["type"]), s["nodes"], sorted(set(s["ins"])), sorted(set(s["outs"])))
            for s in subsets]




def _greedy_subsets(nodes, claimed, side_effect=None):
    """The greedy partitioning of :func:`_sweep_subsets`, event-driven: the same subsets with
    their nodes in the same order, in O((nodes + edges) log nodes).

    A sweep visits nodes in index order; a node that becomes ready while the sweep is at node
    ``i`` is visited later in the same sweep if its index is above ``i``, else in the next
    sweep. Heaps of ready indices reproduce exactly that order."""
    import heapq

    n = len(nodes)
    producer: dict[int, int] = {}
    for i, (_, outs) in enumerate(nodes):
        for t in outs:
            if t >= 0:
                producer[t] = i
    consumers: dict[int, list[int]] = {}
    waits = [0] * n
    for i, (ins, _) in enumerate(nodes):
        for t in {t for t in ins if t >= 0 and t in producer}:
            consumers.setdefault(t, []).append(i)
            waits[i] += 1
    next_of: dict[int, int] = {}
    if side_effect is not None:
        last = -1
        for i, se in enumerate(side_effect):
            if se:
                if last >= 0:
                    next_of[last] = i
                    waits[i] += 1
                last = i
    always = -2
    epoch_of: dict[int, int] = {}
    ready = {True: [], False: []}  # per kind, ready but not yet scheduled
    for i in range(n):
        if waits[i] == 0:
            heapq.heappush(ready[bool(claimed[i])], i)
    out: list[tuple[bool, list[int], list[int], list[int]]] = []
    outs_of: list[list[int]] = []
    scheduled = 0
    while scheduled < n:
        cands = [(h[0], k) for k, h in ready.items() if h]
        if not cands:
            raise InputError("the graph has a cycle or an input produced by no node")
        kind = min(cands)[1]
        ep = len(out)
        members: list[int] = []
        ins_ep: list[int] = []
        outs_of.append([])
        cur, nxt = ready[kind], []
        ready[kind] = []
        while cur:
            i = heapq.heappop(cur)
            members.append(i)
            scheduled += 1
            ins, outs = nodes[i]
            for t in ins:
                if t < 0:
                    continue
                e = epoch_of.get(t, always)
                if e != ep:
                    ins_ep.append(t)
                    if e >= 0:
                        outs_of[e].append(t)
            freed = []
            for t in outs:
                if t >= 0:
                    epoch_of[t] = ep
                    for j in consumers.get(t, ()):
                        waits[j] -= 1
                        if waits[j] == 0:
                            freed.append(j)
            if i in next_of:
                j = next_of[i]
                waits[j] -= 1
                if waits[j] == 0:
                    freed.append(j)
            for j in freed:
                if bool(claimed[j]) != kind:
                    heapq.heappush(ready[bool(claimed[j])], j)
                elif j > i:
                    heapq.heappush(cur, j)
                else:
                    nxt.append(j)
            if not cur and nxt:
                cur, nxt = nxt, []
                heapq.heapify(cur)
        out.append((kind, members, ins_ep, []))
    return [(k, m, sorted(set(i)), sorted(set(o))) for (k, m, i, _), o in zip(out, outs_of)]


def _side_effect(op: Operator) -> bool:
    # TFLite: an op touching a resource tensor, or control flow (its body may have them).
    if op.code in (Op.WHILE, Op.IF, Op.CALL_ONCE):
        return True
    return any(t is not None and int(t.dtype) == TensorType.RESOURCE
               for t in list(op.inputs) + list(op.outputs))


@dataclass
class Partitioning:
    """The result of :func:`partition`: which ops the delegate runs, in which partitions."""

    delegate: str
    subgraph: int
    verdicts: list[Verdict]
    partitions: list[Partition]
    min_nodes_per_partition: int
    max_delegated_partitions: int | None
    options: dict[str, Any]
    op_names: list[str]
    #: Final processor per op ("delegate"/"cpu") and the partition id it belongs to.
    op_partition: list[int]
    #: Why a claimed op still runs on the CPU (partition size/count limits), per op.
    fallback_notes: dict[int, str]

    # -- views -----------------------------------------------------------------------------
    @property
    def delegate_partitions(self) -> list[Partition]:
        return [p for p in self.partitions if p.processor == "delegate"]

    @property
    def delegated_ops(self) -> list[int]:
        """Op indices the delegate runs, in execution order."""
        return sorted(i for p in self.delegate_partitions for i in p.ops)

    @property
    def claimed_ops(self) -> list[int]:
        return [i for i, v in enumerate(self.verdicts) if v.supported]

    def reason(self, i: int) -> str | None:
        """Why op ``i`` runs on the CPU (None if the delegate runs it)."""
        if self.partitions[self.op_partition[i]].processor == "delegate":
            return None
        return self.fallback_notes.get(i) or self.verdicts[i].reason

    @property
    def df(self) -> pd.DataFrame:
        """One row per op: index, op, version, claimed, delegated, partition, reason."""
        rows = []
        for i, v in enumerate(self.verdicts):
            p = self.partitions[self.op_partition[i]]
            rows.append({"index": i, "op": self.op_names[i], "claimed": v.supported,
                         "delegated": p.processor == "delegate", "partition": p.id,
                         "processor": p.processor, "reason": self.reason(i)})
        return pd.DataFrame(rows, columns=["index", "op", "claimed", "delegated", "partition",
                                           "processor", "reason"])

    @property
    def partitions_df(self) -> pd.DataFrame:
        """One row per partition with its size and the bytes crossing its boundary."""
        rows = [{"partition": p.id, "processor": p.processor, "ops": len(p.ops),
                 "first_op": p.ops[0], "last_op": p.ops[-1], "input_bytes": p.input_bytes,
                 "output_bytes": p.output_bytes, "constant_bytes": p.constant_bytes}
                for p in self.partitions]
        return pd.DataFrame(rows, columns=["partition", "processor", "ops", "first_op",
                                           "last_op", "input_bytes", "output_bytes",
                                           "constant_bytes"])

    @property
    def summary(self) -> dict[str, Any]:
        """Counts: ops delegated/total, partitions, bytes moved, fallback reasons."""
        reasons: Counter = Counter()
        for i in range(len(self.verdicts)):
            r = self.reason(i)
            if r is not None:
                reasons[f"{self.op_names[i]}: {r}"] += 1
        dp = self.delegate_partitions
        # Transfers happen only where a delegate partition meets the CPU or the caller.
        return {"delegate": self.delegate, "ops_total": len(self.verdicts),
                "ops_claimed": len(self.claimed_ops), "ops_delegated": len(self.delegated_ops),
                "delegate_partitions": len(dp),
                "cpu_partitions": len(self.partitions) - len(dp),
                "transfer_in_bytes": sum(p.input_bytes for p in dp),
                "transfer_out_bytes": sum(p.output_bytes for p in dp),
                "fallback_reasons": dict(reasons.most_common())}

    @property
    def log(self) -> str:
        """The message TFLite's delegates print when applied (GPU/Hexagon/NNAPI wording)."""
        unsupported = sorted({f"{self.op_names[i]}: {v.reason}"
                              for i, v in enumerate(self.verdicts) if not v.supported})
        s = self.summary
        lines = []
        # TFLite lists the unsupported ops only when some nodes stay on the CPU.
        if unsupported and s["ops_delegated"] < s["ops_total"]:
            lines.append(f"Following operations are not supported by {self.delegate} delegate:")
            lines += unsupported
        lines.append(f"{s['ops_delegated']} operations will run on the {self.delegate} "
                     f"delegate, and the remaining {s['ops_total'] - s['ops_delegated']} "
                     "operations will run on the CPU.")
        lines.append(f"Replacing {s['ops_delegated']} out of {s['ops_total']} node(s) with "
                     f"delegate, yielding {s['delegate_partitions']} partitions for the whole "
                     "graph.")
        return "\n".join(lines)

    def plot(self):
        """Matplotlib ``Figure``: one bar per op in execution order, coloured by processor,
        partitions marked, with the runtime bytes entering/leaving each delegate partition."""
        from workbench.analysis import _result as R

        fig = R.figure((10, 2.8))
        ax = fig.subplots()
        n = len(self.verdicts)
        colors = {"delegate": "tab:green", "cpu": "tab:gray"}
        for p in self.partitions:
            for i in p.ops:
                claimed_cpu = p.processor == "cpu" and self.verdicts[i].supported
                ax.bar(i, 1, width=0.9, color="tab:olive" if claimed_cpu else
                       colors[p.processor], edgecolor="none")
            if p.processor == "delegate":
                mid = (min(p.ops) + max(p.ops)) / 2
                ax.annotate(f"P{p.id}: in {_human(p.input_bytes)} / out "
                            f"{_human(p.output_bytes)}", (mid, 1.02), ha="center",
                            va="bottom", fontsize=7)
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:green", label=f"{self.delegate} delegate"),
                           Patch(color="tab:olive", label="claimed, kept on CPU (limits)"),
                           Patch(color="tab:gray", label="CPU fallback")],
                  fontsize=7, loc="upper right", ncol=3, bbox_to_anchor=(1, -0.25))
        ax.set_xlim(-1, max(n, 1))
        ax.set_ylim(0, 1.35)
        ax.set_yticks([])
        ax.set_xlabel("op index (execution order)")
        s = self.summary
        ax.set_title(f"{self.delegate}: {s['ops_delegated']}/{s['ops_total']} ops in "
                     f"{s['delegate_partitions']} delegate partition(s)", fontsize=10)
        fig.tight_layout()
        return fig

    def _repr_html_(self) -> str:
        from workbench.analysis import _result as R

        s = self.summary
        head = R.kv_table([("delegate", self.delegate),
                           ("ops delegated", f"{s['ops_delegated']} / {s['ops_total']}"),
                           ("delegate partitions", s["delegate_partitions"]),
                           ("cpu partitions", s["cpu_partitions"]),
                           ("transfer in / out (bytes)",
                            f"{s['transfer_in_bytes']:,} / {s['transfer_out_bytes']:,}")])
        reasons = pd.DataFrame(list(s["fallback_reasons"].items()), columns=["reason", "ops"])
        parts = [f'<div class="wb-row">{head}', R.html_table(self.partitions_df, 12), "</div>"]
        if len(reasons):
            parts += ["<b>fallback reasons</b>", R.html_table(reasons, 12)]
        parts += ["<b>ops</b>", R.html_table(self.df, 30)]
        return R.wrap(f"Partitioning for the {self.delegate} delegate", *parts)

    def __repr__(self) -> str:
        s = self.summary
        return (f"Partitioning({self.delegate}: {s['ops_delegated']}/{s['ops_total']} ops in "
                f"{s['delegate_partitions']} delegate partition(s))")


def _human(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} B"


def _fp16_dequant_joining(sg: Subgraph, first: set[int]) -> set[int]:
    """DEQUANTIZE(float16 constant) nodes whose consumers all sit in ``first`` (the largest
    delegated partition): the GPU delegate folds them into it (FP16GraphPartitionHelper)."""
    users: dict[int, list[int]] = {}
    for i, op in enumerate(sg.operators):
        for t in op.inputs:
            if t is not None:
                users.setdefault(id(t), []).append(i)
    out = set()
    for i, op in enumerate(sg.operators):
        x = op.inputs[0] if op.code == Op.DEQUANTIZE and op.inputs else None
        if x is None or int(x.dtype) != TensorType.FLOAT16 or not x.is_constant:
            continue
        u = users.get(id(op.outputs[0]), []) if op.outputs and op.outputs[0] is not None else []
        if u and all(j in first for j in u):
            out.add(i)
    return out


def _boundary(sg: Subgraph, ids: list[int]) -> list[BoundaryTensor]:
    out = []
    for t_id in ids:
        t: Tensor = sg.tensors[t_id]
        out.append(BoundaryTensor(index=t_id, name=t.name, shape=tuple(int(d) for d in t.shape),
                                  dtype=t.type_name, bytes=int(t.nbytes),
                                  constant=bool(t.is_constant)))
    return out


def partition(model: Model | str | bytes, delegate: str, *,
              min_nodes_per_partition: int | None = None,
              max_delegated_partitions: int | None = None, subgraph: int = 0,
              **rule_options: Any) -> Partitioning:
    """Which ops ``delegate`` would run, grouped into partitions as TFLite would.

    Parameters
    ----------
    model
        A :class:`~workbench.ir.graph.Model`, a path or bytes.
    delegate
        One of :data:`workbench.delegates.DELEGATES`: ``"xnnpack"``, ``"gpu"``, ``"nnapi"``,
        ``"hexagon"``, ``"coreml"`` or ``"cpu"`` (claims nothing).
    min_nodes_per_partition
        Smaller claimed subsets go back to the CPU. None: the delegate's default
        (Hexagon and Core ML 2, others 1). XNNPACK has no such limits in TFLite; given
        explicitly they are applied anyway.
    max_delegated_partitions
        Keep only this many subsets, largest first (ties in execution order). None: the
        delegate's default (GPU and Hexagon 1, NNAPI 3, others unlimited); 0 or less means
        unlimited.
    subgraph
        Index of the subgraph to partition.
    **rule_options
        Options of the delegate's op-support rules, e.g. ``android_api=29`` (NNAPI),
        ``allow_quantized=False`` (GPU), ``coreml_version=3`` (Core ML); see
        :data:`workbench.delegates.rules.DELEGATES`.

    Returns
    -------
    Partitioning
        ``.partitions``, ``.df`` (one row per op), ``.summary``, ``.log``.
    """
    from workbench.analysis._result import load_model

    m = load_model(model)
    spec = delegate_spec(delegate)
    if isinstance(subgraph, bool) or not isinstance(subgraph, (int, np.integer)) or \
            not 0 <= subgraph < len(m.subgraphs):
        raise InputError(f"subgraph {subgraph!r} out of range: the model has "
                         f"{len(m.subgraphs)} subgraph(s)")
    sg = m.subgraphs[int(subgraph)]
    for name, val in (("min_nodes_per_partition", min_nodes_per_partition),
                      ("max_delegated_partitions", max_delegated_partitions)):
        if val is not None and (isinstance(val, bool) or
                                not isinstance(val, (int, np.integer))):
            raise InputError(f"{name} must be an integer or None, got {val!r}")
    if min_nodes_per_partition is not None and min_nodes_per_partition < 0:
        raise InputError(f"min_nodes_per_partition must be >= 0, got {min_nodes_per_partition}")
    min_nodes = spec.min_nodes_per_partition if min_nodes_per_partition is None \
        else int(min_nodes_per_partition)
    max_parts = spec.max_delegated_partitions if max_delegated_partitions is None \
        else int(max_delegated_partitions)
    if max_parts is not None and max_parts <= 0:
        max_parts = None
    verdicts, opts = check_subgraph(m, spec.name, subgraph=int(subgraph), **rule_options)

    index = {id(t): i for i, t in enumerate(sg.tensors)}
    nodes = [([index[id(t)] if t is not None else -1 for t in op.inputs],
              [index[id(t)] if t is not None else -1 for t in op.outputs])
             for op in sg.operators]
    side = [_side_effect(op) for op in sg.operators]
    claimed = [v.supported for v in verdicts]
    subsets = node_subsets(nodes, claimed, side)

    # GraphPartitionHelper: largest first (a stable sort; TFLite's std::sort leaves ties
    # unspecified), stop at the first one below the minimum.
    ranked = sorted((s for s in subsets if s[0]), key=lambda s: -len(s[1]))
    keep: set[int] = set()
    notes: dict[int, str] = {}
    first: set[int] = set()
    for k, s in enumerate(ranked):
        if max_parts is not None and k >= max_parts:
            for i in s[1]:
                notes[i] = REASON_NOT_LARGEST.format(k=max_parts)
        elif len(s[1]) < min_nodes:
            for i in s[1]:
                notes[i] = REASON_SMALL.format(n=len(s[1]), m=min_nodes)
        else:
            keep.update(s[1])
            first = first or set(s[1])
    if spec.joins_fp16_dequant and first:
        keep |= _fp16_dequant_joining(sg, first)
    final = node_subsets(nodes, [i in keep for i in range(len(nodes))], side)

    # Model outputs leave the partition producing them.
    producer_part = {}
    for pid, (_, ops_, _, _) in enumerate(final):
        for i in ops_:
            for t in nodes[i][1]:
                if t >= 0:
                    producer_part[t] = pid
    extra_outs: dict[int, list[int]] = {}
    for t in sg.outputs:
        ti = index[id(t)]
        if ti in producer_part:
            extra_outs.setdefault(producer_part[ti], []).append(ti)

    parts = []
    op_part = [0] * len(nodes)
    for pid, (is_del, ops_, ins, outs) in enumerate(final):
        outs = sorted(set(outs) | set(extra_outs.get(pid, [])))
        parts.append(Partition(id=pid, processor="delegate" if is_del else "cpu", ops=ops_,
                               inputs=_boundary(sg, ins), outputs=_boundary(sg, outs)))
        for i in ops_:
            op_part[i] = pid
    return Partitioning(delegate=spec.name, subgraph=int(subgraph), verdicts=verdicts,
                        partitions=parts, min_nodes_per_partition=min_nodes,
                        max_delegated_partitions=max_parts, options=opts,
                        op_names=[op.name for op in sg.operators], op_partition=op_part,
                        fallback_notes=notes)

