"""BUCKETIZE: for each element the number of ``boundaries`` (a sorted float list in the options)
that are ``<=`` it, as int32 (``std::upper_bound``). float32, float64, int32 and int64 inputs;
as in C++ the comparison converts integers to float32 and the boundaries to float64 for
float64 inputs. NaN lands after every boundary. Unsorted boundaries are refused."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from .registry import register


@register(Op.BUCKETIZE)
class Bucketize(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or node.inputs[0] is None:
            raise node.fail("takes one input")
        check_types(node, (np.float32, np.float64, np.int32, np.int64))
        if node.outputs[0].dtype != np.int32:
            raise node.fail(f"output must be int32, got {node.outputs[0].tensor.type_name}")
        b = node.options.boundaries
        self.bounds = np.asarray(b if b is not None else (), np.float32)
        if np.any(self.bounds[1:] < self.bounds[:-1]):
            raise node.fail(f"boundaries {self.bounds.tolist()} are not sorted")
        return [node.inputs[0].shape]

    def eval(self, inputs):
        x = inputs[0]
        if x.dtype == np.float64:
            keys, bounds = x, self.bounds.astype(np.float64)
        else:
            keys, bounds = x.astype(np.float32), self.bounds
        return [np.searchsorted(bounds, keys, side="right").astype(np.int32)]
