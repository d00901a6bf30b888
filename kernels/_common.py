"""Shared kernel plumbing: the per-node context, padding arithmetic, fused activations.

A kernel is a class with ``prepare(self) -> list[shape]`` (called once per shape change:
options, output shapes and any precomputation) and ``eval(self, inputs) -> list[array]``
(called per invoke). ``self.node`` describes the op, its options and its input/output tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import InputError, ModelError
from workbench.ir.graph import Operator, Tensor
from workbench.ir.ops import ActivationFunctionType, Padding, default_options


@dataclass
class TensorInfo:
    """What a kernel sees of one tensor at prepare time."""

    tensor: Tensor
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype | None
    #: The constant value (numpy), or None for tensors computed at run time.
    data: np.ndarray | None = None
    #: The shape is a placeholder until eval: the producer's output shape depends on values
    #: computed at run time (TFLite's dynamic tensors). See :meth:`Kernel.__init_subclass__`.
    dynamic: bool = False

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def quantization(self):
        return self.tensor.quantization


@dataclass
class Node:
    """One operator as the interpreter runs it."""

    op: Operator
    subgraph: int
    index: int
    inputs: list[TensorInfo | None]
    outputs: list[TensorInfo | None]
    #: The interpreter (for control flow and resource variables); kernels of plain ops ignore it.
    runtime: Any = None
    state: dict = field(default_factory=dict)

    @property
    def options(self):
        """The op's options; an op stored without them gets the schema's defaults, as
        LiteRT's zero-initialized parameters (e.g. SOFTMAX's beta 0, STRIDED_SLICE's masks 0).
        ``op.options`` is None in that case. StableHLO-era ops (DILATE, REDUCE_WINDOW,
        STABLEHLO_*) keep theirs in the second union, ``op.options2``."""
        o = self.stored_options
        return o if o is not None else default_options(self.op.code)

    @property
    def stored_options(self):
        """The options table the file stores (``op.options``, else ``op.options2``, the
        StableHLO-era union), or None: no schema defaults (for ops where a missing table is
        itself the fault, e.g. control flow, whose default subgraph 0 is the caller)."""
        return self.op.options if self.op.options is not None else self.op.options2

    def custom_options_map(self) -> dict:
        """The op's custom options decoded as a FlexBuffer map (the format of the custom ops
        LiteRT runs by default, e.g. TFLite_Detection_PostProcess); an op without custom
        options gives ``{}``. Bytes that are not a FlexBuffer map are a ``ModelError``."""
        raw = self.op.custom_options
        if raw is None or len(raw) == 0:
            return {}
        from flatbuffers import flexbuffers

        try:
            value = flexbuffers.Loads(bytes(np.asarray(raw, np.uint8)))
        except Exception as e:  # noqa: BLE001 - any decoding failure is a malformed file
            raise self.fail(f"custom options are not a valid FlexBuffer ({type(e).__name__}: "
                            f"{str(e)[:80]})") from None
        if not isinstance(value, dict):
            raise self.fail(f"custom options are a FlexBuffer {type(value).__name__}, not a map")
        return value

    @property
    def path(self) -> str:
        return f"subgraphs[{self.subgraph}].operators[{self.index}] ({self.op.name})"

    def fail(self, message: str) -> ModelError:
        return ModelError(message, self.path)


class Kernel:
    """Base class. Default ``prepare`` keeps the shapes recorded in the model."""

    def __init__(self, node: Node):
        self.node = node

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not getattr(cls.prepare, "_defers", False):
            cls.prepare = _deferring(cls.prepare)

    def prepare(self) -> list[tuple[int, ...]]:
        return [o.shape if o is not None else () for o in self.node.outputs]

    def eval(self, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        raise NotImplementedError


def _deferring(prepare):
    """Wrap a kernel's ``prepare`` so that a node fed a dynamic tensor is prepared once the real
    shapes are known, as TFLite does (it stops preparing at a node with dynamic outputs and
    prepares the rest after that node has run).

    Our interpreter prepares every node up front, so a node downstream of a dynamic tensor sees
    a placeholder shape (e.g. the ``[i, ...]`` head of a TensorList lowered to SLICE +
    CONCATENATION inside a WHILE body). If its ``prepare`` then rejects the shapes, the node
    keeps its recorded output shapes, marks them dynamic in turn and is prepared again when the
    interpreter re-prepares after the dynamic producer ran with its real shape. If no re-prepare
    comes (the producer's real shape equals its placeholder, so the fault is real), ``eval``
    raises the error ``prepare`` found."""

    def wrapped(self):
        if self.__dict__.get("_preparing"):  # a subclass's prepare calling super().prepare()
            return prepare(self)
        self._preparing = True
        node = self.node
        for o in node.outputs:  # a re-prepare starts from static outputs
            if o is not None:
                o.dynamic = False
        try:
            return prepare(self)
        except ModelError as err:
            if not any(t is not None and t.dynamic for t in node.inputs):
                raise
            node.state["dynamic_outputs"] = True
            for o in node.outputs:
                if o is not None:
                    o.dynamic = True

            def deferred_eval(inputs, _err=err):
                raise _err

            self.eval = deferred_eval
            return [o.shape if o is not None else () for o in node.outputs]
        finally:
            self._preparing = False

    wrapped._defers = True
    wrapped.__doc__ = prepare.__doc__
    wrapped.__name__ = getattr(prepare, "__name__", "prepare")
    wrapped.__qualname__ = getattr(prepare, "__qualname__", "prepare")
    return wrapped


def same_or_valid(padding: int, size: int, filt: int, stride: int, dilation: int = 1
                  ) -> tuple[int, int, int]:
    """(output size, pad before, pad after) for one spatial dimension, as TFLite computes them:
    SAME gives ceil(size / stride) outputs with the odd pad going after; VALID gives
    ceil((size - effective_filter + 1) / stride)."""
    eff = (filt - 1) * dilation + 1
    if padding == Padding.SAME:
        out = (size + stride - 1) // stride
    else:
        out = (size - eff + stride) // stride
    out = max(out, 0)
    total = max((out - 1) * stride + eff - size, 0)
    if eff > _INT32_MAX or size + total > _INT32_MAX:
        raise ModelError(f"filter {filt} with dilation {dilation} spans {eff} positions; padded "
                         f"to {size + total}, beyond TFLite's int32 dimensions")
    return out, total // 2, total - total // 2


_INT32_MAX = 2**31 - 1


def window_geometry(options, h: int, w: int, kh: int, kw: int):
    """Geometry of a 2-D sliding-window op from its options (padding, strides, dilations if
    the options have them): ``geom = (kh, kw, sh, sw, dh, dw, oh, ow)`` as :func:`patches`
    takes it, and ``pads = ((top, bottom), (left, right))``."""
    dh = getattr(options, "dilation_h_factor", 1)
    dw = getattr(options, "dilation_w_factor", 1)
    oh, pt, pb = same_or_valid(options.padding, h, kh, options.stride_h, dh)
    ow, pl, pr = same_or_valid(options.padding, w, kw, options.stride_w, dw)
    return (kh, kw, options.stride_h, options.stride_w, dh, dw, oh, ow), ((pt, pb), (pl, pr))


def reaching_taps(size: int, k: int, s: int, d: int, out: int, before: int
                  ) -> tuple[int, int, int, int]:
    """The taps of one spatial dimension of a convolution that read the input for some output:
    ``(first, stop, lo, hi)``, taps ``[first, stop)`` reading input positions ``[lo, hi)``
    (``lo < 0`` or ``hi > size``: padding; ``lo > 0`` or ``hi < size``: input no kept tap reads).

    Output ``o`` reads ``o*s - before + t*d`` with tap ``t``. A tap reading padding for every
    output adds only the padding (zero, or the input zero point that quantized kernels cancel)
    whatever its weight, so dropping it with its weights is exact. Tap ``t`` reaches the input
    iff ``t*d - before`` lies in the union of ``[-o*s, size - o*s)`` over the outputs, which is
    the one interval ``[-(out-1)*s, size)`` when ``out == 1`` or ``s <= size`` (always so with
    TFLite's SAME/VALID output sizes: more than one output needs ``size > s``); so the taps that
    reach are one run, found by two divisions. When none does (an even filter straddling the
    input with a huge dilation) one tap is kept over padding alone. With every tap reaching
    (``0, k``), ``hi - lo`` is below ``size + 2*(out-1)*s`` anyway: only dropped taps can make
    TFLite's padding huge (``(k-1)*d`` for a huge dilation)."""
    span = (out - 1) * s
    if out <= 0 or size <= 0 or (out > 1 and s > size):
        return 0, k, -before, span + (k - 1) * d + 1 - before
    first = max(0, -(-(before - span) // d))
    stop = min(k, (size + before - 1) // d + 1)
    if first >= stop:  # no tap reaches the input: keep one, reading padding only
        return 0, 1, size, size + span + 1
    return first, stop, first * d - before, span + (stop - 1) * d + 1 - before


def trim_taps(sizes, kernel, strides, dilations, outs, befores):
    """:func:`reaching_taps` over every spatial dimension (computed at prepare). Returns
    ``(kernel, pads, taps, crop)``: the kept filter size per dimension, ``(before, after)``
    padding of the cropped input, and ``taps`` / ``crop``: per-dimension slices of the filter's
    and the input's spatial axes, both None when every tap reaches the input (the usual case:
    geometry and pads are then TFLite's, untouched)."""
    dims = [reaching_taps(*a) for a in zip(sizes, kernel, strides, dilations, outs, befores)]
    if all(first == 0 and stop == k for (first, stop, _, _), k in zip(dims, kernel)):
        return None
    kept = tuple(stop - first for first, stop, _, _ in dims)
    pads = tuple((max(0, -lo), max(0, hi - n)) for (_, _, lo, hi), n in zip(dims, sizes))
    taps = tuple(slice(first, stop) for first, stop, _, _ in dims)
    crop = tuple(slice(max(0, lo), max(0, min(n, hi))) for (_, _, lo, hi), n in zip(dims, sizes))
    return kept, pads, taps, crop


def conv_window(options, h: int, w: int, kh: int, kw: int):
    """:func:`window_geometry` of a CONV_2D / DEPTHWISE_CONV_2D without the taps that read
    padding alone (:func:`trim_taps`): ``(geom, pads, taps, crop)``. ``taps`` (indexes a
    ``[OC or 1, KH, KW, ...]`` filter) and ``crop`` (an ``[N, H, W, C]`` input) are None
    unless a huge dilation leaves taps that never reach the input; kernels then slice the
    filter once at prepare (at eval for a run-time filter) and crop the input (a view) before
    padding it to at most about three input sizes, instead of ``(k-1) * dilation``."""
    geom, pads = window_geometry(options, h, w, kh, kw)
    _, _, sh, sw, dh, dw, oh, ow = geom
    t = trim_taps((h, w), (kh, kw), (sh, sw), (dh, dw), (oh, ow), (pads[0][0], pads[1][0]))
    if t is None:
        return geom, pads, None, None
    (kh, kw), pads, taps, crop = t
    return (kh, kw, sh, sw, dh, dw, oh, ow), pads, (slice(None), *taps), (slice(None), *crop)


def apply_activation(x: np.ndarray, act: int) -> np.ndarray:
    """Fused activation on a float array (in place where possible).

    TFLite turns the fused activation into a clamp range; TANH and SIGN_BIT have no range
    there, so ops that fuse them compute as if there were none. We do the same."""
    if act == ActivationFunctionType.RELU:
        return np.maximum(x, 0, out=x)
    if act == ActivationFunctionType.RELU6:
        return np.clip(x, 0, 6, out=x)
    if act == ActivationFunctionType.RELU_N1_TO_1:
        return np.clip(x, -1, 1, out=x)
    if act in (ActivationFunctionType.NONE, ActivationFunctionType.TANH,
               ActivationFunctionType.SIGN_BIT):
        return x
    raise ModelError(f"unknown fused activation {act}")


def patches(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
            oh: int, ow: int) -> np.ndarray:
    """Strided view [N, OH, OW, KH, KW, C] of an already padded NHWC input (no copy)."""
    n, _, _, c = x.shape
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, shape=(n, oh, ow, kh, kw, c),
        strides=(s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False)


def pad_nhwc(x: np.ndarray, pads_h: tuple[int, int], pads_w: tuple[int, int],
             value=0) -> np.ndarray:
    if pads_h == (0, 0) and pads_w == (0, 0):
        return x
    return np.pad(x, ((0, 0), pads_h, pads_w, (0, 0)), constant_values=value)


class PadBuffer:
    """Constant padding of NHWC inputs into one buffer kept across invokes.

    Only the interior is written on each call; the border keeps its fill value from the first
    allocation. This saves :func:`pad_nhwc`'s fresh allocation (and its page faults) and the
    fill of the whole buffer on every invoke. The returned array is a read-only view that the
    next call overwrites, so it must stay private to the kernel (never returned as an
    output).

    ``dtype`` / ``minus`` (quantized kernels): the interior holds ``x - minus`` as ``dtype``,
    converted in the same pass as the copy; with ``minus`` the input's zero point, the border
    (``value``, normally 0) is what a padded tap contributes."""

    def __init__(self, pads_h: tuple[int, int], pads_w: tuple[int, int], value=0, dtype=None,
                 minus=0):
        self.pads_h, self.pads_w, self.value = pads_h, pads_w, value
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.minus = minus
        self.buf: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (pt, pb), (pl, pr) = self.pads_h, self.pads_w
        dt = x.dtype if self.dtype is None else self.dtype
        plain = dt == x.dtype and not self.minus
        if pt == pb == pl == pr == 0 and plain:
            return x
        n, h, w, c = x.shape
        shape = (n, h + pt + pb, w + pl + pr, c)
        buf = self.buf
        if buf is None or buf.shape != shape or buf.dtype != dt:
            buf = self.buf = np.full(shape, self.value, dt)
        inner = buf[:, pt:pt + h, pl:pl + w]
        if plain:
            inner[...] = x
        else:  # convert and shift in one pass
            np.subtract(x, dt.type(self.minus), out=inner, dtype=dt, casting="unsafe")
        view = buf.view()
        view.flags.writeable = False  # a write would corrupt the border of later calls
        return view


def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...], node: Node) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        raise node.fail(f"shapes {list(a)} and {list(b)} do not broadcast") from None


def available_memory() -> int:
    """Bytes of memory the system reports available now (``MemAvailable``), else physical
    memory; a ceiling for any one allocation."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


#: Outputs smaller than this are never checked against the available memory (the check reads
#: /proc/meminfo).
_CHECK_FROM_BYTES = 1 << 28
#: Largest output whose size comes from values (FILL's dims, RANGE's bounds, TILE's multiples,
#: a runtime resize): no on-device model needs more in one tensor, and a stray int32 extreme
#: (RANGE from -2**31 to 2**31 - 1) would otherwise allocate and fill 16 GiB.
MAX_VALUE_SIZED_BYTES = 4 << 30


def check_allocation(node, shapes, runtime: bool) -> None:
    """Refuse output shapes computed from values (FILL's dims, TILE's multiples, a runtime
    resize...) whose arrays would take more than half the memory available (or
    ``MAX_VALUE_SIZED_BYTES``): numpy would otherwise get the pages from the kernel's
    overcommit and the process be killed while filling them.
    ``runtime``: the values were fed at run time (an ``InputError``), else they are the model's
    constants (a ``ModelError``)."""
    for o, shape in zip(node.outputs, shapes):
        if o is None or o.dtype is None:
            continue
        n = 1
        for d in shape:
            n *= max(int(d), 0)
        nbytes = n * np.dtype(o.dtype).itemsize
        if nbytes < _CHECK_FROM_BYTES:
            continue
        avail = available_memory()
        limit = min(avail // 2, MAX_VALUE_SIZED_BYTES)
        if nbytes > limit:
            msg = (f"output {o.name!r} of shape {[int(d) for d in shape]} would need "
                   f"{nbytes / 2**30:.1f} GiB; the limit is {limit / 2**30:.1f} GiB (half the "
                   f"{avail / 2**30:.1f} GiB of memory available, at most "
                   f"{MAX_VALUE_SIZED_BYTES / 2**30:.0f} GiB)")
            if runtime:
                raise InputError(f"{node.path}: {msg}")
            raise node.fail(msg)


def mark_dynamic(node) -> None:
    """Record that this node's output shapes are only known at eval (they depend on values
    computed at run time); ``prepare`` then returns the shapes recorded in the model."""
    node.state["dynamic_outputs"] = True
    for o in node.outputs:  # downstream kernels may defer their checks (kernels/_common.py)
        if o is not None:
            o.dynamic = True
