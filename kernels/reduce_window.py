"""REDUCE_WINDOW and STABLEHLO_REDUCE_WINDOW: XLA's ReduceWindow, one reduction (add, multiply,
maximum, minimum, logical and/or) over sliding windows of a rank 1-6 tensor, starting from a
scalar init value; bool, int8/16/32/64, uint8, float32 and float64 (float16 is refused at
invoke, as LiteRT does). STABLEHLO_REDUCE_WINDOW first dilates the input (base dilations, holes
filled with the init value) and pads or crops it (negative padding crops; padding filled with
the init value), then reduces windows of ``window_dimensions`` at ``window_strides`` with
``window_dilations``; its reduction is found, as LiteRT does, from the single operator of the
body subgraph (ADD/STABLEHLO_ADD, MUL/STABLEHLO_MULTIPLY, MAXIMUM/..., MINIMUM/...,
LOGICAL_AND/STABLEHLO_AND, LOGICAL_OR/STABLEHLO_OR; anything else fails at invoke). The
deprecated REDUCE_WINDOW takes its reduction from ``ReduceWindowOptions.reduce_function`` and
its window sizes, strides and dilations from three constant int64 inputs (no padding nor base
dilation; LiteRT accepts window sizes <= 0 and dilation 0 there, and so do we). Each output is
``init`` then every window element in row-major order folded in the element type, exactly as
LiteRT's loop (float sums and products in that order; maximum is ``a >= b ? a : b`` and minimum
``a <= b ? a : b``, so NaN and signed-zero results are LiteRT's); integers wrap; logical
reductions give 0/1 in the element type (the init value itself when a window is empty); bool
tensors are computed as int8, so a bool sum keeps LiteRT's raw byte counts."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import ENUMS, Op

from ._common import MAX_VALUE_SIZED_BYTES, Kernel, available_memory, check_allocation
from .registry import register

MAX_RANK = 6
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
#: Element types LiteRT's kernel computes on (bool as int8).
DTYPES = tuple(np.dtype(d) for d in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                     np.float32, np.float64))

#: Body operator -> reduction, as LiteRT's GetBodyFunction maps them.
BODY_FUNCTIONS = {
    Op.ADD: "add", Op.STABLEHLO_ADD: "add",
    Op.MUL: "mul", Op.STABLEHLO_MULTIPLY: "mul",
    Op.MAXIMUM: "max", Op.STABLEHLO_MAXIMUM: "max",
    Op.MINIMUM: "min", Op.STABLEHLO_MINIMUM: "min",
    Op.LOGICAL_AND: "all", Op.STABLEHLO_AND: "all",
    Op.LOGICAL_OR: "any", Op.STABLEHLO_OR: "any",
}
ReduceWindowFunction = ENUMS["ReduceWindowFunction"]
_OPTION_FUNCTIONS = {
    ReduceWindowFunction.ADD: "add", ReduceWindowFunction.MUL: "mul",
    ReduceWindowFunction.MINIMUM: "min", ReduceWindowFunction.MAXIMUM: "max",
    ReduceWindowFunction.ALL: "all", ReduceWindowFunction.ANY: "any",
}


#: Most element operations (output values x window taps + temporaries) one reduce window
#: may take: 1-8 s of numpy passes here, depending on how strided the taps are.
MAX_WORK = 1 << 29


def _bytes_limit() -> int:
    return min(available_memory() // 2, MAX_VALUE_SIZED_BYTES)


class _ReduceWindowBase(Kernel):
    """Shared checks, geometry and evaluation; subclasses read their options into
    ``(window, strides, base_dilations, window_dilations, padding)`` and the reduction."""

    def _common_checks(self):
        node = self.node
        if len(node.inputs) != self.N_INPUTS or len(node.outputs) != 1 or \
                any(t is None for t in node.inputs[:self.N_INPUTS]) or node.outputs[0] is None:
            raise node.fail(f"takes {self.N_INPUTS} inputs and 1 output, got "
                            f"{len(node.inputs)} and {len(node.outputs)}")
        x, init, out = node.inputs[0], node.inputs[1], node.outputs[0]
        if x.dtype is None or x.dtype != out.dtype or x.dtype != init.dtype:
            raise node.fail(f"input, init value and output must have one type, got "
                            f"{x.tensor.type_name}, {init.tensor.type_name} and "
                            f"{out.tensor.type_name}")
        if not 1 <= len(x.shape) <= MAX_RANK:
            raise node.fail(f"input rank {len(x.shape)} is outside LiteRT's 1..{MAX_RANK}")
        if math.prod(init.shape) < 1:
            raise node.fail("the init value tensor has no element")
        return x

    def _geometry(self, shape, window, strides, bdil, wdil, padding):
        """Dilated and padded shapes (None when skipped, as LiteRT skips them) and the output
        shape, refusing what LiteRT refuses or would compute out of bounds."""
        node = self.node
        rank = len(shape)
        dilated = padded = None
        cur = tuple(shape)
        if any(d != 1 for d in bdil):
            if math.prod(shape) == 0:
                raise node.fail(f"base dilations {list(bdil)} of an empty input "
                                f"{list(shape)}: LiteRT fails (or crashes) on it")
            dilated = cur = tuple((n - 1) * d + 1 for n, d in zip(shape, bdil))
        if any(p != 0 for p in padding):
            padded = tuple(n + padding[2 * i] + padding[2 * i + 1] for i, n in enumerate(cur))
            if any(n < 0 for n in padded):
                raise node.fail(f"padding {list(padding)} crops the {list(cur)} input to "
                                f"{list(padded)}, a negative size")
            if 0 in padded:
                raise node.fail(f"padding {list(padding)} gives an empty tensor "
                                f"{list(padded)}; LiteRT fails at invoke")
            cur = padded
        if any(n > _INT32_MAX for n in cur):
            raise node.fail(f"dilated/padded shape {list(cur)} exceeds LiteRT's int32 "
                            "dimensions")
        itemsize = node.inputs[0].dtype.itemsize
        temp = sum(math.prod(s) for s in (dilated, padded) if s is not None) * itemsize
        if temp > _bytes_limit():
            raise node.fail(f"the dilated/padded temporaries ({list(cur)}) would need "
                            f"{temp / 2**30:.1f} GiB")
        out = []
        for i in range(rank):
            eff = (window[i] - 1) * wdil[i] + 1
            if abs(eff) > _INT64_MAX:
                raise node.fail(f"window {window[i]} with dilation {wdil[i]} overflows "
                                "LiteRT's int64 window arithmetic")
            o = 0 if cur[i] < eff else (cur[i] - eff) // strides[i] + 1
            if o > _INT32_MAX:
                raise node.fail(f"output dimension {i} would be {o}, beyond int32")
            out.append(o)
        self.geom = (tuple(shape), dilated, padded, tuple(window), tuple(strides), tuple(bdil),
                     tuple(wdil), tuple(padding))
        check_allocation(node, [tuple(out)], runtime=False)
        # Our eval is a numpy pass per window tap over the output (plus the temporaries): a
        # fuzzed padding of 2**25 made a 200M-value output of 3 taps run for minutes.
        work = math.prod(out) * max(math.prod(window), 1) + temp // itemsize
        if work > MAX_WORK:
            raise node.fail(f"output {out} x {math.prod(window)} window taps is {work:.3g} "
                            f"element operations, beyond the {MAX_WORK:.3g} this numpy kernel "
                            "does in seconds")
        return tuple(out)

    def _dtype_error(self, dt):
        if dt not in DTYPES:
            return (f"LiteRT's kernel has no {dt.name} path (it fails at invoke): bool, int8, "
                    "int16, int32, int64, uint8, float32 and float64 only")
        return None

    def eval(self, inputs):
        if self.error is not None:
            raise self.node.fail(self.error)
        x, init = inputs[0], inputs[1]
        shape, dilated, padded, window, strides, bdil, wdil, padding = self.geom
        out_dtype = x.dtype
        if x.dtype == np.bool_:
            x, init = x.view(np.int8), np.asarray(init).view(np.int8)
        init = np.asarray(init).reshape(-1)[0]
        res = _reduce(_pad(_dilate(x, init, dilated, bdil), init, padded, padding), init,
                      window, strides, wdil, self.fn, self.out_shape)
        return [res.view(out_dtype) if out_dtype == np.bool_ else res]


def _dilate(x, init, dilated, bdil):
    if dilated is None:
        return x
    d = np.full(dilated, init, x.dtype)
    d[tuple(slice(None, None, s) for s in bdil)] = x
    return d


def _pad(x, init, padded, padding):
    if padded is None:
        return x
    p = np.full(padded, init, x.dtype)
    src, dst = [], []
    for i, n in enumerate(x.shape):
        lo, hi = padding[2 * i], padding[2 * i + 1]
        a, b = max(-lo, 0), n - max(-hi, 0)
        size = max(b - a, 0)
        src.append(slice(a, a + size))
        dst.append(slice(max(lo, 0), max(lo, 0) + size))
    p[tuple(dst)] = x[tuple(src)]
    return p


def _reduce(p, init, window, strides, wdil, fn, out_shape):
    dt = p.dtype
    if math.prod(out_shape) == 0:
        return np.zeros(out_shape, dt)
    taps = tuple(max(w, 0) for w in window)
    if math.prod(taps) == 0:  # no window element: every output is the init value
        return np.full(out_shape, init, dt)
    st = p.strides
    # Strides of dimensions of size 1 are never used: zero them so huge values cannot overflow.
    ostr = tuple(0 if o == 1 else s * k for o, s, k in zip(out_shape, st, strides))
    tstr = tuple(0 if t == 1 else s * d for t, s, d in zip(taps, st, wdil))
    view = np.lib.stride_tricks.as_strided(p, shape=tuple(out_shape) + taps,
                                           strides=ostr + tstr, writeable=False)
    axes = tuple(range(len(out_shape), 2 * len(out_shape)))
    if fn in ("all", "any"):
        red = np.logical_and if fn == "all" else np.logical_or
        truth = red.reduce(view != 0, axis=axes)
        return red(truth, init != 0).astype(dt)
    if dt.kind in "iu":  # integer folds are order-free: modular add/multiply, exact min/max
        ufunc = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[fn]
        r = ufunc.reduce(view, axis=axes, dtype=dt) if fn in ("add", "mul") else \
            ufunc.reduce(view, axis=axes)
        return ufunc(r, dt.type(init), dtype=dt) if fn in ("add", "mul") else \
            ufunc(r, dt.type(init))
    # Floats: fold init then each window element in row-major order, as LiteRT does.
    acc = np.full(out_shape, init, dt)
    for tap in np.ndindex(*taps):
        v = view[(Ellipsis,) + tap]
        if fn == "add":
            np.add(acc, v, out=acc)
        elif fn == "mul":
            np.multiply(acc, v, out=acc)
        elif fn == "max":  # a >= b ? a : b
            acc = np.where(acc >= v, acc, v)
        else:  # a <= b ? a : b
            acc = np.where(acc <= v, acc, v)
    return acc


@register(Op.STABLEHLO_REDUCE_WINDOW)
class StablehloReduceWindow(_ReduceWindowBase):
    N_INPUTS = 2

    def prepare(self):
        node = self.node
        x = self._common_checks()
        o = node.stored_options
        if o is None:
            raise node.fail("has no StablehloReduceWindowOptions (LiteRT refuses the model)")
        wd = o.window_dimensions
        if not wd:
            raise node.fail("window_dimensions is required and must not be empty")
        n = len(wd)

        def attr(name, want, fill):
            v = getattr(o, name)
            if not v:
                return (fill,) * want
            if len(v) != want:
                raise node.fail(f"{name} has {len(v)} values, expected {want}")
            return tuple(int(a) for a in v)

        strides = attr("window_strides", n, 1)
        bdil = attr("base_dilations", n, 1)
        wdil = attr("window_dilations", n, 1)
        padding = attr("padding", 2 * n, 0)
        rank = len(x.shape)
        if n < rank:
            raise node.fail(f"window_dimensions has {n} values for a rank-{rank} input")
        window = tuple(int(a) for a in wd)[:rank]  # LiteRT reads the first `rank` values
        for name, v in (("base_dilations", bdil), ("window_dimensions", window),
                        ("window_strides", strides), ("window_dilations", wdil)):
            if any(a <= 0 for a in v[:rank]):
                raise node.fail(f"{name} {list(v[:rank])} must all be > 0")
        self.out_shape = self._geometry(tuple(x.shape), window, strides[:rank], bdil[:rank],
                                        wdil[:rank], padding[:2 * rank])
        self.fn, self.error = self._body(o.body_subgraph_index), self._dtype_error(x.dtype)
        if self.error is None and self.fn is None:
            self.error = self.body_error
        return [self.out_shape]

    def _body(self, si):
        node = self.node
        model = getattr(node.runtime, "model", None)
        if model is None:
            raise node.fail("needs the model to read its body subgraph")
        if not 0 <= int(si) < len(model.subgraphs):
            self.body_error = f"body subgraph {si} does not exist"
            return None
        ops = model.subgraphs[int(si)].operators
        if len(ops) != 1:
            self.body_error = (f"LiteRT allows one operator in the body subgraph {si}; it has "
                               f"{len(ops)} (it fails at invoke)")
            return None
        fn = BODY_FUNCTIONS.get(ops[0].code)
        if fn is None:
            self.body_error = (f"unsupported reduction body {ops[0].name} in subgraph {si} "
                               "(LiteRT fails at invoke)")
        return fn


@register(Op.REDUCE_WINDOW)
class ReduceWindow(_ReduceWindowBase):
    N_INPUTS = 5

    def prepare(self):
        node = self.node
        x = self._common_checks()
        rank = len(x.shape)
        vals = []
        for k, name in ((2, "window dimensions"), (3, "window strides"),
                        (4, "window dilations")):
            t = node.inputs[k]
            if t.data is None:
                raise node.fail(f"{name} (input {k}) must be a constant tensor")
            if t.dtype != np.int64:
                raise node.fail(f"{name} (input {k}) must be int64, got {t.tensor.type_name}")
            v = np.asarray(t.data).reshape(-1)
            if v.size < rank:  # LiteRT reads `rank` values whatever the size: out of bounds
                raise node.fail(f"{name} (input {k}) has {v.size} values for a rank-{rank} "
                                "input")
            vals.append(tuple(int(a) for a in v[:rank]))
        window, strides, wdil = vals
        if any(s <= 0 for s in strides):
            raise node.fail(f"window strides {list(strides)} must be > 0 (LiteRT divides by "
                            "them)")
        if any(w > 1 and d < 0 for w, d in zip(window, wdil)):
            raise node.fail(f"negative window dilations {list(wdil)} read before the input")
        self.out_shape = self._geometry(tuple(x.shape), window, strides, (1,) * rank, wdil,
                                        (0,) * (2 * rank))
        o = node.stored_options
        self.error = self._dtype_error(x.dtype)
        if o is None:  # LiteRT's zeroed params: the unsupported function, refused at invoke
            self.fn = None
            self.error = self.error or "has no ReduceWindowOptions: no reduce function"
        else:
            self.fn = _OPTION_FUNCTIONS.get(o.reduce_function)
            if self.fn is None:  # LiteRT refuses the model when it parses the options
                raise node.fail(f"unsupported reduce_function {int(o.reduce_function)}")
        return [self.out_shape]
