"""ONE_HOT: inputs (indices int32/int64, depth (one int32), on_value, off_value); the output
has the indices' shape with a new dimension of size ``depth`` at ``axis`` (-1: last), holding
``on_value`` where the index equals the position along it and ``off_value`` elsewhere (so an
index outside ``[0, depth)`` gives a row of ``off_value``). Output types as LiteRT: float32,
int32, int64, int8, uint8, bool. A ``depth`` computed at run time gives a run-time shape."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._shape import INDEX_DTYPES, ParamKernel, count_param
from .registry import register

VALUE_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8,
                                           np.bool_))


@register(Op.ONE_HOT)
class OneHot(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 4 or any(t is None for t in node.inputs):
            raise node.fail("takes (indices, depth, on_value, off_value)")
        idx, depth, on, off = node.inputs
        if idx.dtype not in INDEX_DTYPES:
            raise node.fail(f"indices must be int32 or int64, got {idx.tensor.type_name}")
        if depth.dtype != np.int32 or int(np.prod(depth.shape)) != 1:
            raise node.fail("depth must be one int32 value")
        if on.dtype not in VALUE_TYPES:
            raise node.fail(f"on/off values of type {on.tensor.type_name} are not supported")
        for t in (on, off):
            if t.dtype != on.dtype or int(np.prod(t.shape)) != 1:
                raise node.fail("on_value and off_value must be single values of one type")
        if node.outputs[0].dtype != on.dtype:
            raise node.fail(f"output type {node.outputs[0].tensor.type_name} differs from the "
                            f"values' {on.tensor.type_name}")
        rank = len(idx.shape)
        # Absent options read as the schema default, 0 (as LiteRT parses them).
        axis = node.options.axis if node.options is not None else 0
        self.axis = rank if axis == -1 else int(axis)
        if not 0 <= self.axis <= rank:
            raise node.fail(f"axis {axis} is outside [-1, {rank}]")
        return super().prepare()

    def params(self, inputs):
        return count_param(self.node, 1, "depth", inputs)

    def shapes(self, depth):
        shape = list(self.node.inputs[0].shape)
        return [tuple(shape[:self.axis] + [depth] + shape[self.axis:])]

    def run(self, depth, inputs):
        idx, _, on, off = inputs
        # LiteRT compares the index converted to a C int with each position.
        idx = idx.astype(np.int64).astype(np.int32) if idx.dtype == np.int64 else idx
        hot = np.expand_dims(idx, self.axis) == np.arange(depth).reshape(
            (depth,) + (1,) * (idx.ndim - self.axis))
        on_v, off_v = np.asarray(on).reshape(()), np.asarray(off).reshape(())
        return [np.where(hot, on_v, off_v).astype(on_v.dtype)]
