"""EMBEDDING_LOOKUP_SPARSE: inputs (ids: int32 ``[n]``, indices: int32 ``[n, r]``, dense_shape:
int32 ``[r]``, weights: float32 ``[n]``, params: float32 of rank >= 2); the rows
``params[ids[i]] * weights[i]`` summed into the output row addressed by ``indices[i, :-1]``
(output shape ``dense_shape[:-1] + params.shape[1:]``, known at run time), combined by SUM,
MEAN (divided by the sum of weights) or SQRTN (divided by the square root of the sum of squared
weights). float32 only: LiteRT 2.3.0 has no hybrid path (it reads int8/uint8/float16 params'
bytes as float32), so other params types are refused. Bit-exact with LiteRT's float order:
products rounded to float32 then added in lookup order; a bucket is finalized (divided) each
time consecutive lookups leave it, so unsorted indices that come back to a bucket add onto its
divided value and divide again, as LiteRT does. An id outside params fails the invoke, as in
LiteRT; so does an index component outside ``dense_shape`` (LiteRT 2.3.0 does not check them
and drops or misplaces those rows; TensorFlow's current kernel refuses them). The last index
column is not used. An unknown combiner value means SUM, as LiteRT parses it."""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel, check_allocation, mark_dynamic
from ._elementwise import sequential_sum
from .registry import register

#: CombinerType values (schema): SUM 0, MEAN 1, SQRTN 2.
MEAN, SQRTN = 1, 2


@register(Op.EMBEDDING_LOOKUP_SPARSE)
class EmbeddingLookupSparse(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 5 or any(t is None for t in node.inputs):
            raise node.fail("takes five inputs (ids, indices, dense_shape, weights, params)")
        if len(node.outputs) != 1 or node.outputs[0] is None:
            raise node.fail("has one output")
        ids, idx, dshape, w, params = node.inputs
        out = node.outputs[0]
        for what, t, rank, dt in (("ids", ids, 1, np.int32), ("indices", idx, 2, np.int32),
                                  ("dense_shape", dshape, 1, np.int32),
                                  ("weights", w, 1, np.float32)):
            if len(t.shape) != rank or t.dtype != dt:
                raise node.fail(f"{what} must be {np.dtype(dt).name} of rank {rank}, got "
                                f"{t.tensor.type_name}{list(t.shape)}")
        if not idx.shape[0] == ids.shape[0] == w.shape[0]:
            raise node.fail(f"{ids.shape[0]} ids, {idx.shape[0]} index rows and {w.shape[0]} "
                            "weights")
        if len(params.shape) < 2:
            raise node.fail(f"params must have rank >= 2, got {list(params.shape)}")
        if out.dtype != np.float32:
            raise node.fail(f"output must be float32, got {out.tensor.type_name}")
        if params.dtype != np.float32:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{params.tensor.type_name} params (LiteRT 2.3.0 reads "
                                     "their bytes as float32; only float32 is defined)")
        if idx.shape[1] < 1:
            raise node.fail("indices have no columns (LiteRT writes past its output shape)")
        self.combiner = int(node.options.combiner)
        shape = None
        if dshape.data is not None or 0 in dshape.shape:
            shape = self._out_shape(np.zeros(0, np.int32) if dshape.data is None
                                    else dshape.data, strict=False)
        if shape is None:  # a run-time dense_shape (or one LiteRT refuses at invoke)
            mark_dynamic(node)
            return [out.shape]
        check_allocation(node, [shape], runtime=False)
        return [shape]

    def _out_shape(self, dshape: np.ndarray, strict: bool):
        """``dense_shape[:-1] + params.shape[1:]``; None (or an error when ``strict``) when
        LiteRT fails the invoke on these values."""
        node = self.node
        rank = node.inputs[1].shape[1]
        d = [int(v) for v in np.asarray(dshape).reshape(-1)]
        if len(d) != rank:
            if strict:
                raise node.fail(f"dense_shape has {len(d)} values for indices of {rank} "
                                "columns")
            return None
        lead = d[:rank - 1]
        if any(v < 0 for v in lead):
            if strict:
                raise node.fail(f"dense_shape {d} has a negative dimension")
            return None
        return tuple(lead) + tuple(node.inputs[4].shape[1:])

    def eval(self, inputs):
        node = self.node
        ids, idx, dshape, w, params = inputs
        shape = self._out_shape(dshape, strict=True)
        if node.state.get("dynamic_outputs"):
            check_allocation(node, [shape], runtime=True)
        rank = idx.shape[1]
        lead = shape[:rank - 1]
        rows = params.shape[0]
        n = ids.shape[0]
        if n and (ids.min() < 0 or ids.max() >= rows):
            bad = int(ids[(ids < 0) | (ids >= rows)][0])
            raise node.fail(f"id {bad} is outside params' {rows} rows")
        comps = idx[:, :rank - 1].astype(np.int64)
        if comps.size:
            over = (comps < 0) | (comps >= np.asarray(lead, np.int64))
            if over.any():
                i, k = (int(v) for v in np.argwhere(over)[0])
                raise node.fail(f"index {comps[i].tolist()} of lookup {i} is outside "
                                f"dense_shape {list(lead)} in dimension {k}")
        esz = math.prod(shape[rank - 1:])
        buckets = math.prod(lead)
        out = np.zeros((buckets, esz), np.float32)
        if n and esz and buckets:
            strides = [math.prod(lead[k + 1:]) for k in range(rank - 1)]
            bucket = comps @ np.asarray(strides, np.int64) if rank > 1 else np.zeros(n, np.int64)
            prods = params.reshape(rows, esz)[ids] * w.reshape(n, 1)  # float32 products
            self._accumulate(out, bucket, prods, np.asarray(w, np.float32))
        return [out.reshape(shape)]

    def _accumulate(self, out, bucket, prods, w):
        """LiteRT's loop, vectorized: runs of consecutive lookups into one bucket are summed
        onto the bucket in order and finalized at their end. Runs of one bucket go in rounds
        (its first run, then its second...), runs of one round in groups of similar length,
        each group one sequential reduction over a padded ``[1 + length, runs, E]`` array whose
        first row is the bucket's current value and whose padding is ``-0.0`` (``x + -0.0 ==
        x`` for every float32 ``x``, zeros' signs included)."""
        n = bucket.shape[0]
        combine = self.combiner in (MEAN, SQRTN)
        if not combine:  # no finalization: each bucket's lookups in order, one run each
            order = np.argsort(bucket, kind="stable")
            bucket, prods, w = bucket[order], prods[order], w[order]
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        lens = np.diff(np.r_[starts, n])
        run_bucket = bucket[starts]
        by_bucket = np.argsort(run_bucket, kind="stable")
        sorted_b = run_bucket[by_bucket]
        first = np.r_[0, np.flatnonzero(sorted_b[1:] != sorted_b[:-1]) + 1]
        group_start = np.repeat(first, np.diff(np.r_[first, sorted_b.shape[0]]))
        occurrence = np.empty_like(by_bucket)
        occurrence[by_bucket] = np.arange(by_bucket.shape[0]) - group_start
        size_class = np.floor(np.log2(lens)).astype(np.int64)
        for k in range(int(occurrence.max()) + 1):
            for c in np.unique(size_class[occurrence == k]):
                sel = np.flatnonzero((occurrence == k) & (size_class == c))
                self._runs(out, starts[sel], lens[sel], run_bucket[sel], prods, w, combine)

    def _runs(self, out, starts, lens, b, prods, w, combine):
        r, m = starts.shape[0], int(lens.max())
        member = np.arange(m)[None, :] < lens[:, None]  # [runs, m]
        src = (starts[:, None] + np.arange(m)[None, :])[member]
        run_of = np.broadcast_to(np.arange(r)[:, None], (r, m))[member]
        pos = np.broadcast_to(np.arange(m)[None, :], (r, m))[member]
        acc = np.full((m + 1, r, out.shape[1]), -0.0, np.float32)
        acc[0] = out[b]
        acc[1 + pos, run_of] = prods[src]
        total = sequential_sum(acc, (0,))
        if combine:
            ws = np.full((m + 1, r), -0.0, np.float32)
            ws[0] = 0.0  # LiteRT's accumulators start at +0.0
            if self.combiner == MEAN:
                ws[1 + pos, run_of] = w[src]
                div = sequential_sum(ws, (0,))
            else:
                ws[1 + pos, run_of] = w[src] * w[src]
                div = np.sqrt(sequential_sum(ws, (0,)))
            total = total / div[:, None]
        out[b] = total
