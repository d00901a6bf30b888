"""WHILE: loop-carried values ``v``; ``while cond(v): v = body(v)``; outputs the final ``v``.

Output shapes are the input shapes when the body keeps them (checked by preparing the body for
those shapes). A body that changes shapes makes the outputs data-dependent: prepare then keeps
the model's recorded shapes and the real ones appear at eval."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import check_signature, subgraph_output_shapes
from .registry import register


@register(Op.WHILE)
class While(Kernel):
    def prepare(self):
        node = self.node
        o = node.options
        self.cond, self.body = o.cond_subgraph_index, o.body_subgraph_index
        if len(node.inputs) != len(node.outputs):
            raise node.fail(f"{len(node.inputs)} inputs but {len(node.outputs)} outputs")
        if any(t is None for t in node.inputs):
            raise node.fail("WHILE inputs cannot be omitted")
        dtypes = [t.dtype for t in node.inputs]
        check_signature(node, self.cond, dtypes, "cond")
        check_signature(node, self.body, dtypes, "body")
        shapes = [tuple(t.shape) for t in node.inputs]
        runtime = node.runtime
        cond_out = subgraph_output_shapes(runtime, self.cond, shapes)
        if len(cond_out) != 1:
            raise node.fail(f"cond subgraph {self.cond} must have one output")
        body_out = subgraph_output_shapes(runtime, self.body, shapes)
        if len(body_out) != len(shapes):
            raise node.fail(f"body subgraph {self.body} has {len(body_out)} outputs, expected "
                            f"{len(shapes)}")
        self.static = body_out == shapes
        if self.static:
            return shapes
        return [o.shape if o is not None else () for o in node.outputs]

    def eval(self, inputs):
        run = self.node.runtime.run_subgraph
        values = list(inputs)
        while bool(run(self.cond, values)[0].reshape(-1)[0]):
            values = run(self.body, values)
        return values
