"""HASHTABLE_LOOKUP: inputs (lookup: int32 vector, keys: int32 vector sorted ascending, values:
``[len(keys), ...]`` of any numeric/bool dtype, quantized ones copied as stored, or a STRING
vector); outputs the rows of ``values`` whose key equals each lookup (``[len(lookup), ...]``;
all zero bytes, or the empty string, for a missing key) and ``hits``, a uint8 vector, 1 where
the key was found. As LiteRT, each lookup is C's ``bsearch`` over the keys (glibc's midpoint
sequence), so unsorted or repeated keys give LiteRT's answer, not the first match; an empty key
table fails the invoke."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op, TensorType

from ._common import Kernel
from .registry import register


def bsearch(lookup: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position ``bsearch`` returns for each lookup value (-1: not found), vectorized.

    glibc's loop: ``mid = (lo + hi) / 2``; stop on an equal key, else keep ``[lo, mid)`` when the
    lookup is smaller, ``[mid + 1, hi)`` when larger. LiteRT's comparator ``*a - *b`` behaves
    as an exact comparison in its build (checked with keys far apart, where a wrapping int32
    difference would flip the sign)."""
    q = lookup.astype(np.int64).reshape(-1)
    k = keys.astype(np.int64).reshape(-1)
    lo = np.zeros(q.shape, np.int64)
    hi = np.full(q.shape, k.shape[0], np.int64)
    found = np.full(q.shape, -1, np.int64)
    live = np.flatnonzero(lo < hi)
    while live.size:
        mid = (lo[live] + hi[live]) // 2
        diff = q[live] - k[mid]
        eq = diff == 0
        found[live[eq]] = mid[eq]
        less, more = diff < 0, diff > 0
        hi[live[less]] = mid[less]
        lo[live[more]] = mid[more] + 1
        live = live[~eq]
        live = live[lo[live] < hi[live]]
    return found


@register(Op.HASHTABLE_LOOKUP)
class HashtableLookup(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 3 or any(t is None for t in node.inputs):
            raise node.fail("takes three inputs (lookup, keys, values)")
        if len(node.outputs) != 2 or any(t is None for t in node.outputs):
            raise node.fail("has two outputs (values, hits)")
        lookup, keys, values = node.inputs
        out, hits = node.outputs
        if len(lookup.shape) != 1 or lookup.dtype != np.int32:
            raise node.fail(f"lookup must be an int32 vector, got {lookup.tensor.type_name}"
                            f"{list(lookup.shape)}")
        if len(keys.shape) != 1 or keys.dtype != np.int32:
            raise node.fail(f"keys must be an int32 vector, got {keys.tensor.type_name}"
                            f"{list(keys.shape)}")
        if len(values.shape) < 1:
            raise node.fail("values must have rank >= 1")
        if keys.shape[0] != values.shape[0]:
            raise node.fail(f"{keys.shape[0]} keys for {values.shape[0]} value rows")
        if hits.tensor.type_name != "UINT8":
            raise node.fail(f"hits must be uint8, got {hits.tensor.type_name}")
        if values.tensor.type_name != out.tensor.type_name:
            raise node.fail(f"output type {out.tensor.type_name} differs from the values' type "
                            f"{values.tensor.type_name}")
        self.strings = values.tensor.dtype == TensorType.STRING
        if self.strings and len(values.shape) != 1:
            raise node.fail(f"STRING values must be a vector, got shape {list(values.shape)}")
        if values.dtype is None:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{values.tensor.type_name} values are not supported yet")
        return [(lookup.shape[0], *values.shape[1:]), (lookup.shape[0],)]

    def eval(self, inputs):
        lookup, keys, values = inputs
        if keys.shape[0] == 0:
            raise self.node.fail("the key table is empty (LiteRT fails the invoke)")
        pos = bsearch(lookup, keys)
        hit = pos >= 0
        if self.strings:  # a missing key gives the empty string
            out = np.full(lookup.shape[0], b"", dtype=object)
        else:
            out = np.zeros((lookup.shape[0], *values.shape[1:]), values.dtype)
        out[hit] = values[pos[hit]]
        return [out, hit.astype(np.uint8)]
