"""Shared pieces of the elementwise / comparison / reduction kernels.

Dtype policy, as LiteRT's built-in kernels behave:

* ``dtypes``: element types the op computes on as plain numbers. Such an input that carries
  quantization parameters (a scale) takes TFLite's quantized path, which we do not implement
  yet: :func:`check_types` raises :class:`UnsupportedOpError` for it.
* ``raw``: element types whose values the op uses as they are even when quantized (selection
  and comparison of stored integers: MAXIMUM, ARG_MAX, REDUCE_MAX, SELECT, NEG, ...).
* ``quantized``: element types with a quantized (rescaling) path; the kernel's
  ``prepare_quantized`` returns the integer function eval applies (see ``_qelementwise``).

float16 inputs are computed in float32 and rounded back, as LiteRT's half kernels do.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import InputError, UnsupportedOpError

from ._common import Kernel, mark_dynamic

FLOAT = (np.float32,)
INTS = (np.int32, np.int64)
SMALL_INTS = (np.int8, np.uint8, np.int16)


def is_quantized(t) -> bool:
    q = t.quantization
    return q is not None and q.scale.size > 0


def dtype_name(dt) -> str:
    return np.dtype(dt).name if dt is not None else "unknown"


def check_types(node, dtypes=(), raw=(), inputs=(0,)) -> None:
    """Raise UnsupportedOpError unless every listed input has a supported element type."""
    for i in inputs:
        t = node.inputs[i] if i < len(node.inputs) else None
        if t is None:
            raise node.fail(f"input {i} is missing")
        if t.dtype is not None and any(t.dtype == d for d in raw):
            continue
        if is_quantized(t):
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{dtype_name(t.dtype)} quantized inputs are not supported "
                                     "yet")
        if t.dtype is None or not any(t.dtype == d for d in dtypes):
            name = dtype_name(t.dtype) if t.dtype is not None else t.tensor.type_name.lower()
            raise UnsupportedOpError(node.op.name, node.path, f"{name} inputs are not supported")


def same_types(node, inputs=(0, 1)) -> None:
    types = {dtype_name(node.inputs[i].dtype) for i in inputs}
    if len(types) > 1:
        raise node.fail(f"inputs must have the same type, got {sorted(types)}")


def out_dtype(node, k: int = 0):
    o = node.outputs[k]
    return o.dtype if o is not None else None


def runtime_error(node, message: str) -> InputError:
    """An error caused by the values fed at run time (LiteRT fails the invoke)."""
    return InputError(f"{node.path}: {message}")


def as_compute(x: np.ndarray) -> np.ndarray:
    """float16/bfloat16 are computed in float32."""
    dt = x.dtype  # cheap checks first: dtype.name is slow, and this runs on every element op
    if dt.itemsize < 4 and (dt.kind == "f" or dt.kind == "V" and dt.name == "bfloat16"):
        return x.astype(np.float32)
    return x


def rounded_from_double(fn, x: np.ndarray) -> np.ndarray:
    """``fn`` of a float32 array computed in float64 and rounded once to float32: what the C
    library's ``expf``/``logf``/``sinf``/``cosf`` (LiteRT's float kernels) return in all but
    about 1 of 2,000 (exp, log) or 1 of 80 (sin, cos) inputs, one ulp apart there; numpy's own
    float32 versions differ from them on 4-40% of inputs by up to 4 ulps (measured)."""
    if x.dtype == np.float32:
        return fn(x.astype(np.float64)).astype(np.float32)
    return fn(x)


def finish(node, y, k: int = 0) -> np.ndarray:
    """The result as an array of the output tensor's dtype."""
    dt = out_dtype(node, k)
    y = np.asarray(y)
    return y if dt is None or y.dtype == dt else y.astype(dt)


class UnaryKernel(Kernel):
    """``y = fn(x)`` with the same shape; subclasses set ``dtypes``/``raw`` and ``fn``, and for
    quantized inputs ``quantized`` and ``prepare_quantized``."""

    dtypes: tuple = FLOAT
    raw: tuple = ()
    quantized: tuple = ()

    @staticmethod
    def fn(x):
        raise NotImplementedError

    def prepare_quantized(self, x, out):
        """Integer function ``x -> output array`` of the quantized path."""
        raise NotImplementedError

    def prepare(self):
        node = self.node
        x = node.inputs[0] if node.inputs else None
        self.qfn = None
        if x is not None and x.dtype is not None and any(x.dtype == d for d in self.quantized) \
                and (x.dtype != np.int16 or x.quantization is not None
                     and x.quantization.scale.size > 0):
            out = node.outputs[0]
            if out.dtype != x.dtype and not self.mixed_output_ok(x, out):
                raise node.fail(f"input {x.dtype} and output {out.dtype} types differ")
            self.qfn = self.prepare_quantized(x, out)
            return [x.shape]
        check_types(node, self.dtypes, self.raw)
        out = node.outputs[0] if node.outputs else None
        if out is not None and out.dtype is not None and x is not None and \
                x.dtype is not None and out.dtype != x.dtype:
            # LiteRT's NEG silently retypes such an output to the input's type (and what reads
            # it then sees raw values under the declared type's assumptions); others refuse.
            raise node.fail(f"output {out.name!r} is declared {out.dtype} but the op computes "
                            f"{x.dtype} (its input's type)")
        return [node.inputs[0].shape]

    def mixed_output_ok(self, x, out) -> bool:
        return False

    def eval(self, inputs):
        if self.qfn is not None:
            return [self.qfn(inputs[0])]
        # (the interpreter runs every kernel under errstate(all="ignore"))
        return [finish(self.node, self.fn(as_compute(inputs[0])))]


# -- reductions ---------------------------------------------------------------------------------
def normalize_axes(node, axes_value, rank: int) -> tuple[int, ...]:
    """Sorted unique non-negative axes; negative axes count from the end."""
    out = set()
    for a in np.asarray(axes_value).reshape(-1).tolist():
        if not -rank <= a < rank:
            raise node.fail(f"axis {a} is outside rank {rank}")
        out.add(int(a) % rank)
    return tuple(sorted(out))


def reduced_shape(shape, axes, keep: bool) -> tuple[int, ...]:
    if keep:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


class ReduceKernel(Kernel):
    """Reduction over constant or run-time axes (input 1), with ``keep_dims``.

    With run-time axes the output shape depends on their values: prepare keeps the model's
    recorded shape and eval computes the real one. Quantized inputs whose type is listed in
    ``quantized`` use ``prepare_quantized``'s function ``(x, axes) -> result`` (also for an
    empty axis list: a quantized reduction over no axis still rescales)."""

    dtypes: tuple = FLOAT + INTS
    raw: tuple = ()
    quantized: tuple = ()

    def prepare_quantized(self, x, out):
        raise NotImplementedError

    def prepare(self):
        node = self.node
        x = node.inputs[0]
        self.qfn = None
        if x is not None and x.dtype is not None and any(x.dtype == d for d in self.quantized) \
                and (x.dtype != np.int16 or x.quantization is not None
                     and x.quantization.scale.size > 0):
            if node.outputs[0].dtype != x.dtype:
                raise node.fail(f"input {x.dtype} and output {node.outputs[0].dtype} differ")
            self.keep = bool(node.options.keep_dims)
            self.qfn = self.prepare_quantized(x, node.outputs[0])
        else:
            check_types(node, self.dtypes, self.raw)
            out = node.outputs[0]
            if out.dtype is not None and out.dtype != x.dtype:
                raise node.fail(f"output type {out.tensor.type_name} differs from the input "
                                f"type {x.tensor.type_name}")
        ax = node.inputs[1]
        if ax is None or ax.dtype not in (np.int32, np.int64):
            raise node.fail("axes must be an int32 or int64 tensor")
        self.keep = bool(node.options.keep_dims)
        self.axes = None
        value = ax.data
        if value is None and 0 in ax.shape:  # no buffer, but its (empty) value is known
            value = np.zeros(ax.shape, ax.dtype)
        if value is None:
            mark_dynamic(node)  # runtime axes: the output shape is known at eval
            return [node.outputs[0].shape]
        self.axes = normalize_axes(node, value, len(node.inputs[0].shape))
        return [reduced_shape(node.inputs[0].shape, self.axes, self.keep)]

    def reduce(self, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def eval(self, inputs):
        x = inputs[0]
        axes = self.axes if self.axes is not None else normalize_axes(self.node, inputs[1],
                                                                      x.ndim)
        if self.qfn is not None:
            y = np.asarray(self.qfn(x, axes))
            return [y.reshape(reduced_shape(x.shape, axes, self.keep))]
        if not axes:
            y = x.copy()
        else:
            with np.errstate(all="ignore"):
                y = np.asarray(self.reduce(x, axes))
            y = y.reshape(reduced_shape(x.shape, axes, self.keep))
        return [finish(self.node, y)]


def move_to_end(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The reduced axes moved last and flattened into one (in row-major order)."""
    keep = [i for i in range(x.ndim) if i not in axes]
    y = np.transpose(x, keep + list(axes))
    n = 1
    for a in axes:
        n *= x.shape[a]
    return y.reshape(tuple(x.shape[i] for i in keep) + (n,))


def sequential_sum(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Sum over ``axes`` accumulated one element at a time in the input's dtype, in row-major
    order: bit-exact with TFLite's float reductions (numpy's own sum is pairwise).

    The reduced axes are moved *first* and ``cumsum`` runs down axis 0 (sequential by
    definition) with the kept elements as its contiguous inner loop; for a spatial mean of an
    NHWC tensor this needs no transpose copy at all."""
    axes = tuple(sorted(axes))
    keep = [i for i in range(x.ndim) if i not in axes]
    kept_shape = tuple(x.shape[i] for i in keep)
    n = math.prod(x.shape[a] for a in axes)
    if n == 0 or math.prod(kept_shape) == 0:
        return np.zeros(kept_shape, x.dtype)
    y = np.transpose(x, list(axes) + keep).reshape(n, -1)
    if y.shape[1] >= 2 and y.strides[1] == y.itemsize:
        # numpy reduces axis 0 of rows with a contiguous inner axis row after row (its inner
        # loop is ``acc[:] += row``): sequential per element, ~10x faster than a Python loop
        # over the rows. A single kept value would make the reduced axis the inner loop, which
        # numpy sums pairwise; tests pin the order against an explicit loop.
        return np.add.reduce(y, axis=0, dtype=x.dtype).reshape(kept_shape)
    return np.cumsum(y, axis=0, dtype=x.dtype)[-1].reshape(kept_shape)
