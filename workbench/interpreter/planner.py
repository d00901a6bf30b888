"""Memory planning: one arena for all non-constant tensors of a subgraph.

Lifetimes come from the execution order: a tensor lives from the operator that writes it (or
the start, for subgraph inputs) to the last operator that reads it (or the end, for subgraph
outputs and variables). Placement follows TFLite's arena planner, "greedy by size": tensors in
decreasing size order, each at the lowest-waste gap (best fit) between the already placed
tensors whose lifetimes overlap its own, offsets aligned to 64 bytes. ``strategy="best"``
also tries other orders (longest-lived first, earliest-first) and keeps the smallest arena, so
it is never worse than the TFLite-style result.

The lower bound is the largest total of (aligned) live bytes at any step: no placement can use
less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.ir.graph import Model

ALIGNMENT = 64


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


@dataclass
class Allocation:
    index: int
    name: str
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass
class MemoryPlan:
    """Arena size, its lower bound and per-tensor placements (``.df``)."""

    allocations: list[Allocation]
    arena_bytes: int
    lower_bound: int
    greedy_bytes: int
    strategy: str

    @property
    def df(self):
        import pandas as pd

        return pd.DataFrame([a.__dict__ for a in self.allocations]).sort_values("offset")

    @property
    def overhead(self) -> float:
        """Arena over lower bound, minus one (0.0 = optimal)."""
        return self.arena_bytes / self.lower_bound - 1 if self.lower_bound else 0.0

    def _repr_html_(self) -> str:
        return (f"<b>Arena</b> {self.arena_bytes:,} B ({self.strategy}); lower bound "
                f"{self.lower_bound:,} B (+{self.overhead:.1%}); TFLite-style greedy "
                f"{self.greedy_bytes:,} B; {len(self.allocations)} tensors")


def lifetimes(model: Model, shapes: dict[int, tuple] | None = None,
              subgraph: int = 0) -> list[Allocation]:
    """One :class:`Allocation` (unplaced) per non-constant tensor used by the subgraph."""
    sg = model.subgraphs[subgraph]
    index = {id(t): i for i, t in enumerate(sg.tensors)}
    n_ops = len(sg.operators)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in sg.inputs:
        first[index[id(t)]] = 0
        last[index[id(t)]] = 0
    for oi, op in enumerate(sg.operators):
        for t in op.outputs:
            if t is not None:
                i = index[id(t)]
                first.setdefault(i, oi)
                last[i] = max(last.get(i, oi), oi)
        for t in op.inputs:
            if t is not None and not t.is_constant:
                i = index[id(t)]
                first.setdefault(i, 0)
                last[i] = max(last.get(i, oi), oi)
    for t in sg.outputs:
        i = index[id(t)]
        first.setdefault(i, 0)
        last[i] = max(n_ops - 1, 0)
    out = []
    for i, t in enumerate(sg.tensors):
        if i not in first or t.is_constant:
            continue
        if t.is_variable:
            first[i], last[i] = 0, max(n_ops - 1, 0)
        shape = shapes.get(i, t.shape) if shapes else t.shape
        bits = np.dtype(t.numpy_dtype).itemsize * 8 if t.numpy_dtype is not None else 32
        size = (int(np.prod(shape, dtype=np.int64)) * bits + 7) // 8
        out.append(Allocation(i, t.name, _align(size), first[i], last[i]))
    return out


def _overlap(a: Allocation, b: Allocation) -> bool:
    return a.first <= b.last and b.first <= a.last


def _place(allocs: list[Allocation], order: list[Allocation]) -> int:
    placed: list[Allocation] = []
    for a in order:
        live = sorted((p for p in placed if _overlap(p, a)), key=lambda p: p.offset)
        best, best_waste, cursor = None, None, 0
        for p in live:
            gap = p.offset - cursor
            if gap >= a.size and (best_waste is None or gap - a.size < best_waste):
                best, best_waste = cursor, gap - a.size
            cursor = max(cursor, p.offset + p.size)
        a.offset = best if best is not None else cursor
        placed.append(a)
    return max((a.offset + a.size for a in allocs), default=0)


def lower_bound(allocs: list[Allocation]) -> int:
    if not allocs:
        return 0
    steps = max(a.last for a in allocs) + 1
    live = np.zeros(steps + 1, np.int64)
    for a in allocs:
        live[a.first] += a.size
        live[a.last + 1] -= a.size
    return int(np.cumsum(live).max())


_ORDERS = {
    "greedy_by_size": lambda a: (-a.size, a.first, a.index),
    "longest_lived": lambda a: (-(a.last - a.first), -a.size, a.index),
    "size_x_lifetime": lambda a: (-a.size * (a.last - a.first + 1), a.index),
    "first_use": lambda a: (a.first, -a.size, a.index),
}


def plan_memory(model: Model, shapes: dict[int, tuple] | None = None, subgraph: int = 0,
                strategy: str = "best") -> MemoryPlan:
    """Plan the arena of one subgraph.

    Parameters
    ----------
    shapes
        Current tensor shapes (e.g. after ``resize_tensor_input``); the model's by default.
    strategy
        ``"greedy_by_size"`` (TFLite's order), another key of the orders above, or ``"best"``.
    """
    base = lifetimes(model, shapes, subgraph)
    results = {}
    names = list(_ORDERS) if strategy == "best" else [strategy]
    if "greedy_by_size" not in names:
        names.append("greedy_by_size")
    for name in names:
        allocs = [Allocation(**a.__dict__) for a in base]
        size = _place(allocs, sorted(allocs, key=_ORDERS[name]))
        results[name] = (size, allocs)
    chosen = min(results, key=lambda k: (results[k][0], k != "greedy_by_size")) \
        if strategy == "best" else strategy
    size, allocs = results[chosen]
    return MemoryPlan(allocs, size, lower_bound(base), results["greedy_by_size"][0], chosen)


def check_plan(plan: MemoryPlan) -> None:
    """Assert no two tensors that are live at the same time share bytes."""
    a = sorted(plan.allocations, key=lambda x: x.offset)
    for i, x in enumerate(a):
        for y in a[i + 1:]:
            if y.offset >= x.offset + x.size:
                break
            if _overlap(x, y):
                raise AssertionError(f"{x.name!r} and {y.name!r} overlap in time and space")
