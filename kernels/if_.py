"""IF: input 0 is a one-element bool condition; the other inputs go to the then or else
subgraph, whose outputs are the op's outputs. When both branches give the same shapes those are
the output shapes; otherwise they depend on the condition (kept as recorded until eval)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import branch_output_shapes, called_subgraphs
from .registry import register


@register(Op.IF)
class If(Kernel):
    def prepare(self):
        node = self.node
        self.then, self.else_ = called_subgraphs(node, "then_subgraph_index",
                                                 "else_subgraph_index")
        if not node.inputs or node.inputs[0] is None:
            raise node.fail("IF needs a condition input")
        c = node.inputs[0]
        if c.dtype != np.bool_ or math.prod(c.shape) != 1:
            raise node.fail(f"condition must be a one-element bool, got {c.dtype}"
                            f"{list(c.shape)}")
        return branch_output_shapes(node, [(self.then, "then"), (self.else_, "else")],
                                    node.inputs[1:])

    def eval(self, inputs):
        branch = self.then if bool(np.asarray(inputs[0]).reshape(-1)[0]) else self.else_
        return self.node.runtime.run_subgraph(branch, list(inputs[1:]))
