"""A ``tf.lite.Interpreter``-compatible interpreter over the IR with numpy reference kernels.

The loop is plan ▸ prepare ▸ eval: :meth:`Interpreter.allocate_tensors` walks each subgraph in
execution order, creating one kernel per operator and letting it compute output shapes (so
resized inputs propagate); :meth:`Interpreter.invoke` then calls each kernel's ``eval`` with
numpy arrays. Hooks (per-op timing, tensor capture) run in this loop, never inside kernels.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

import numpy as np

from workbench.errors import InputError, ModelError, OpError, WorkbenchError
from workbench.ir.graph import Model, Tensor, to_bytes_item
from workbench.ir.ops import Op, TensorType
from workbench.kernels._common import Kernel, Node, TensorInfo
from workbench.kernels._shape import fold_known_values
from workbench.kernels.registry import lookup

from .threads import blas_threads


class Hook:
    """Base class of interpreter hooks; override what you need."""

    def before_op(self, node: Node, inputs: list) -> None:  # noqa: D401
        pass

    def after_op(self, node: Node, outputs: list) -> None:
        pass


class TimingHook(Hook):
    """Wall time per operator of the last invoke: ``self.times[(subgraph, op_index)]`` seconds."""

    def __init__(self):
        self.times: dict[tuple[int, int], float] = {}
        self._t0 = 0.0

    def before_op(self, node, inputs):
        self._t0 = time.perf_counter()

    def after_op(self, node, outputs):
        self.times[(node.subgraph, node.index)] = time.perf_counter() - self._t0


class CaptureHook(Hook):
    """Copies of every operator output of the last invoke, keyed by tensor name."""

    def __init__(self, names: Iterable[str] | None = None):
        self.names = set(names) if names is not None else None
        self.tensors: dict[str, np.ndarray] = {}

    def after_op(self, node, outputs):
        for info, arr in zip(node.outputs, outputs):
            if info is not None and (self.names is None or info.name in self.names):
                self.tensors[info.name] = np.array(arr, copy=True)


_OBJECT = np.dtype(object)


def _np_type(t: Tensor):
    """The ``dtype`` of LiteRT's tensor details: the numpy scalar type; ``np.bytes_`` for
    STRING tensors (whose values are nevertheless ``object`` arrays of ``bytes``)."""
    d = t.numpy_dtype
    return d.type if d is not None else (np.bytes_ if t.dtype == TensorType.STRING else None)


def _value_dtype(t: Tensor) -> np.dtype | None:
    """The dtype of the tensor's values here: its numpy type; ``object`` (arrays of ``bytes``)
    for STRING tensors; None for types with no values (RESOURCE handles are int32 arrays)."""
    d = t.numpy_dtype
    return d if d is not None or t.dtype != TensorType.STRING else _OBJECT


def _constant(t: Tensor) -> np.ndarray | None:
    """A constant tensor's value: the buffer view, or for STRING tensors the decoded strings."""
    return t.strings if t.dtype == TensorType.STRING else t.data


def _string_array(value, t: Tensor, where: str) -> np.ndarray:
    """``value`` for STRING tensor ``t`` as LiteRT's ``set_tensor`` takes it: a numpy array of
    ``bytes``-like (``S``), ``str`` (``U``, UTF-8 encoded) or ``object`` elements that are
    ``bytes`` or ``str``; returned as an ``object`` array of ``bytes``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "SUO":
        raise InputError(f"Cannot set tensor: Got value of type {arr.dtype} but expected type "
                         f"STRING for {where}, name: {t.name}")
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    try:
        for k, v in enumerate(arr.reshape(-1).tolist()):
            flat[k] = to_bytes_item(v)
    except TypeError as e:
        raise InputError(f"Cannot set tensor: {e} ({where}, name: {t.name})") from None
    return out


def _unset_value(t: Tensor, shape) -> np.ndarray:
    """What ``get_tensor`` shows of a tensor no run has written: zeros (empty ``bytes`` for
    STRING tensors; LiteRT itself crashes reading an unset string tensor)."""
    if t.dtype == TensorType.STRING:
        return np.full(tuple(shape), b"", dtype=object)
    return np.zeros(shape, t.numpy_dtype or np.float32)


def _variable_start(t) -> np.ndarray | None:
    """A variable tensor's value after allocation or ``reset_all_variables``: its data if it
    has some, else LiteRT's reset value, zero bytes, except int8 tensors, whose bytes are set to
    their zero point (the quantized 0: an integer LSTM's output state starts there)."""
    if t.data is not None:
        return np.array(_constant(t))
    dt = t.numpy_dtype
    if dt is None:
        return None
    q = t.quantization
    if dt == np.int8 and q is not None and q.zero_point.size == 1:
        return np.full(t.shape, q.zero_point[0], np.int8)
    return np.zeros(t.shape, dt)


def _empty_constant(t: Tensor, shape) -> np.ndarray | None:
    """A tensor with zero elements has no buffer bytes, so it does not look constant; its value
    is nevertheless known (empty). Produced tensors are not constants, whatever their size."""
    dt = _value_dtype(t)
    if dt is None or t.is_variable or 0 not in tuple(shape):
        return None
    try:
        return np.zeros(shape, dt)
    except ValueError as e:  # numpy refuses even empty arrays whose other dims overflow
        raise ModelError(f"tensor {t.name!r} of shape {list(shape)} cannot be an array: {e}"
                         ) from e


#: Ops whose run matters beyond their outputs: never skipped for having empty outputs.
_EFFECTFUL_OPS = frozenset({Op.WHILE, Op.IF, Op.CALL_ONCE, Op.ASSIGN_VARIABLE, Op.READ_VARIABLE,
                            Op.VAR_HANDLE, Op.CUSTOM, Op.HASHTABLE, Op.HASHTABLE_FIND,
                            Op.HASHTABLE_IMPORT, Op.HASHTABLE_SIZE})


def _skip_if_empty(node: Node, kernel) -> None:
    """A node whose outputs all have zero elements (shapes fixed at prepare) has one possible
    result, the empty arrays, so its eval is not run (as TFLite's kernels return early on an
    empty output); that spares every kernel its reshape(-1) and reduction corner cases."""
    outs = node.outputs
    if not outs or node.op.code in _EFFECTFUL_OPS or any(
            o is None or o.dtype is None or o.dynamic or 0 not in o.shape for o in outs):
        return
    empties = [np.zeros(o.shape, o.dtype) for o in outs]
    kernel.eval = lambda inputs, _out=empties: list(_out)


#: Ops LiteRT 2.3's built-in kernels run on STRING tensors (found by experiment, see
#: tests/kernels/test_strings.py); control flow passes them through and custom ops decide.
_STRING_OPS = frozenset({
    Op.RESHAPE, Op.GATHER, Op.GATHER_ND, Op.SLICE, Op.STRIDED_SLICE, Op.TILE, Op.EXPAND_DIMS,
    Op.SQUEEZE, Op.EQUAL, Op.NOT_EQUAL, Op.FILL, Op.SHAPE, Op.RANK, Op.HASHTABLE_FIND,
    Op.HASHTABLE_IMPORT, Op.HASHTABLE_LOOKUP, Op.LSH_PROJECTION, Op.SKIP_GRAM, Op.WHILE, Op.IF,
    Op.CALL_ONCE, Op.CUSTOM})
#: Ops LiteRT prepares with STRING tensors but refuses when invoked; every other op not in
#: :data:`_STRING_OPS` refuses them at prepare (allocate_tensors).
_STRING_REFUSED_AT_INVOKE = frozenset({
    Op.TRANSPOSE, Op.SELECT, Op.SELECT_V2, Op.ZEROS_LIKE, Op.PAD, Op.CAST, Op.UNIQUE,
    Op.MIRROR_PAD, Op.DYNAMIC_UPDATE_SLICE, Op.BATCH_TO_SPACE_ND, Op.ADD, Op.TOPK_V2,
    Op.MAXIMUM})


class _RefusedAtInvoke(Kernel):
    """Stands for an op LiteRT prepares but refuses to run (STRING tensors in TRANSPOSE...):
    the recorded output shapes at prepare, the error at invoke."""

    def prepare(self):
        self.error = self.node.fail(_string_refusal_message(self.node))
        return [o.shape if o is not None else () for o in self.node.outputs]

    def eval(self, inputs):
        raise self.error


def _string_tensors(node: Node) -> list[str]:
    return [f"{kind} {k}" for kind, infos in (("input", node.inputs), ("output", node.outputs))
            for k, t in enumerate(infos)
            if t is not None and t.tensor.dtype == TensorType.STRING]


def _string_refusal_message(node: Node) -> str:
    return (f"LiteRT's {node.op.name} does not take STRING tensors "
            f"({', '.join(_string_tensors(node))})")


def _string_guard(node: Node, cls):
    """The kernel class to prepare ``node`` with, given LiteRT's support of STRING tensors:
    ``cls`` itself, :class:`_RefusedAtInvoke`, or a ``ModelError`` raised here (at prepare)."""
    if not _string_tensors(node):
        return cls
    code = node.op.code
    if code in _STRING_OPS:
        if code == Op.GATHER and node.inputs and node.inputs[0] is not None \
                and node.inputs[0].tensor.dtype == TensorType.STRING \
                and len(node.inputs[0].shape) != 1:
            raise node.fail(f"LiteRT gathers STRING params of rank 1 only, got shape "
                            f"{list(node.inputs[0].shape)}")
        return cls
    if code in _STRING_REFUSED_AT_INVOKE:
        return _RefusedAtInvoke
    raise node.fail(_string_refusal_message(node))


def _prepared(cls, node: Node):
    """A new kernel of class ``cls`` for ``node``, prepared: ``(kernel, output shapes)``, its
    outputs' values published when its inputs are all known (:func:`fold_known_values`); any
    failure as one typed error naming the op (see :func:`_op_failure`)."""
    try:
        kernel = cls(node)
        shapes = kernel.prepare()
        fold_known_values(kernel, shapes)
        return kernel, shapes
    except Exception as e:  # noqa: BLE001 - one typed error naming the op
        err = _op_failure(e, node.path, "prepare")
        if err is e:
            raise
        raise err from e


def _op_failure(e: Exception, path: str, stage: str) -> Exception:
    """What to raise for exception ``e`` out of a kernel's ``prepare``/``eval``: a
    ``WorkbenchError`` as it is (a ``ModelError`` from a helper that could not know the op gets
    the op's path), anything else as one ``OpError`` naming the op."""
    if isinstance(e, ModelError) and not e.path:
        return ModelError(e.reason, path)
    if isinstance(e, WorkbenchError):
        return e
    return OpError.wrap(e, path, stage)


def _block_size(q) -> int:
    """Block size of blockwise quantization (LiteRT >= 2.3 reports it; 0 otherwise)."""
    if q is None or q.details is None or q.details[0] != "BlockwiseQuantization":
        return 0
    return int(q.details[1].get("block_size", 0))


#: Kernels a plan keeps from run-time re-prepares; past this the cache starts over (a loop over
#: a very long sequence would otherwise keep one kernel per node and step).
_KERNEL_CACHE_LIMIT = 4096


class _SubgraphPlan:
    def __init__(self, nodes: list[Node], kernels: list, shapes: dict[int, tuple]):
        self.nodes = nodes
        self.kernels = kernels
        self.shapes = shapes
        #: Kernels prepared at run time, by (position, state of the inputs prepare reads):
        #: a WHILE body whose TensorList-style tensors grow step by step sees the same shapes
        #: on every invoke, so it re-prepares once and then reuses (see ``_reprepare``).
        self.kernel_cache: dict[tuple, tuple] = {}


#: Published values up to this many elements key the kernel cache by content (shape
#: arithmetic that recomputes equal values), larger ones by identity.
_CONTENT_KEY_LIMIT = 1 << 16


class _Same:
    """A cache-key part equal only to one array object (which it keeps alive)."""

    __slots__ = ("a",)

    def __init__(self, a: np.ndarray):
        self.a = a

    def __hash__(self) -> int:
        return id(self.a)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Same) and other.a is self.a


def _input_state(node: Node) -> tuple:
    """What a kernel's ``prepare`` reads of its inputs: shapes, the dynamic flag and values known
    at prepare time (constants, or values published by upstream prepares). Two prepares that
    see the same state compute the same kernel."""
    state = []
    for t in node.inputs:
        if t is None:
            state.append(None)
            continue
        d = t.data
        if d is None:
            value = None
        elif t.tensor.is_constant:
            value = True  # the model's buffer: fixed for the life of the plan
        elif d.size > _CONTENT_KEY_LIMIT:  # e.g. dequantized weights: by identity, not bytes
            value = _Same(d)
        elif d.dtype == _OBJECT:  # strings: by value (tobytes would give the pointers)
            value = ("O", d.shape, tuple(d.reshape(-1).tolist()))
        else:
            value = (d.dtype.str, d.shape, d.tobytes())
        state.append((t.shape, t.dynamic, value))
    return tuple(state)


def _same_value(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is b:
        return True
    if a is None or b is None:
        return False
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


class Interpreter:
    """Drop-in for ``tf.lite.Interpreter`` / ``ai_edge_litert.interpreter.Interpreter``.

    Parameters
    ----------
    model
        A :class:`~workbench.ir.graph.Model` (also accepted positionally), or use
        ``model_path`` / ``model_content`` as with TFLite.
    num_threads
        Caps the BLAS threads the kernels use during ``invoke`` (None: BLAS's default). On a
        busy machine ``num_threads=1`` is often faster and always steadier.
    experimental_op_resolver_type, experimental_delegates
        Accepted for compatibility.
    experimental_preserve_all_tensors
        Keep every intermediate tensor readable after ``invoke`` (we always do; accepted).
    use_arena
        Validation mode of the memory planner: every non-constant tensor of the main subgraph
        lives at its planned offset in one arena (``self.memory_plan``), so a wrong plan would
        corrupt results. Intermediates are then only valid while live, as in TFLite.
    """

    def __init__(self, model: Model | str | bytes | None = None, *, model_path=None,
                 model_content=None, experimental_delegates=None, num_threads=None,
                 experimental_op_resolver_type=None, experimental_preserve_all_tensors=False,
                 experimental_disable_delegate_clustering=False,
                 experimental_default_delegate_latest_features=False, use_arena: bool = False):
        from workbench import load

        if isinstance(model, Model):
            self.model = model
        elif model is not None:
            self.model = load(model)
        elif model_path is not None:
            self.model = load(model_path)
        elif model_content is not None:
            self.model = load(bytes(model_content))
        else:
            raise ValueError("Interpreter needs a model, model_path or model_content")
        self.num_threads = num_threads
        self.preserve_all_tensors = experimental_preserve_all_tensors
        self.hooks: list[Hook] = []
        sg = self.model.main
        self._index = {id(t): i for i, t in enumerate(sg.tensors)}
        self._input_shapes: dict[int, tuple[int, ...]] = {}
        self._plans: dict[int, _SubgraphPlan] = {}
        self._sub_plans: dict[tuple, _SubgraphPlan] = {}
        self._values: dict[int, list[np.ndarray | None]] = {}
        #: Per subgraph: the starting values of a run (constants, empty tensors) and the
        #: indices of variables (copied afresh each run); built once per allocate.
        self._templates: dict[int, tuple[list, list[int]]] = {}
        #: Per subgraph: tensor index by id(tensor), input indices, output indices.
        self._sg_index: dict[int, tuple[dict[int, int], list[int], list[int]]] = {}
        self._allocated = False
        self.use_arena = use_arena
        self.memory_plan = None
        self._arena_views: dict[int, np.ndarray] = {}
        #: Resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE): id -> value.
        self.resources: dict[int, np.ndarray] = {}
        #: Resource ids by (container, shared_name).
        self.resource_ids: dict[tuple[str, str], int] = {}
        #: Lookup tables (HASHTABLE...): table id -> ``kernels.hashtable.LookupTable``; kept
        #: across invokes and ``reset_all_variables``, as LiteRT's resources.
        self.tables: dict = {}
        #: Subgraphs already run by CALL_ONCE.
        self.called_once: set[int] = set()
        #: State kernels keep across invokes and re-prepares (the random ops' generators), by
        #: a key of the kernel's choosing; reset when an input changes shape, as LiteRT
        #: prepares its ops afresh then.
        self.op_state: dict = {}

    # -- planning / preparing ---------------------------------------------------------------
    def allocate_tensors(self) -> None:
        """Prepare every operator of the main subgraph (shapes, kernels). Once allocated, a
        call changes nothing until an input is resized (as LiteRT's: tensor values set
        before it stay set)."""
        if self._allocated:
            return
        self._plans = {}
        self._sub_plans = {}
        self._templates = {}
        self._sg_index = {}
        with np.errstate(all="ignore"):  # as in invoke: a kernel's checks report, not numpy
            self._plans[0] = self._prepare(0, self._input_shapes)
        self._values[0] = self._fresh_values(0)
        self._arena_views = {}
        if self.use_arena:
            self._build_arena()
        self._allocated = True

    def _build_arena(self) -> None:
        from .planner import plan_memory

        plan = plan_memory(self.model, self._plans[0].shapes)
        self.memory_plan = plan
        arena = np.zeros(max(plan.arena_bytes, 1), np.uint8)
        sg = self.model.main
        for a in plan.allocations:
            t = sg.tensors[a.index]
            dt = t.numpy_dtype
            if dt is None:
                continue
            shape = self._plans[0].shapes[a.index]
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            self._arena_views[a.index] = arena[a.offset:a.offset + n].view(dt).reshape(shape)

    def _prepare(self, si: int, input_shapes: dict[int, tuple[int, ...]]) -> _SubgraphPlan:
        sg = self.model.subgraphs[si]
        index = {id(t): i for i, t in enumerate(sg.tensors)}
        shapes = {i: tuple(t.shape) for i, t in enumerate(sg.tensors)}
        shapes.update(input_shapes)
        infos: dict[int, TensorInfo] = {}

        def info(t: Tensor | None) -> TensorInfo | None:
            if t is None:
                return None
            i = index[id(t)]
            if i not in infos:
                data = _constant(t) if t.is_constant else _empty_constant(t, shapes[i])
                infos[i] = TensorInfo(t, i, shapes[i], _value_dtype(t), data)
            infos[i].shape = shapes[i]
            return infos[i]

        nodes, kernels = [], []
        for oi, op in enumerate(sg.operators):
            node = Node(op, si, oi, [info(t) for t in op.inputs], [], runtime=self)
            node.outputs = [info(t) for t in op.outputs]
            cls = _string_guard(node, lookup(op.code, op.opcode.custom_code, op.name, node.path))
            kernel, out_shapes = _prepared(cls, node)
            for o, s in zip(node.outputs, out_shapes):
                if o is not None:
                    s = tuple(int(d) for d in s)
                    shapes[o.index] = s
                    o.shape = s
                    if o.data is not None and tuple(o.data.shape) != s \
                            and not o.tensor.is_constant:
                        # The recorded shape was empty (so its value looked known) but the
                        # kernel computes another: the value is not known after all.
                        o.data = _empty_constant(o.tensor, s)
            _skip_if_empty(node, kernel)
            nodes.append(node)
            kernels.append(kernel)
        return _SubgraphPlan(nodes, kernels, shapes)

    def _fresh_values(self, si: int) -> list[np.ndarray | None]:
        tpl = self._templates.get(si)
        if tpl is None:
            sg = self.model.subgraphs[si]
            base: list[np.ndarray | None] = []
            variables = []
            for i, t in enumerate(sg.tensors):
                if t.is_variable:
                    variables.append(i)
                    base.append(None)
                else:
                    base.append(_constant(t) if t.is_constant else _empty_constant(t, t.shape))
            tpl = self._templates[si] = (base, variables)
        vals = list(tpl[0])
        tensors = self.model.subgraphs[si].tensors
        for i in tpl[1]:
            vals[i] = _variable_start(tensors[i])
        return vals

    def _subgraph_index(self, si: int) -> tuple[dict[int, int], list[int], list[int]]:
        got = self._sg_index.get(si)
        if got is None:
            sg = self.model.subgraphs[si]
            index = {id(t): i for i, t in enumerate(sg.tensors)}
            got = self._sg_index[si] = (index, [index[id(t)] for t in sg.inputs],
                                        [index[id(t)] for t in sg.outputs])
        return got

    # -- running ---------------------------------------------------------------------------
    def invoke(self) -> None:
        if not self._allocated:
            raise RuntimeError("Invoke called on model that is not ready; call "
                               "allocate_tensors() first")
        sg = self.model.main
        vals = self._values[0]
        for k, t in enumerate(sg.inputs):
            i = self._index[id(t)]
            if vals[i] is None:
                raise InputError(f"input {k} ({t.name!r}) was not set")
        # Every kernel runs under one errstate: LiteRT does not warn on overflow or x/0, and an
        # errstate per kernel call (~2 us) is a third of a small op's cost in WHILE loops.
        with blas_threads(self.num_threads), np.errstate(all="ignore"):
            self._run(0, vals)

    def run_subgraph(self, si: int, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run subgraph ``si`` on ``inputs`` (for control-flow kernels) and return its outputs.

        Plans are cached per input shapes, so a WHILE body is prepared once per shape."""
        _, in_idx, out_idx = self._subgraph_index(si)
        if len(inputs) != len(in_idx):
            raise ModelError(f"subgraph {si} takes {len(in_idx)} inputs, got {len(inputs)}",
                             f"subgraphs[{si}]")
        key = (si, tuple(tuple(x.shape) for x in inputs))
        plan = self._sub_plans.get(key)
        if plan is None:
            plan = self._prepare(si, {i: tuple(x.shape) for i, x in zip(in_idx, inputs)})
            self._sub_plans[key] = plan
        vals = self._fresh_values(si)
        for i, x in zip(in_idx, inputs):
            vals[i] = x
        self._run(si, vals, plan)
        self._values[si] = vals
        return [vals[i] for i in out_idx]

    def _run(self, si: int, vals: list, plan: _SubgraphPlan | None = None) -> None:
        plan = plan or self._plans[si]
        hooks = self.hooks
        arena = si == 0 and bool(self._arena_views) and plan is self._plans.get(0)
        kernels = plan.kernels
        for pos, node in enumerate(plan.nodes):
            kernel = kernels[pos]  # read per step: a re-prepare may have replaced it
            ins = [None if i is None else vals[i.index] for i in node.inputs]
            if hooks:
                for h in hooks:
                    h.before_op(node, ins)
            try:
                outs = kernel.eval(ins)
            except Exception as e:  # noqa: BLE001 - one typed error naming the op
                err = _op_failure(e, node.path, "eval")
                if err is e:
                    raise
                raise err from e
            reshaped = None
            for o, arr in zip(node.outputs, outs):
                if o is None:
                    continue
                if arr.dtype != o.dtype and o.dtype is not None:
                    raise ModelError(f"kernel produced {arr.dtype} for {o.name!r}, expected "
                                     f"{o.dtype}", node.path)
                if arr.shape != o.shape:
                    # A dynamic tensor (its shape depends on values computed at run time, as
                    # for RANGE or a WHILE loop): adopt it and re-prepare what follows.
                    o.shape = tuple(arr.shape)
                    plan.shapes[o.index] = o.shape
                    if si == 0:
                        self._arena_views.pop(o.index, None)
                    if reshaped is None:
                        reshaped = set()
                    reshaped.add(o.index)
                if arena and o.index in self._arena_views:
                    view = self._arena_views[o.index]
                    view[...] = arr
                    arr = view
                vals[o.index] = arr
            mutated = node.state.get("mutated_inputs")
            if mutated:  # state a kernel updated in place that it could not write (see State)
                for index, arr in mutated.items():
                    vals[index] = arr
            if hooks:
                for h in hooks:
                    h.after_op(node, outs)
            if reshaped:
                self._reprepare(plan, pos + 1, reshaped)

    def _reprepare(self, plan: _SubgraphPlan, start: int, changed: set[int]) -> None:
        """Prepare nodes ``start..`` again after the shapes of tensors ``changed`` changed at
        run time, as TFLite prepares what follows a dynamic tensor.

        Only nodes reading a changed tensor are prepared again, and their outputs join
        ``changed`` only if what the next prepare reads of them (shape, dynamic flag, value
        known at prepare) differs. Kernels are kept per input state, so a loop that meets the
        same shapes on every invoke prepares each node once per shape, not once per step."""
        cache = plan.kernel_cache
        for pos in range(start, len(plan.nodes)):
            node = plan.nodes[pos]
            if not any(t is not None and t.index in changed for t in node.inputs):
                continue
            key = (pos, _input_state(node))
            before = [None if o is None else (o.shape, o.dynamic, o.data) for o in node.outputs]
            hit = cache.get(key)
            if hit is None:
                for o in node.outputs:
                    if o is not None and not o.tensor.is_constant:
                        o.data = None
                kernel, shapes = _prepared(type(plan.kernels[pos]), node)
                for o, s in zip(node.outputs, shapes):
                    if o is not None:
                        o.shape = tuple(int(d) for d in s)
                _skip_if_empty(node, kernel)
                if len(cache) >= _KERNEL_CACHE_LIMIT:
                    cache.clear()
                cache[key] = (kernel, [None if o is None else (o.shape, o.dynamic, o.data)
                                       for o in node.outputs])
            else:
                kernel, states = hit
                for o, st in zip(node.outputs, states):
                    if o is not None:
                        o.shape, o.dynamic, o.data = st
            plan.kernels[pos] = kernel
            for o, old in zip(node.outputs, before):
                if o is None:
                    continue
                if o.shape != old[0]:
                    if o.index in self._arena_views:
                        self._arena_views.pop(o.index)
                    plan.shapes[o.index] = o.shape
                    changed.add(o.index)
                elif o.dynamic != old[1] or not _same_value(o.data, old[2]):
                    changed.add(o.index)

    def prepare_subgraph(self, si: int, input_shapes: list[tuple[int, ...]]
                         ) -> list[tuple[int, ...]]:
        """Prepare subgraph ``si`` for these input shapes (cached, shared with
        :meth:`run_subgraph`) and return its output shapes; for control-flow kernels."""
        _, in_idx, out_idx = self._subgraph_index(si)
        key = (si, tuple(tuple(s) for s in input_shapes))
        plan = self._sub_plans.get(key)
        if plan is None:
            plan = self._prepare(si, {i: tuple(s) for i, s in zip(in_idx, input_shapes)})
            self._sub_plans[key] = plan
        return [plan.shapes[i] for i in out_idx]

    def run(self, inputs: Any) -> list[np.ndarray]:
        """Idiomatic path: set inputs (a list in input order, a dict by tensor or signature
        name, or one array), invoke, and return the outputs in order."""
        sg = self.model.main
        if isinstance(inputs, dict):
            by_name = {t.name: k for k, t in enumerate(sg.inputs)}
            for sd in self.model.signature_defs:
                if sd.subgraph is sg:
                    for name, t in sd.inputs.items():
                        by_name.setdefault(name, next(k for k, x in enumerate(sg.inputs)
                                                      if x is t))
            ordered: list = [None] * len(sg.inputs)
            for name, v in inputs.items():
                if name not in by_name:
                    raise InputError(f"no model input named {name!r}; inputs are "
                                     f"{sorted(by_name)}")
                ordered[by_name[name]] = v
            inputs = ordered
        elif isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != len(sg.inputs):
            raise InputError(f"model has {len(sg.inputs)} inputs, got {len(inputs)}")
        changed = False
        for k, (t, x) in enumerate(zip(sg.inputs, inputs)):
            x = np.asarray(x)
            i = self._index[id(t)]
            if tuple(x.shape) != tuple(self._shape(i)):  # planned, resized or recorded
                self.resize_tensor_input(i, x.shape)
                changed = True
        if changed or not self._allocated:
            self.allocate_tensors()
        for t, x in zip(sg.inputs, inputs):
            self.set_tensor(self._index[id(t)], np.asarray(x))
        self.invoke()
        return [self.get_tensor(self._index[id(t)]) for t in sg.outputs]

    # -- tensors -----------------------------------------------------------------------------
    def _check_index(self, i: int) -> Tensor:
        tensors = self.model.main.tensors
        if not isinstance(i, (int, np.integer)) or not 0 <= i < len(tensors):
            raise InputError(f"tensor index {i} is out of range (0..{len(tensors) - 1})")
        return tensors[i]

    def _sub_shape(self, si: int, i: int) -> tuple[int, ...]:
        """Shape of tensor ``i`` of subgraph ``si`` (> 0): from its last run, else recorded."""
        v = self._values.get(si)
        if v is not None and v[i] is not None:
            return tuple(np.shape(v[i]))
        return tuple(self.model.subgraphs[si].tensors[i].shape)

    def _shape(self, i: int) -> tuple[int, ...]:
        if self._allocated:
            return self._plans[0].shapes[i]
        return self._input_shapes.get(i, tuple(self.model.main.tensors[i].shape))

    def set_tensor(self, tensor_index: int, value) -> None:
        t = self._check_index(tensor_index)
        if not self._allocated:
            raise RuntimeError("call allocate_tensors() before set_tensor()")
        if t.dtype == TensorType.STRING:
            value = _string_array(value, t, f"input {tensor_index}")
        value = np.asarray(value)
        want = t.numpy_dtype
        if want is not None and value.dtype != want:
            raise InputError(f"Cannot set tensor: got value of type {value.dtype} but expected "
                             f"{want} for input {tensor_index}, name: {t.name}")
        shape = self._shape(tensor_index)
        if tuple(value.shape) != shape:
            raise InputError(f"Cannot set tensor: dimension mismatch; got {list(value.shape)} "
                             f"but expected {list(shape)} for input {tensor_index}, name: "
                             f"{t.name}")
        if t.is_constant:
            raise InputError(f"tensor {tensor_index} ({t.name!r}) is a constant")
        if tensor_index in self._arena_views:
            self._arena_views[tensor_index][...] = value
            self._values[0][tensor_index] = self._arena_views[tensor_index]
        else:
            self._values[0][tensor_index] = np.array(value, copy=True)

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        if subgraph_index == 0:
            self._check_index(tensor_index)
        if subgraph_index != 0:
            vals = self._values.get(subgraph_index)
            if vals is None:
                raise InputError(f"subgraph {subgraph_index} has not run")
            v = vals[tensor_index]
        else:
            v = self._values.get(0, [None] * len(self.model.main.tensors))[tensor_index]
        if v is None:
            t = self.model.subgraphs[subgraph_index].tensors[tensor_index]
            return _unset_value(t, self._shape(tensor_index) if subgraph_index == 0 else t.shape)
        return np.array(v, copy=True)

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray]:
        """A function returning a view of the tensor's current value (as TFLite's)."""
        self._check_index(tensor_index)

        def view():
            v = self._values[0][tensor_index]
            if v is None:
                t = self.model.main.tensors[tensor_index]
                v = _unset_value(t, self._shape(tensor_index))
                self._values[0][tensor_index] = v
            return v

        return view

    def resize_tensor_input(self, input_index: int, tensor_size, strict: bool = False) -> None:
        t = self._check_index(input_index)
        if not any(t is x for x in self.model.main.inputs):
            raise InputError(f"tensor {input_index} ({t.name!r}) is not a model input")
        try:
            new = tuple(int(d) for d in np.asarray(tensor_size).reshape(-1))
        except (TypeError, ValueError, OverflowError) as e:
            raise InputError(f"tensor_size {tensor_size!r} is not a list of integers: {e}"
                             ) from None
        if any(d < 0 for d in new):
            raise InputError(f"negative dimension in {list(new)}")
        sig = t.shape_signature or t.shape
        if strict:
            if len(new) != len(sig) or any(s != -1 and s != d for s, d in zip(sig, new)):
                raise InputError(f"strict resize of {t.name!r} to {list(new)} does not match its "
                                 f"signature {list(sig)}")
        if new != self._shape(input_index):
            self.op_state.clear()
        self._input_shapes[input_index] = new
        self._allocated = False

    # -- details -----------------------------------------------------------------------------
    def _details(self, i: int, si: int = 0) -> dict:
        t = self.model.subgraphs[si].tensors[i]
        q = t.quantization
        scales = q.scale if q is not None else np.zeros(0, np.float32)
        zps = q.zero_point.astype(np.int32) if q is not None else np.zeros(0, np.int32)
        return {
            "name": t.name,
            "index": i,
            "shape": np.array(self._shape(i) if si == 0 else self._sub_shape(si, i),
                              dtype=np.int32),
            "shape_signature": np.array(t.shape_signature if t.shape_signature else t.shape,
                                        dtype=np.int32),
            "dtype": _np_type(t),
            "quantization": (float(scales[0]), int(zps[0])) if scales.size == 1 else (0.0, 0),
            "quantization_parameters": {
                "scales": np.array(scales, dtype=np.float32),
                "zero_points": np.array(zps, dtype=np.int32),
                "quantized_dimension": int(q.quantized_dimension) if q is not None else 0,
                "block_size": _block_size(q),
            },
            "sparsity_parameters": {},
        }

    def get_input_details(self) -> list[dict]:
        return [self._details(self._index[id(t)]) for t in self.model.main.inputs]

    def get_output_details(self) -> list[dict]:
        return [self._details(self._index[id(t)]) for t in self.model.main.outputs]

    def get_tensor_details(self) -> list[dict]:
        return [self._details(i) for i in range(len(self.model.main.tensors))]

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        return {sd.key: {"inputs": list(sd.inputs), "outputs": list(sd.outputs)}
                for sd in self.model.signature_defs}

    def get_signature_runner(self, signature_key: str | None = None) -> "SignatureRunner":
        sigs = self.model.signature_defs
        if not sigs:
            raise ValueError("the model has no signature defs")
        if signature_key is None:
            if len(sigs) > 1:
                raise ValueError("signature_key is required when there are several signatures")
            return SignatureRunner(self, sigs[0])
        for sd in sigs:
            if sd.key == signature_key:
                return SignatureRunner(self, sd)
        raise ValueError(f"no signature {signature_key!r}; have {[s.key for s in sigs]}")

    def reset_all_variables(self) -> None:
        for si in list(self._values):
            sg = self.model.subgraphs[si]
            for i, t in enumerate(sg.tensors):
                if t.is_variable:
                    self._values[si][i] = _variable_start(t)


class SignatureRunner:
    """``interpreter.get_signature_runner(key)(**inputs) -> {output name: array}``.

    As in LiteRT, a signature may be any subgraph (e.g. a model with ``train`` and ``infer``
    signatures sharing resource variables): each call takes its inputs at their own shapes,
    runs that subgraph and returns copies of its outputs. Signatures of subgraph 0 run through
    the main interpreter (so ``get_tensor`` sees their tensors)."""

    def __init__(self, interp: Interpreter, sig):
        self._it = interp
        self._sig = sig
        self._si = next(k for k, sg in enumerate(interp.model.subgraphs) if sg is sig.subgraph)
        index = {id(t): i for i, t in enumerate(sig.subgraph.tensors)}
        self._in = {n: index[id(t)] for n, t in sig.inputs.items()}
        self._out = {n: index[id(t)] for n, t in sig.outputs.items()}

    def get_input_details(self) -> dict[str, dict]:
        return {n: self._it._details(i, self._si) for n, i in self._in.items()}

    def get_output_details(self) -> dict[str, dict]:
        return {n: self._it._details(i, self._si) for n, i in self._out.items()}

    def __call__(self, **kwargs) -> dict[str, np.ndarray]:
        missing = set(self._sig.inputs) - set(kwargs)
        extra = set(kwargs) - set(self._sig.inputs)
        if missing or extra:
            raise InputError(f"signature {self._sig.key!r} takes inputs "
                             f"{sorted(self._sig.inputs)}; missing {sorted(missing)}, "
                             f"unexpected {sorted(extra)}")
        it = self._it
        if self._si == 0:
            it.run({name: kwargs[name] for name in self._sig.inputs})
            return {n: it.get_tensor(i) for n, i in self._out.items()}
        sg = self._sig.subgraph
        by_index = {i: n for n, i in self._in.items()}
        index = {id(t): i for i, t in enumerate(sg.tensors)}
        values = []
        for t in sg.inputs:
            name = by_index.get(index[id(t)])
            if name is None:
                raise InputError(f"signature {self._sig.key!r} does not name subgraph "
                                 f"{self._si}'s input {t.name!r}")
            v = kwargs[name]
            if t.dtype == TensorType.STRING:
                v = _string_array(v, t, f"signature {self._sig.key!r} input {name!r}")
            v = np.asarray(v)
            want = t.numpy_dtype
            if want is not None and v.dtype != want:
                raise InputError(f"signature {self._sig.key!r} input {name!r}: got {v.dtype}, "
                                 f"expected {np.dtype(want)}")
            values.append(v)
        with blas_threads(it.num_threads), np.errstate(all="ignore"):
            outs = it.run_subgraph(self._si, values)
        pos = {index[id(t)]: k for k, t in enumerate(sg.outputs)}
        vals = it._values[self._si]
        return {n: np.array(outs[pos[i]] if i in pos else vals[i], copy=True)
                for n, i in self._out.items()}
