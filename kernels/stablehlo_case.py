"""STABLEHLO_CASE: input 0 is a one-element int32 branch index, the other inputs go to the
chosen branch subgraph, whose outputs are the op's outputs. An index outside
``[0, number of branches)`` selects the last branch (StableHLO's rule, as LiteRT applies it).
When every branch gives the same output shapes those are the output shapes; otherwise they
depend on the index (kept as recorded until eval)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import branch_output_shapes
from .registry import register


@register(Op.STABLEHLO_CASE)
class StablehloCase(Kernel):
    def prepare(self):
        node = self.node
        o = node.stored_options
        branches = getattr(o, "branch_subgraph_indices", None)
        if not branches:
            raise node.fail("STABLEHLO_CASE has no branch subgraphs")
        n = len(node.runtime.model.subgraphs)
        self.branches = [int(b) for b in branches]
        for k, si in enumerate(self.branches):
            if not 0 <= si < n:
                raise node.fail(f"branch {k} = subgraph {si} is not a subgraph (the model has "
                                f"{n})")
            if si == node.subgraph:
                raise node.fail(f"branch {k} is the case's own subgraph {si}")
        if not node.inputs or node.inputs[0] is None:
            raise node.fail("STABLEHLO_CASE needs an index input")
        idx = node.inputs[0]
        if idx.dtype != np.int32 or math.prod(idx.shape) != 1:
            raise node.fail(f"index must be a one-element int32, got {idx.dtype}"
                            f"{list(idx.shape)}")
        args = node.inputs[1:]
        if any(t is None for t in args):
            raise node.fail("a case's branch inputs cannot be omitted")
        shapes = branch_output_shapes(
            node, [(si, f"branch {k}") for k, si in enumerate(self.branches)], args)
        types = {t.numpy_dtype for si in self.branches
                 for t in node.runtime.model.subgraphs[si].outputs if t is not None}
        if len(types) > 1:
            raise node.fail("the branches' outputs differ in type: "
                            f"{sorted(str(t) for t in types)}")
        return shapes

    def eval(self, inputs):
        k = int(np.asarray(inputs[0]).reshape(-1)[0])
        if not 0 <= k < len(self.branches):
            k = len(self.branches) - 1
        return self.node.runtime.run_subgraph(self.branches[k], list(inputs[1:]))
