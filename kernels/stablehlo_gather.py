"""STABLEHLO_GATHER (StableHLO's ``gather`` without batching dims): slices of ``operand`` of
``slice_sizes`` starting at index vectors read from ``start_indices`` (int32/int64) along
``index_vector_dim`` and placed by ``start_index_map``; ``collapsed_slice_dims`` are dropped,
the slice dimensions land at ``offset_dims`` of the result and the other index dimensions are
the batch dimensions. Any element type of 8, 16, 32 or 64 bits (bool, integers, float16/32/64,
complex64), copied as stored, since LiteRT gathers by element size. As in StableHLO and
LiteRT, every start index is clamped to ``[0, operand_dim - slice_size]`` (out-of-range and
negative indices never fail). LiteRT checks little else: options it would read out of bounds
are refused here (``index_vector_dim`` equal to the indices rank, StableHLO's implicit trailing
index vector, included: LiteRT reads past the indices shape and crashes), and so is an output
tensor whose rank is not the gather's result rank."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel, check_allocation
from .registry import register

INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _dims(values):
    return tuple(int(v) for v in values) if values is not None else ()


def element_size_ok(dt) -> bool:
    """LiteRT gathers by element size: 8, 16, 32 or 64 bits."""
    return dt is not None and np.dtype(dt).itemsize in (1, 2, 4, 8)


@register(Op.STABLEHLO_GATHER)
class StablehloGather(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or len(node.outputs) != 1 or None in node.inputs or \
                node.outputs[0] is None:
            raise node.fail(f"takes 2 inputs and 1 output, got {len(node.inputs)} and "
                            f"{len(node.outputs)}")
        x, idx, out = node.inputs[0], node.inputs[1], node.outputs[0]
        if idx.dtype not in INDEX_DTYPES:
            raise node.fail(f"start indices must be int32 or int64, got {idx.tensor.type_name}")
        if x.dtype is None or out.dtype != x.dtype:
            raise node.fail(f"output type {out.tensor.type_name} differs from the operand's "
                            f"{x.tensor.type_name}")
        o = node.options  # the stored table (options2 for this op), else the defaults
        offset = _dims(o.offset_dims)
        collapsed = _dims(o.collapsed_slice_dims)
        sim = _dims(o.start_index_map)
        sizes = _dims(o.slice_sizes)
        ivd = int(o.index_vector_dim)
        xs, ids = tuple(x.shape), tuple(idx.shape)
        rank, irank = len(xs), len(ids)
        # LiteRT's own prepare checks.
        if len(sizes) != rank:
            raise node.fail(f"slice_sizes has {len(sizes)} values for a rank-{rank} operand")
        if len(collapsed) > len(sizes):
            raise node.fail("more collapsed_slice_dims than slice_sizes")
        if len(offset) > len(out.shape):
            raise node.fail(f"{len(offset)} offset_dims for a rank-{len(out.shape)} output")
        if not 0 <= ivd <= irank:
            raise node.fail(f"index_vector_dim {ivd} is outside [0, {irank}]")
        if ivd == irank:
            raise node.fail(f"index_vector_dim {ivd} equal to the indices rank: LiteRT reads "
                            "past the indices shape (and crashes); give the index vectors a "
                            "dimension of their own")
        # What LiteRT would otherwise read out of bounds.
        if len(set(collapsed)) != len(collapsed) or any(not 0 <= d < rank for d in collapsed):
            raise node.fail(f"collapsed_slice_dims {list(collapsed)} must be distinct operand "
                            f"dimensions (rank {rank})")
        kept = [d for d in range(rank) if d not in collapsed]
        if len(offset) != len(kept):
            raise node.fail(f"{len(offset)} offset_dims for {len(kept)} uncollapsed slice "
                            "dimensions")
        batch_shape = tuple(n for k, n in enumerate(ids) if k != ivd)
        result_rank = len(batch_shape) + len(offset)
        if len(out.shape) != result_rank:
            raise node.fail(f"output rank {len(out.shape)} is not the gather's result rank "
                            f"{result_rank}")
        if len(set(offset)) != len(offset) or any(not 0 <= d < result_rank for d in offset):
            raise node.fail(f"offset_dims {list(offset)} must be distinct result dimensions "
                            f"(rank {result_rank})")
        vec = ids[ivd] if ivd < irank else 1
        if len(sim) > vec:
            raise node.fail(f"start_index_map has {len(sim)} entries for index vectors of "
                            f"size {vec}")
        if any(not 0 <= d < rank for d in sim):
            raise node.fail(f"start_index_map {list(sim)} names a dimension outside the "
                            f"rank-{rank} operand")
        for d in range(rank):
            s = sizes[d]
            if s < 0 or (d in kept and s > xs[d]):
                raise node.fail(f"slice size {s} does not fit dimension {d} of size {xs[d]}")
            if d not in kept and s != 1:  # 0: LiteRT reads one past the clamped start
                raise node.fail(f"collapsed dimension {d} must have slice size 1, got {s}")
        shape, bi, ki = [], 0, 0
        for r in range(result_rank):
            if r in offset:
                shape.append(sizes[kept[ki]])
                ki += 1
            else:
                shape.append(batch_shape[bi])
                bi += 1
        shape = tuple(shape)
        if math.prod(shape) and not math.prod(xs):
            raise node.fail(f"gathers {list(shape)} values from an empty operand {list(xs)} "
                            "(LiteRT leaves the output unwritten)")
        check_allocation(node, [shape], runtime=False)
        self.error = None if element_size_ok(x.dtype) else \
            f"LiteRT has no {x.tensor.type_name} path (8-64 bit elements only; fails at invoke)"
        # Result axis r takes source axis perm[r] of the gathered [batch..., offset...] block.
        nb = len(batch_shape)
        perm, bi, ki = [], 0, 0
        for r in range(result_rank):
            if r in offset:
                perm.append(nb + ki)
                ki += 1
            else:
                perm.append(bi)
                bi += 1
        self.plan = (ivd, sim, sizes, kept, batch_shape, perm, shape)
        return [shape]

    def eval(self, inputs):
        if self.error is not None:
            raise self.node.fail(self.error)
        x, idx = inputs[0], np.asarray(inputs[1])
        ivd, sim, sizes, kept, batch_shape, perm, shape = self.plan
        if math.prod(shape) == 0:
            return [np.zeros(shape, x.dtype)]
        if ivd == idx.ndim:
            idx = idx[..., None]
        else:
            idx = np.moveaxis(idx, ivd, -1)
        vecs = idx.reshape(-1, idx.shape[-1]).astype(np.int64)
        nbatch = vecs.shape[0]
        rank = x.ndim
        start = np.zeros((nbatch, rank), np.int64)
        for j, d in enumerate(sim):  # a repeated dimension keeps the last value, as LiteRT
            start[:, d] = vecs[:, j]
        win = [sizes[d] if d in kept else 1 for d in range(rank)]
        hi = np.array([max(n - s, 0) for n, s in zip(x.shape, sizes)], np.int64)
        start = np.clip(start, 0, hi)
        grids = []
        for d in range(rank):
            a = start[:, d].reshape((nbatch,) + (1,) * rank)
            b = np.arange(win[d], dtype=np.int64).reshape((1,) * (d + 1) + (win[d],)
                                                           + (1,) * (rank - d - 1))
            grids.append(a + b)
        block = x[tuple(grids)]  # [batch, *win]
        block = block.reshape(tuple(batch_shape) + tuple(sizes[d] for d in kept))
        return [block.transpose(perm).copy()]
