"""CALL_ONCE: runs its init subgraph (no inputs, no outputs: typically resource-variable
initialization) the first time it is invoked on an interpreter, never again."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import called_subgraphs
from .registry import register


@register(Op.CALL_ONCE)
class CallOnce(Kernel):
    def prepare(self):
        node = self.node
        (self.init,) = called_subgraphs(node, "init_subgraph_index")
        sg = node.runtime.model.subgraphs[self.init]
        if sg.inputs or sg.outputs:
            raise node.fail(f"init subgraph {self.init} must have no inputs or outputs")
        return []

    def eval(self, inputs):
        runtime = self.node.runtime
        if self.init not in runtime.called_once:
            runtime.run_subgraph(self.init, [])
            runtime.called_once.add(self.init)
        return []
