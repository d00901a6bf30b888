"""READ_VARIABLE: the current value of the resource variable whose handle is input 0."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import resource_of
from .registry import register


@register(Op.READ_VARIABLE)
class ReadVariable(Kernel):
    def prepare(self):
        # The value's shape is the one last assigned; the model records it.
        return [self.node.outputs[0].shape]

    def eval(self, inputs):
        node = self.node
        rid = resource_of(node, inputs[0])
        value = node.runtime.resources.get(rid)
        if value is None:
            raise node.fail(f"resource variable {rid} is read before it is assigned")
        want = node.outputs[0].dtype
        if want is not None and value.dtype != want:
            raise node.fail(f"resource variable {rid} holds {value.dtype}, read as {want}")
        return [value]
