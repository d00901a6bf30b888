"""Helpers of the control-flow and resource-variable kernels (WHILE, IF, CALL_ONCE, VAR_HANDLE):
preparing a called subgraph for given input shapes, and TFLite's resource-id numbering."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op
from workbench.ir.verify import called


def subgraph_output_shapes(runtime, si: int, shapes: list[tuple[int, ...]]
                           ) -> list[tuple[int, ...]]:
    """Prepare subgraph ``si`` for input ``shapes`` (so missing kernels and shape errors surface
    at allocate time) and return its output shapes. The plan is stored where
    ``runtime.run_subgraph`` looks for it, so it is prepared once per input shapes."""
    public = getattr(runtime, "prepare_subgraph", None)
    if public is not None:
        return public(si, shapes)
    sg = runtime.model.subgraphs[si]
    index = {id(t): i for i, t in enumerate(sg.tensors)}
    in_idx = [index[id(t)] for t in sg.inputs]
    key = (si, tuple(tuple(int(d) for d in s) for s in shapes))
    plan = runtime._sub_plans.get(key)
    if plan is None:
        plan = runtime._prepare(si, dict(zip(in_idx, key[1])))
        runtime._sub_plans[key] = plan
    return [plan.shapes[index[id(t)]] for t in sg.outputs]


def called_subgraphs(node, *fields: str) -> list[int]:
    """The subgraph indices ``fields`` of the node's options (e.g. WHILE's cond and body), each
    checked to name a subgraph of the model. A missing options table is a malformed model: the
    schema's zero default would call subgraph 0, the caller."""
    o = node.stored_options  # not the schema defaults: subgraph 0 would be the caller
    n = len(node.runtime.model.subgraphs)
    out = []
    for f in fields:
        si = getattr(o, f, None) if o is not None else None
        if si is None:
            raise node.fail(f"{node.op.name} has no options giving {f}")
        si = int(si)
        if not 0 <= si < n:
            raise node.fail(f"{f} {si} is not a subgraph (the model has {n})")
        out.append(si)
    return out


#: Operators with effects beyond their outputs (or unknown effects): a loop whose body or
#: condition reaches one may make progress that its loop-carried values do not show.
_EFFECTFUL = {Op.ASSIGN_VARIABLE, Op.CALL_ONCE, Op.CUSTOM, Op.RANDOM_UNIFORM,
              Op.RANDOM_STANDARD_NORMAL, Op.MULTINOMIAL, Op.STABLEHLO_RNG_BIT_GENERATOR,
              Op.HASHTABLE_IMPORT}


def pure_subgraphs(model, roots: list[int]) -> bool:
    """Whether subgraphs ``roots`` and every subgraph they call are free of side effects (no
    variable writes, CALL_ONCE, custom or random ops), so that running them twice on the same
    inputs gives the same outputs."""
    seen, todo = set(), list(roots)
    while todo:
        si = todo.pop()
        if si in seen:
            continue
        seen.add(si)
        for op in model.subgraphs[si].operators:
            if op.code in _EFFECTFUL or op.opcode.custom_code:
                return False
            todo.extend(v for _, v in called(op) if 0 <= v < len(model.subgraphs))
    return True


def branch_output_shapes(node, branches: list[tuple[int, str]], args) -> list:
    """Prepare each called subgraph ``(index, what)`` of ``branches`` for the argument tensors
    ``args`` (IF's branches, STABLEHLO_CASE's, a composite's decomposition): each must take
    their types and give one output per node output. Returns the output shapes when every
    branch gives the same ones, else the recorded shapes (known only once a branch ran)."""
    dtypes = [t.dtype if t is not None else None for t in args]
    shapes = [tuple(t.shape) if t is not None else () for t in args]
    outs = []
    for si, what in branches:
        check_signature(node, si, dtypes, what)
        got = subgraph_output_shapes(node.runtime, si, shapes)
        if len(got) != len(node.outputs):
            raise node.fail(f"{what} subgraph {si} has {len(got)} outputs, expected "
                            f"{len(node.outputs)}")
        outs.append(got)
    if all(o == outs[0] for o in outs):
        return outs[0]
    return [o.shape if o is not None else () for o in node.outputs]


def check_signature(node, si: int, dtypes: list, what: str) -> None:
    """The subgraph's inputs must take ``dtypes`` (None entries are not checked)."""
    sg = node.runtime.model.subgraphs[si]
    if len(sg.inputs) != len(dtypes):
        raise node.fail(f"{what} subgraph {si} takes {len(sg.inputs)} inputs, got {len(dtypes)}")
    for k, (t, dt) in enumerate(zip(sg.inputs, dtypes)):
        if dt is not None and t.numpy_dtype is not None and t.numpy_dtype != dt:
            raise node.fail(f"{what} subgraph {si} input {k} is {t.numpy_dtype}, got {dt}")


def resource_id(runtime, container: str, shared_name: str) -> int:
    """TFLite numbers resources by (container, shared_name) in the order VAR_HANDLE ops appear,
    subgraph by subgraph, when the interpreter is built; we number the whole model that way on
    first use so ids (the value of RESOURCE tensors) agree with LiteRT's."""
    ids = runtime.resource_ids
    if not ids:
        for sg in runtime.model.subgraphs:
            for op in sg.operators:
                if op.code == Op.VAR_HANDLE:
                    key = handle_key(op.options)
                    if key not in ids:
                        ids[key] = len(ids)
    key = (container, shared_name)
    if key not in ids:
        ids[key] = len(ids)
    return ids[key]


def handle_key(options) -> tuple[str, str]:
    if options is None:
        return ("", "")
    return (options.container or "", options.shared_name or "")


def resource_of(node, value) -> int:
    """The resource id held by a RESOURCE tensor's value."""
    arr = np.asarray(value).reshape(-1)
    if arr.size != 1:
        raise node.fail(f"resource handle has {arr.size} elements, expected 1")
    return int(arr[0])
