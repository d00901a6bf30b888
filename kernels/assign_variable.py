"""ASSIGN_VARIABLE: stores (a copy of) input 1 as the value of the resource variable whose
handle is input 0; the value persists across invokes."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import resource_of
from .registry import register


@register(Op.ASSIGN_VARIABLE)
class AssignVariable(Kernel):
    def prepare(self):
        return []

    def eval(self, inputs):
        node = self.node
        node.runtime.resources[resource_of(node, inputs[0])] = np.array(inputs[1], copy=True)
        return []
