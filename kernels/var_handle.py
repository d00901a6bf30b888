"""VAR_HANDLE: the handle of the resource variable named by (container, shared_name): an int32
resource id (numbered as TFLite does), shaped like the RESOURCE output tensor."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import handle_key, resource_id
from .registry import register


@register(Op.VAR_HANDLE)
class VarHandle(Kernel):
    def prepare(self):
        node = self.node
        rid = resource_id(node.runtime, *handle_key(node.options))
        shape = node.outputs[0].shape
        self.value = np.full(shape, rid, np.int32)
        return [shape]

    def eval(self, inputs):
        return [self.value]
