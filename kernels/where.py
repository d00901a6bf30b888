"""WHERE (one input): the coordinates of the true (non-zero) elements of the input, as an int64
``[count, rank]`` tensor in row-major order. bool, float32, int32, int64, int8, uint8 and
uint32 inputs. The output's first dimension depends on the values: with a run-time input it
is known at eval."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types
from ._shape import ParamKernel, param_value
from .registry import register

TYPES = (np.bool_, np.float32, np.int32, np.int64, np.int8, np.uint8, np.uint32)


@register(Op.WHERE)
class Where(ParamKernel, Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or node.inputs[0] is None:
            raise node.fail("takes one input (the three-input form is SELECT/SELECT_V2)")
        # Non-zero-ness of the stored values, scale or not.
        check_types(node, (), raw=TYPES)
        if node.outputs[0].dtype != np.int64:
            raise node.fail(f"output must be int64, got {node.outputs[0].tensor.type_name}")
        return super().prepare()

    def params(self, inputs):
        x = param_value(self.node, 0, inputs)
        return None if x is None else np.argwhere(np.asarray(x)).astype(np.int64)

    def shapes(self, coords):
        return [coords.shape]

    def run(self, coords, inputs):
        return [coords]
