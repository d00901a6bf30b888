"""STABLEHLO_COMPOSITE: a named composite (``odml.rms_norm``, ``odml.scaled_dot_product_attention``
...; ai-edge-torch and JAX exports) whose meaning is its decomposition subgraph: the op's inputs
go to that subgraph and its outputs are the op's outputs, as LiteRT runs it. The name, version
and attributes (a FlexBuffer) are carried but not interpreted; LiteRT refuses a composite
without ``composite_attributes``, and so do we."""

from __future__ import annotations

from workbench.ir.ops import Op

from ._common import Kernel
from ._control_flow import branch_output_shapes, called_subgraphs
from .registry import register


@register(Op.STABLEHLO_COMPOSITE)
class StablehloComposite(Kernel):
    def prepare(self):
        node = self.node
        (self.body,) = called_subgraphs(node, "decomposition_subgraph_index")
        if self.body == node.subgraph:
            raise node.fail(f"decomposition subgraph {self.body} is the composite's own")
        opts = node.options
        if getattr(opts, "composite_attributes", None) is None:
            raise node.fail(f"composite {getattr(opts, 'name', None)!r} has no "
                            "composite_attributes (LiteRT requires them)")
        args = node.inputs
        if any(t is None for t in args):
            raise node.fail("a composite's inputs cannot be omitted")
        return branch_output_shapes(node, [(self.body, "decomposition")], args)

    def eval(self, inputs):
        return self.node.runtime.run_subgraph(self.body, list(inputs))
