"""WHILE: loop-carried values ``v``; ``while cond(v): v = body(v)``; outputs the final ``v``.

Output shapes are the input shapes when the body keeps them (checked by preparing the body for
those shapes). A body that changes shapes makes the outputs data-dependent: prepare then keeps
the model's recorded shapes and the real ones appear at eval.

A loop that can never end is refused instead of hanging: when the body and condition have no
side effects and a body run leaves every loop value as it was while the condition still holds,
every later iteration repeats that one, so the op fails with a ModelError naming it. (Loops
that cycle through several states are not detected.)"""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import called_subgraphs, check_signature, pure_subgraphs, subgraph_output_shapes
from .registry import register


@register(Op.WHILE)
class While(Kernel):
    def prepare(self):
        node = self.node
        self.cond, self.body = called_subgraphs(node, "cond_subgraph_index",
                                                "body_subgraph_index")
        self.pure = pure_subgraphs(node.runtime.model, [self.cond, self.body])
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
        flag = runtime.model.subgraphs[self.cond].outputs[0]
        if flag.numpy_dtype != np.bool_ or math.prod(cond_out[0]) != 1:
            raise node.fail(f"cond subgraph {self.cond} must give one bool, its output "
                            f"{flag.name!r} is {flag.type_name}{list(cond_out[0])}")
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
        steps = 0
        while bool(run(self.cond, values)[0].reshape(-1)[0]):
            new = run(self.body, values)
            steps += 1
            if self.pure and _unchanged(values, new):
                raise self.node.fail(
                    f"the loop never ends: iteration {steps} of body subgraph {self.body} left "
                    f"every loop value unchanged while condition subgraph {self.cond} still "
                    "holds (both are free of side effects)")
            values = new
        return values


def _unchanged(old: list, new: list) -> bool:
    """Whether the loop values are the same after a body run (smallest compared first: a
    counter usually tells at once). NaNs compare unequal, so a NaN state never counts as a
    fixed point."""
    pairs = sorted(zip(old, new), key=lambda p: getattr(p[1], "size", 0))
    for a, b in pairs:
        if a is b:
            continue
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
            return False
    return True
