"""STABLEHLO_SCATTER (StableHLO's ``scatter``, one operand): a copy of ``inputs`` with each
element of ``updates`` combined into the element its index addresses (start index vector read
from ``scatter_indices``, int32/int64, along ``index_vector_dim`` and placed by
``scatter_dims_to_operand_dims``, plus the element's position along ``update_window_dims``,
skipping ``inserted_window_dims``). As LiteRT, the update computation is read from the single
operator of the update subgraph: none (plain replacement), STABLEHLO_ADD, STABLEHLO_MULTIPLY,
STABLEHLO_MAXIMUM or STABLEHLO_MINIMUM (anything else, TFLite's ADD included, is refused).
Updates apply one element at a time in row-major order of ``updates`` (repeated indices: the
last replacement wins, float sums and products accumulate in that order; maximum is
``a < b ? b : a`` and minimum ``b < a ? b : a`` of the current and update values, so a NaN
update changes nothing); each element whose index falls outside the operand (negative or too
large) is skipped alone, as LiteRT and the StableHLO reference interpreter do. Element types:
bool, int8/16/32/64, uint8/16/32/64, float16/32/64 (others fail at invoke, as in LiteRT)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from .registry import register

INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
DTYPES = tuple(np.dtype(d) for d in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                     np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                                     np.uint64, np.bool_))
COMPUTATIONS = {Op.STABLEHLO_ADD: "add", Op.STABLEHLO_MULTIPLY: "mul",
                Op.STABLEHLO_MAXIMUM: "max", Op.STABLEHLO_MINIMUM: "min"}


def _ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values) if values is not None else ()


@register(Op.STABLEHLO_SCATTER)
class StablehloScatter(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 3 or len(node.outputs) != 1 or None in node.inputs or \
                node.outputs[0] is None:
            raise node.fail(f"takes 3 inputs and 1 output, got {len(node.inputs)} and "
                            f"{len(node.outputs)}")
        x, idx, upd = node.inputs
        out = node.outputs[0]
        if idx.dtype not in INDEX_DTYPES:
            raise node.fail(f"scatter indices must be int32 or int64, got "
                            f"{idx.tensor.type_name}")
        if x.dtype is None or out.dtype != x.dtype or upd.dtype != x.dtype:
            raise node.fail(f"inputs, updates and output must have one type, got "
                            f"{x.tensor.type_name}, {upd.tensor.type_name} and "
                            f"{out.tensor.type_name}")
        o = node.options  # the stored table (options2 for this op), else the defaults
        uwd = _ints(o.update_window_dims)
        iwd = _ints(o.inserted_window_dims)
        sdod = _ints(o.scatter_dims_to_operand_dims)
        ivd = int(o.index_vector_dim)
        xs, ids, us = tuple(x.shape), tuple(idx.shape), tuple(upd.shape)
        rank, irank, urank = len(xs), len(ids), len(us)
        # LiteRT's own prepare checks.
        if len(uwd) > urank or len(iwd) > rank or len(sdod) > rank or ivd > irank:
            raise node.fail(f"options do not fit the tensors: {len(uwd)} update_window_dims "
                            f"(updates rank {urank}), {len(iwd)} inserted_window_dims and "
                            f"{len(sdod)} scatter_dims_to_operand_dims (operand rank {rank}), "
                            f"index_vector_dim {ivd} (indices rank {irank})")
        self.fn = self._computation(int(o.update_computation_subgraph_index))
        # What LiteRT would otherwise read out of bounds (or crash on).
        if not 0 <= ivd < irank:
            raise node.fail(f"index_vector_dim {ivd} must name a dimension of the rank-{irank} "
                            "indices (LiteRT reads past the shape otherwise)")
        if len(set(uwd)) != len(uwd) or any(not 0 <= d < urank for d in uwd):
            raise node.fail(f"update_window_dims {list(uwd)} must be distinct dimensions of the "
                            f"rank-{urank} updates")
        if len(set(iwd)) != len(iwd) or any(not 0 <= d < rank for d in iwd):
            raise node.fail(f"inserted_window_dims {list(iwd)} must be distinct operand "
                            f"dimensions (rank {rank})")
        if len(uwd) + len(iwd) != rank:
            raise node.fail(f"{len(uwd)} update_window_dims + {len(iwd)} inserted_window_dims "
                            f"must equal the operand rank {rank}")
        if any(not 0 <= d < rank for d in sdod):
            raise node.fail(f"scatter_dims_to_operand_dims {list(sdod)} names a dimension "
                            f"outside the rank-{rank} operand")
        if len(sdod) > ids[ivd]:
            raise node.fail(f"{len(sdod)} scatter_dims_to_operand_dims for index vectors of "
                            f"size {ids[ivd]}")
        usd = [d for d in range(urank) if d not in uwd]
        ibatch = [k for k in range(irank) if k != ivd]
        if len(usd) != len(ibatch) or any(us[u] > ids[k] for u, k in zip(usd, ibatch)):
            raise node.fail(f"updates {list(us)} scatter dimensions {usd} do not match the "
                            f"indices {list(ids)} without index_vector_dim {ivd}")
        self.error = None if x.dtype in DTYPES else \
            f"LiteRT has no {x.tensor.type_name} path (it fails at invoke)"
        self.plan = (uwd, iwd, sdod, ivd, usd, ibatch)
        return [xs]

    def _computation(self, si):
        node = self.node
        model = getattr(node.runtime, "model", None)
        if model is None:
            raise node.fail("needs the model to read its update computation subgraph")
        if not 0 <= si < len(model.subgraphs):
            raise node.fail(f"update computation subgraph {si} does not exist")
        ops = model.subgraphs[si].operators
        if not ops:
            return "update"
        if len(ops) > 1:
            raise node.fail(f"LiteRT allows one operator in the update computation subgraph "
                            f"{si}; it has {len(ops)}")
        fn = COMPUTATIONS.get(ops[0].code)
        if fn is None:
            raise node.fail(f"unsupported update computation {ops[0].name} in subgraph {si}: "
                            "LiteRT takes none (replace), STABLEHLO_ADD, STABLEHLO_MULTIPLY, "
                            "STABLEHLO_MAXIMUM or STABLEHLO_MINIMUM")
        return fn

    def eval(self, inputs):
        if self.error is not None:
            raise self.node.fail(self.error)
        x, idx, upd = inputs[0], np.asarray(inputs[1]), np.asarray(inputs[2])
        out = np.array(x, copy=True)
        if upd.size == 0 or out.size == 0:
            return [out]
        uwd, iwd, sdod, ivd, usd, ibatch = self.plan
        rank, urank = out.ndim, upd.ndim
        vecs = np.moveaxis(idx, ivd, -1)
        # Only the index positions the updates address (updates may be smaller).
        vecs = vecs[tuple(slice(0, upd.shape[u]) for u in usd)].astype(np.int64)
        kept = [d for d in range(rank) if d not in iwd]
        # Operand index of every update element, broadcast over the updates' shape.
        pos = []
        for r in range(rank):
            comp = np.zeros((1,) * urank, np.int64)
            js = [j for j, d in enumerate(sdod) if d == r]
            if js:  # a repeated operand dimension keeps the last index, as LiteRT
                comp = np.expand_dims(vecs[..., js[-1]], tuple(uwd))
            if r in kept:
                k = kept.index(r)
                shape = [1] * urank
                shape[uwd[k]] = upd.shape[uwd[k]]
                comp = comp + np.arange(upd.shape[uwd[k]], dtype=np.int64).reshape(shape)
            pos.append(np.broadcast_to(comp, upd.shape))
        ok = np.ones(upd.shape, bool)
        for r in range(rank):
            ok &= (pos[r] >= 0) & (pos[r] < out.shape[r])
        ok = ok.reshape(-1)
        flat = np.ravel_multi_index(tuple(np.where(ok.reshape(upd.shape), p, 0) for p in pos),
                                    out.shape).reshape(-1)[ok]
        vals = upd.reshape(-1)[ok]
        _apply(out.reshape(-1), flat, vals, self.fn)
        return [out]


def _apply(dst: np.ndarray, flat: np.ndarray, vals: np.ndarray, fn: str) -> None:
    """Fold ``vals`` into ``dst[flat]`` one at a time in order (``dst`` is a view written in
    place)."""
    if flat.size == 0:
        return
    if fn == "update":  # the last write to each position wins
        rev = flat[::-1]
        _, first = np.unique(rev, return_index=True)
        keep = flat.size - 1 - first
        dst[flat[keep]] = vals[keep]
        return
    if fn in ("add", "mul"):  # ufunc.at is unbuffered: sequential in index order
        (np.add if fn == "add" else np.multiply).at(dst, flat, vals)
        return
    if dst.dtype.kind != "f":  # integer / bool maximum and minimum are order-free
        (np.maximum if fn == "max" else np.minimum).at(dst, flat, vals)
        return
    # float: current = current < u ? u : current (max), u < current ? u : current (min). NaN
    # updates never change the value, a NaN current value stays, ties keep the current value.
    keep = ~np.isnan(vals)
    flat, vals = flat[keep], vals[keep]
    if flat.size == 0:
        return
    targets, inv = np.unique(flat, return_inverse=True)
    wide = vals.astype(np.float64)  # exact for float16/32/64
    best = np.full(targets.size, -np.inf if fn == "max" else np.inf)
    (np.maximum if fn == "max" else np.minimum).at(best, inv, wide)
    # The first update equal to the extreme supplies it (its zero sign on a +-0 tie); every
    # target has one.
    eq = wide == best[inv]
    _, first = np.unique(inv[eq], return_index=True)
    src = vals[eq][first]
    cur = dst[targets]
    better = (cur < src) if fn == "max" else (src < cur)  # False for a NaN current value
    dst[targets[better]] = src[better]
