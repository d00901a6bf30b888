"""STRIDED_SLICE with TFLite's semantics (any dtype):

* ``begin``/``end``/``strides`` are int32 vectors of the same length (the "spec"); missing
  trailing dimensions are taken whole;
* ``begin_mask``/``end_mask`` bits take the whole range in that direction, ``shrink_axis_mask``
  bits keep one element and drop the dimension, ``new_axis_mask`` bits insert a size-1
  dimension and ``ellipsis_mask`` stands for as many whole dimensions as needed, expanded the
  way LiteRT expands it;
* negative indices count from the end and are clamped (to ``[0, n]`` going forward,
  ``[-1, n-1]`` going backward), negative strides walk backward;
* the ``offset`` option makes ``end`` relative to ``begin`` (``end = begin + size``), so the
  output shape is known from ``end`` and ``strides`` even when ``begin`` is a runtime value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import (
    int_list,
    mark_dynamic,
    param_value,
    require_dense,
    require_same_dtype,
)
from .registry import register


def _bit(mask: int, i: int) -> bool:
    return bool((mask >> i) & 1)


@dataclass
class _Dim:
    size: int           # size of this dimension of the (new-axis extended) input
    begin: int = 0
    end: int = 0
    stride: int = 1
    begin_mask: bool = False
    end_mask: bool = False
    shrink: bool = False
    orig: int = -1      # index into the spec, -1 for dimensions the spec does not name

    def start(self) -> int:
        n, s = self.size, self.begin
        if s < 0:
            s += n
        s = min(max(s, 0), n) if self.stride > 0 else min(max(s, -1), n - 1)
        if self.begin_mask:
            s = 0 if self.stride > 0 else n - 1
        return s

    def stop(self, start: int, offset: bool) -> int:
        n = self.size
        if self.shrink:
            return start if start >= n else start + 1
        e = self.end + (start if offset else 0)
        if e < 0:
            e += n
        e = min(max(e, 0), n) if self.stride > 0 else min(max(e, -1), n - 1)
        if self.end_mask:
            e = n if self.stride > 0 else -1
        return e


def _count(extent: int, stride: int) -> int:
    """Elements visited walking ``extent`` (end - begin) with ``stride``."""
    if (extent < 0) != (stride < 0):
        return 0
    if stride < 0:
        return (extent + 1) // stride + 1
    return 0 if extent == 0 else (extent - 1) // stride + 1


def expand(node, in_shape, n_spec: int, begin, end, strides) -> list[_Dim]:
    """The effective dimensions: new axes inserted, the ellipsis expanded, masks moved onto
    the effective dimension they apply to (``begin``/``end`` may be None: not known yet)."""
    o = node.options
    ell, new = int(o.ellipsis_mask), int(o.new_axis_mask)
    rank = len(in_shape)
    num_add = sum(1 for i in range(n_spec) if _bit(new, i) and not _bit(ell, i))
    eff = rank + num_add
    eff_ell, eff_new = set(), set()
    ell_start, expanded = eff, 0
    i = 0
    while i < eff:
        if _bit(ell, i):
            ell_start = i
            ell_end = max(i + 1, min(i + 1 + num_add + rank - n_spec, eff))
            expanded = ell_end - ell_start - 1
            eff_ell.update(range(i, ell_end))
            i = ell_end
            continue
        if _bit(new, i - expanded):
            eff_new.add(i)
        i += 1

    def size_at(j: int) -> int:
        if not 0 <= j < rank:
            raise node.fail(f"the slice spec does not fit an input of rank {rank}")
        return in_shape[j]

    dims: list[_Dim] = []
    added_ell = added_axes = 0
    for i in range(eff):
        if i in eff_ell:
            added_ell = max(0, i - ell_start)
            dims.append(_Dim(size_at(i - added_axes), begin_mask=True, end_mask=True))
        elif i in eff_new:
            dims.append(_Dim(1, 0, 1, 1))
            added_axes += 1
        elif i >= n_spec + expanded:
            dims.append(_Dim(size_at(i - added_axes), begin_mask=True, end_mask=True))
        else:
            k = i - added_ell
            dims.append(_Dim(size_at(i - added_axes),
                             begin[k] if begin is not None else 0,
                             end[k] if end is not None else 0,
                             strides[k], _bit(int(o.begin_mask), k), _bit(int(o.end_mask), k),
                             _bit(int(o.shrink_axis_mask), k), k))
    if eff - added_axes != rank:
        raise node.fail(f"the slice spec does not fit an input of rank {rank}")
    if any(not 0 <= d.orig < n_spec for d in dims if d.orig >= 0):
        raise node.fail("the slice spec is shorter than the dimensions it names")
    for d in dims:
        if d.stride == 0:
            raise node.fail("stride value has to be non-zero")
        if d.stride == -(2**31):  # LiteRT refuses it (negating it overflows int32)
            raise node.fail("stride value INT32_MIN is not supported")
    return dims


@register(Op.STRIDED_SLICE)
class StridedSlice(Kernel):
    def _spec(self, inputs):
        node = self.node
        b, e, s = (param_value(node, k, inputs) for k in (1, 2, 3))
        return (None if v is None else int_list(v) for v in (b, e, s))

    def prepare(self):
        node = self.node
        if len(node.inputs) != 4:
            raise node.fail("takes (input, begin, end, strides)")
        x = node.inputs[0]
        require_dense(node, 0)
        require_same_dtype(node, x, node.outputs[0])
        for k, what in ((1, "begin"), (2, "end"), (3, "strides")):
            t = node.inputs[k]
            if t is None or len(t.shape) != 1 or t.dtype != np.int32:
                raise node.fail(f"{what} must be a 1-D int32 tensor")
        self.n_spec = node.inputs[1].shape[0]
        if node.inputs[2].shape[0] != self.n_spec or node.inputs[3].shape[0] != self.n_spec:
            raise node.fail("begin, end and strides must have the same length")
        self.offset = bool(getattr(node.options, "offset", False))
        self.plan = None
        begin, end, strides = self._spec(None)
        if strides is None or end is None or (begin is None and not self.offset):
            mark_dynamic(node)
            return [node.outputs[0].shape]
        dims = expand(node, x.shape, self.n_spec, begin, end, strides)
        if begin is None:  # offset mode: sizes are known, positions are not
            shape = []
            for d in dims:
                if d.shrink:
                    continue
                if d.orig < 0 or d.begin_mask or d.end_mask:
                    s = d.start()
                    shape.append(_count(d.stop(s, False) - s, d.stride))
                else:
                    shape.append(_count(d.end, d.stride))
            return [tuple(shape)]
        self.plan = self._index(dims)
        return [self.plan[2]]

    def _index(self, dims):
        """(extended input shape, numpy index, output shape) for resolved dimensions."""
        idx, out = [], []
        for d in dims:
            s = d.start()
            e = d.stop(s, self.offset)
            if d.shrink:
                if not 0 <= s < d.size:
                    raise self.node.fail(f"shrink index {d.begin} is outside a dimension of "
                                         f"size {d.size}")
                idx.append(s)
                continue
            n = _count(e - s, d.stride)
            out.append(n)
            if n == 0:
                idx.append(slice(0, 0))
            elif d.stride > 0:
                idx.append(slice(s, e, d.stride))
            else:
                idx.append(slice(s, e if e >= 0 else None, d.stride))
        return tuple(d.size for d in dims), tuple(idx), tuple(out)

    def eval(self, inputs):
        x = inputs[0]
        plan = self.plan
        if plan is None:
            begin, end, strides = self._spec(inputs)
            plan = self._index(expand(self.node, x.shape, self.n_spec, begin, end, strides))
        shape, idx, out = plan
        y = x.reshape(shape)[idx]
        return [np.ascontiguousarray(y).reshape(out)]
