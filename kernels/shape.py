"""SHAPE: the input's shape as an int32 or int64 vector: ``ShapeOptions.out_type``, which
LiteRT requires (an op without options, or of another out_type, is refused at prepare) and
which must be the output tensor's type. Known at prepare and published as a known value, so
shape arithmetic downstream (STRIDED_SLICE, PACK, ... into RESHAPE) resolves at prepare and
resizes propagate."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import NUMPY_DTYPE, Op

from ._common import Kernel
from ._shape import INDEX_DTYPES
from .registry import register


@register(Op.SHAPE)
class Shape(Kernel):
    def prepare(self):
        node = self.node
        out = node.outputs[0]
        if out.dtype not in INDEX_DTYPES:
            raise node.fail(f"output type must be int32 or int64, got {out.dtype}")
        want = NUMPY_DTYPE.get(int(getattr(node.options, "out_type", -1)))
        if want not in INDEX_DTYPES:
            raise node.fail("ShapeOptions.out_type must be INT32 or INT64 (LiteRT refuses "
                            "a SHAPE without it)")
        if want != out.dtype:
            raise node.fail(f"ShapeOptions.out_type is {want} but the output is {out.dtype}")
        shape = node.inputs[0].shape
        self.value = np.asarray(shape, dtype=out.dtype).reshape(len(shape))
        self.value.flags.writeable = False
        out.data = self.value  # known now: downstream shape arithmetic resolves at prepare
        return [(len(shape),)]

    def eval(self, inputs):
        return [self.value.copy()]
