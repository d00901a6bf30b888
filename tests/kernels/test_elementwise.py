"""Elementwise, math, comparison, logical, reduction and activation kernels against LiteRT's
built-in kernels (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``).

Two kinds of models:

* converted with TensorFlow's converter (cached per case), checking the converter really
  emitted the op under test: the shapes, dtypes and options real models carry;
* one-op models built directly in the IR (milliseconds each), to cover the dtype matrix,
  broadcasting ranks 0-6, every option value, and edge values (NaN, +-inf, 0, integer extremes)
  exactly as LiteRT computes them, including cases the converter folds or rewrites.

Float outputs agree within 1e-4 of the output's range (NaN and infinities at the same places),
float16 within one half-precision step; integer and bool outputs are bit-exact.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import InputError, ModelError, UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir import ops as O
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph

Op = O.Op
F32, F16, F64 = np.float32, np.float16, np.float64
I8, U8, I16, U16, I32, U32, I64 = np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, \
    np.int64
B, C64 = np.bool_, np.complex64

_CACHE: dict[str, bytes] = {}


# -- model building ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def convert(tf, key: str, fn, specs) -> bytes:
    """TFLite bytes of ``fn`` with the given input (shape, dtype) specs, cached per key."""
    if key not in _CACHE:
        f = tf.function(fn, input_signature=[tf.TensorSpec(s, d) for s, d in specs])
        conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
        _CACHE[key] = conv.convert()
    return _CACHE[key]


def op_names(content: bytes) -> list[str]:
    return [op.name for op in wb.load(content).main.operators]


class Const:
    """A constant input of a hand-built model."""

    def __init__(self, value):
        self.value = np.asarray(value)


def one_op(op, ins, outs, options=None, quant=None) -> bytes:
    """A model with one operator. ``ins``: arrays (model inputs fed at run time), :class:`Const`
    (constant tensors) or None (omitted); ``outs``: (shape, dtype) of each output. ``quant``:
    QuantParams given to every int8/uint8/int16 tensor."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)

    def q(dt):
        return quant if quant is not None and np.dtype(dt) in (I8, U8, I16) else None

    tin = []
    for k, x in enumerate(ins):
        if x is None:
            tin.append(None)
        elif isinstance(x, Const):
            tin.append(sg.new_tensor(f"c{k}", x.value.shape, x.value.dtype, data=x.value,
                                     quantization=q(x.value.dtype)))
        else:
            t = sg.new_tensor(f"in{k}", x.shape, x.dtype, quantization=q(x.dtype))
            tin.append(t)
            sg.inputs.append(t)
    tout = [sg.new_tensor(f"out{k}", s, d, quantization=q(d)) for k, (s, d) in enumerate(outs)]
    sg.outputs.extend(tout)
    sg.add_operator(Operator(m.opcode(op), tin, tout, options=options))
    return m.to_bytes()


def feeds(ins) -> list[np.ndarray]:
    return [x for x in ins if x is not None and not isinstance(x, Const)]


# -- running and comparing ---------------------------------------------------------------------
def _run(it, xs):
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def run_ours(content, xs):
    return _run(Interpreter(model_content=content), xs)


def run_litert(content, xs):
    return _run(litert_interpreter(content), xs)


def assert_close(got: np.ndarray, exp: np.ndarray, what: str = "", exact=False) -> None:
    assert got.shape == exp.shape and got.dtype == exp.dtype, \
        f"{what}: got {got.dtype}{list(got.shape)}, expected {exp.dtype}{list(exp.shape)}"
    if exact or exp.dtype.kind not in "fc" or exp.size == 0:
        np.testing.assert_array_equal(got, exp, err_msg=what)
        return
    g = got.astype(np.complex128 if exp.dtype.kind == "c" else np.float64)
    e = exp.astype(g.dtype)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(e), err_msg=f"{what}: NaN positions")
    inf = np.isinf(e)
    np.testing.assert_array_equal(g[inf], e[inf], err_msg=f"{what}: infinities")
    fin = np.isfinite(e)
    if not fin.any():
        return
    np.testing.assert_array_equal(np.isfinite(g[fin]), True, err_msg=f"{what}: finite values")
    with np.errstate(over="ignore"):
        rng = float(np.max(e[fin].real) - np.min(e[fin].real)) if e.dtype.kind == "f" else \
            float(np.max(np.abs(e[fin])))
    tol = 1e-4 * max(rng, 1e-6) + 1e-6
    if exp.dtype == F16:  # one half-precision step
        tol = max(tol, float(np.max(np.abs(e[fin]))) * 2.0 ** -10)
    err = float(np.max(np.abs(g[fin] - e[fin])))
    assert err <= tol, f"{what}: max error {err:g} > {tol:g}"


def check(content: bytes, xs, what: str = "", exact=False) -> list[np.ndarray]:
    """Run ours and LiteRT on ``xs``; compare every output; return LiteRT's."""
    expected = run_litert(content, xs)
    got = run_ours(content, xs)
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_close(g, e, f"{what} output {k}", exact)
    return expected


def check_op(op, ins, outs, options=None, what="", quant=None, exact=False):
    return check(one_op(op, ins, outs, options, quant), feeds(ins), what or op.name, exact)


# -- input values ------------------------------------------------------------------------------
RNG = np.random.default_rng(1234)


def rand(shape, dt, lo=-10, hi=10, nonzero=False, rng=RNG) -> np.ndarray:
    dt = np.dtype(dt)
    if dt == B:
        return rng.integers(0, 2, shape).astype(B)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        x = rng.integers(max(lo, info.min), min(hi, info.max), shape, endpoint=True).astype(dt)
    elif dt.kind == "c":
        x = (rng.uniform(lo, hi, shape) + 1j * rng.uniform(lo, hi, shape)).astype(dt)
    else:
        x = rng.uniform(lo, hi, shape).astype(dt)
    if nonzero:
        x[x == 0] = 1
    return x


def specials(dt) -> np.ndarray:
    """Edge values of a dtype."""
    dt = np.dtype(dt)
    if dt.kind == "f":
        f = np.finfo(dt)
        return np.array([0, -0.0, 1, -1, 0.5, -0.5, 1.5, -2.5, 2.5, np.nan, np.inf, -np.inf,
                         f.max, -f.max, f.tiny, 3.7, -3.7, 100, -100], dt)
    if dt == B:
        return np.array([True, False], dt)
    i = np.iinfo(dt)
    return np.array([0, 1, -1 if i.min else 2, i.min, i.max, i.min + 1, i.max - 1, 7, 100 % i.max],
                    dt)


def pair_grid(dt):
    """Every pair of special values as two aligned 1-D arrays."""
    s = specials(dt)
    a, b = np.meshgrid(s, s, indexing="ij")
    return a.reshape(-1), b.reshape(-1)


BROADCASTS = [((2, 3), (2, 3)), ((3,), (2, 3)), ((2, 1, 4), (3, 1)), ((), (4,)),
              ((1,), (2, 3, 4, 5)), ((2, 1, 3, 1, 2), (1, 4, 1, 5, 1)),
              ((2, 1, 3, 1, 2, 1), (1, 2, 1, 2, 1, 3)), ((2, 0, 3), (3,)), ((2, 3), (0, 1, 3))]


# == binary arithmetic ==========================================================================
def _opts(op, act=0):
    return {Op.ADD: O.AddOptions(act, False), Op.SUB: O.SubOptions(act, False),
            Op.MUL: O.MulOptions(act), Op.DIV: O.DivOptions(act)}.get(op)


#: op -> dtypes LiteRT computes as plain numbers (no quantization).
BINARY = {
    Op.ADD: (F32, F16, I32, I64, I16),
    Op.SUB: (F32, I32, I64),
    Op.MUL: (F32, F16, I32, I64, I16, C64),
    Op.DIV: (F32, I32),
    Op.SQUARED_DIFFERENCE: (F32, I32),
    Op.MAXIMUM: (F32, F16, I8, U8, I16, I32, I64),
    Op.MINIMUM: (F32, F16, I8, U8, I16, I32, I64),
    Op.POW: (F32, I32),
    Op.FLOOR_DIV: (F32, I32, I16, I8),
    Op.FLOOR_MOD: (F32, I32, I64, I16, I8),
}


def _binary_inputs(op, dt, sa, sb):
    a = rand(sa, dt)
    nz = op in (Op.DIV, Op.FLOOR_DIV, Op.FLOOR_MOD) and np.dtype(dt).kind in "iu" \
        or op == Op.FLOOR_DIV
    b = rand(sb, dt, nonzero=nz)
    if op == Op.POW:
        a = rand(sa, dt, -4, 4) if np.dtype(dt).kind in "iu" else rand(sa, dt, 0.1, 3)
        b = rand(sb, dt, 0, 7) if np.dtype(dt).kind in "iu" else rand(sb, dt, -3, 3)
    return a, b


@pytest.mark.parametrize("op", list(BINARY), ids=lambda o: o.name)
def test_binary_dtypes_and_broadcasting(op):
    for dt in BINARY[op]:
        for sa, sb in BROADCASTS:
            a, b = _binary_inputs(op, dt, sa, sb)
            out = np.broadcast_shapes(sa, sb)
            for x, y in ((a, b), (b, a)) if op not in (Op.POW,) else ((a, b),):
                if op in (Op.DIV, Op.FLOOR_DIV, Op.FLOOR_MOD) and np.dtype(dt).kind in "iu" \
                        or op == Op.FLOOR_DIV:
                    y = np.where(y == 0, np.ones_like(y), y)
                check_op(op, [x, y], [(out, dt)], _opts(op),
                         f"{op.name} {np.dtype(dt).name} {x.shape} {y.shape}")
            # one side constant, as converted models usually have (a 0-element constant has
            # no buffer, so it would not be a constant)
            if b.size:
                check_op(op, [a, Const(b)], [(out, dt)], _opts(op), f"{op.name} const")


@pytest.mark.parametrize("op", [Op.ADD, Op.SUB, Op.MUL, Op.DIV], ids=lambda o: o.name)
def test_fused_activations(op):
    for dt in BINARY[op]:
        if np.dtype(dt).kind == "c":
            continue
        for act in O.ActivationFunctionType:
            a = rand((3, 4), dt, -8, 8)
            b = rand((4,), dt, -3, 3, nonzero=True)
            check_op(op, [a, b], [((3, 4), dt)], _opts(op, int(act)),
                     f"{op.name} {np.dtype(dt).name} {act.name}")


@pytest.mark.parametrize("op", list(BINARY), ids=lambda o: o.name)
def test_binary_edge_values(op):
    """NaN, infinities, signed zeros, float max (overflow is clamped to FLT_MAX on ADD/SUB/MUL/
    DIV), integer extremes (wrapping)."""
    for dt in BINARY[op]:
        if np.dtype(dt).kind == "c":
            continue
        a, b = pair_grid(dt)
        if op == Op.FLOOR_DIV or op in (Op.DIV, Op.FLOOR_MOD) and np.dtype(dt).kind in "iu":
            keep = b != 0
            if np.dtype(dt).kind in "iu":  # INT_MIN / -1 traps in C++
                keep &= ~((a == np.iinfo(dt).min) & (b == -1))
            a, b = a[keep], b[keep]
        if op == Op.POW and np.dtype(dt).kind in "iu":
            keep = b >= 0
            a, b = a[keep], b[keep]
        check_op(op, [a, b], [(a.shape, dt)], _opts(op), f"{op.name} {np.dtype(dt).name} edges")


def test_pot_scale_int16_is_ignored_off_the_int16_path():
    a, b = rand((2, 3), F32), rand((3,), F32)
    for op, opts in [(Op.ADD, O.AddOptions(1, True)), (Op.SUB, O.SubOptions(3, True))]:
        check_op(op, [a, b], [((2, 3), F32)], opts, f"{op.name} pot_scale_int16")
        check_op(op, [a.astype(I32), b.astype(I32)], [((2, 3), I32)], opts, f"{op.name} int32")


def test_integer_division_by_zero_fails_like_litert():
    for op, dt in [(Op.DIV, I32), (Op.FLOOR_DIV, I32), (Op.FLOOR_DIV, F32), (Op.FLOOR_MOD, I32),
                   (Op.FLOOR_MOD, I64)]:
        a, b = np.array([1, 2], dt), np.array([1, 0], dt)
        content = one_op(op, [a, b], [((2,), dt)], _opts(op))
        with pytest.raises(RuntimeError):
            run_litert(content, [a, b])
        with pytest.raises(InputError, match="division|zero"):
            run_ours(content, [a, b])
    a, b = np.array([2, 3], I32), np.array([1, -1], I32)
    with pytest.raises(InputError, match="negative"):
        run_ours(one_op(Op.POW, [a, b], [((2,), I32)]), [a, b])


def test_float_division_by_zero_and_overflow_are_clamped():
    a = np.array([1, -1, 0, 3e38, -3e38, np.inf], F32)
    b = np.array([0, 0, 0, 10, 10, 1], F32)
    expected = check_op(Op.DIV, [a, b], [((6,), F32)], _opts(Op.DIV))[0]
    assert expected[0] == np.finfo(F32).max and np.isnan(expected[2])
    check_op(Op.MUL, [a, b], [((6,), F32)], _opts(Op.MUL))
    check_op(Op.ADD, [a, a], [((6,), F32)], _opts(Op.ADD))


def test_unsupported_dtypes_are_named():
    """Quantized arithmetic now runs (tests/kernels/test_quant_elementwise.py); types no TFLite
    kernel takes still fail at allocate with the type named."""
    a = np.zeros((2,), F64)
    with pytest.raises(UnsupportedOpError, match="float64"):
        Interpreter(model_content=one_op(Op.ADD, [a, a], [((2,), F64)],
                                         _opts(Op.ADD))).allocate_tensors()


def test_selection_ops_take_quantized_integers_as_stored():
    """MAXIMUM/MINIMUM, FLOOR_DIV/FLOOR_MOD on int8/int16 and NEG ignore quantization in TFLite."""
    q = QuantParams(scale=[0.5], zero_point=[3])
    for dt in (I8, I16):
        a, b = rand((3, 5), dt, -20, 20), rand((5,), dt, -5, 5, nonzero=True)
        for op in (Op.MAXIMUM, Op.MINIMUM, Op.FLOOR_DIV, Op.FLOOR_MOD):
            check_op(op, [a, b], [((3, 5), dt)], quant=q, what=f"{op.name} quantized")
        check_op(Op.NEG, [a], [((3, 5), dt)], quant=q, what="NEG quantized")


def test_binary_converted(tf):
    specs = [((2, 1, 3), tf.float32), ((4, 3), tf.float32)]

    def f(a, b):
        return (a + b, a - b, a * b, a / b, tf.math.squared_difference(a, b), tf.maximum(a, b),
                tf.minimum(a, b), tf.pow(tf.abs(a) + 0.5, b), tf.math.floordiv(a, b),
                tf.math.floormod(a, b))

    content = convert(tf, "binary_f32", f, specs)
    names = op_names(content)
    for op in BINARY:
        assert op.name in names, (op.name, names)
    a, b = rand((2, 1, 3), F32), rand((4, 3), F32, nonzero=True)
    check(content, [a, b], "converted float binary")

    def g(a, b):
        return (a + b, a - b, a * b, a // b, tf.math.floormod(a, b), tf.maximum(a, b),
                tf.pow(a, tf.abs(b) % 4), tf.raw_ops.TruncateDiv(x=a, y=b),
                tf.math.squared_difference(a, b))

    content = convert(tf, "binary_i32", g, [((2, 3), tf.int32), ((3,), tf.int32)])
    names = op_names(content)
    for name in ("ADD", "SUB", "MUL", "FLOOR_DIV", "FLOOR_MOD", "MAXIMUM", "POW", "DIV",
                 "SQUARED_DIFFERENCE"):
        assert name in names, (name, names)
    check(content, [rand((2, 3), I32, -50, 50), rand((3,), I32, nonzero=True)], "converted int32")

    def h(a, b):
        return a + b, a - b, a * b, tf.math.floormod(a, b), tf.maximum(a, b), tf.minimum(a, b)

    content = convert(tf, "binary_i64", h, [((2, 3), tf.int64), ((2, 1), tf.int64)])
    names = op_names(content)
    for name in ("ADD", "SUB", "MUL", "FLOOR_MOD", "MAXIMUM", "MINIMUM"):
        assert name in names, (name, names)
    check(content, [rand((2, 3), I64, -10**12, 10**12), rand((2, 1), I64, nonzero=True)],
          "converted int64")


def test_fused_activation_converted(tf):
    def f(a, b):
        return tf.nn.relu(a + b), tf.nn.relu6(a * b), tf.nn.relu(a - b), tf.nn.relu6(a / b)

    content = convert(tf, "fused", f, [((2, 5), tf.float32), ((5,), tf.float32)])
    model = wb.load(content)
    acts = {op.name: op.options.fused_activation_function for op in model.main.operators}
    assert set(acts) >= {"ADD", "MUL", "SUB", "DIV"} and all(acts.values()), acts
    check(content, [rand((2, 5), F32), rand((5,), F32, nonzero=True)], "fused activations")


def test_resized_inputs_broadcast(tf):
    """Shapes are recomputed from resized inputs."""
    f = lambda a, b: (a * b + 1.0, tf.less(a, b))  # noqa: E731
    content = convert(tf, "resize", f, [((None, 3), tf.float32), ((3,), tf.float32)])
    for n in (1, 4, 0):
        a, b = rand((n, 3), F32), rand((3,), F32)
        its = [Interpreter(model_content=content), litert_interpreter(content)]
        outs = []
        for it in its:
            it.resize_tensor_input(it.get_input_details()[0]["index"], [n, 3])
            outs.append(_run(it, [a, b]))
        for g, e in zip(*outs):
            assert_close(g, e, f"resized to {n}")


# == unary math =================================================================================
UNARY = {
    Op.EXP: (F32,), Op.LOG: (F32,), Op.SQRT: (F32,), Op.RSQRT: (F32,), Op.SQUARE: (F32,),
    Op.ABS: (F32, I32, I16), Op.SIGN: (F32, F64, I32), Op.FLOOR: (F32, F16), Op.CEIL: (F32,),
    Op.ROUND: (F32, F16), Op.SIN: (F32, F16), Op.COS: (F32, F16),
    Op.NEG: (F32, F16, I8, I16, I32, I64), Op.LOGICAL_NOT: (B,),
    Op.RELU: (F32,), Op.RELU6: (F32,), Op.RELU_N1_TO_1: (F32,), Op.RELU_0_TO_1: (F32,),
    Op.LOGISTIC: (F32, F16), Op.TANH: (F32, F16), Op.HARD_SWISH: (F32,), Op.ELU: (F32,),
    Op.GELU: (F32, F16), Op.LEAKY_RELU: (F32,), Op.LOG_SOFTMAX: (F32,),
}


@pytest.mark.parametrize("op", list(UNARY), ids=lambda o: o.name)
def test_unary_dtypes_and_edges(op):
    for dt in UNARY[op]:
        xs = [specials(dt), rand((2, 3, 4), dt, -6, 6), rand((0, 3), dt), rand((), dt)]
        if op == Op.LOG_SOFTMAX:
            xs = [rand((3, 7), dt, -30, 30), rand((1, 1), dt),  # (LiteRT crashes when empty)
                  np.array([[0, -np.inf, 1, 2], [np.inf, 1, 2, 3]], dt)]
        for x in xs:
            opts = []
            if op == Op.GELU:
                opts = [O.GeluOptions(False), O.GeluOptions(True)]
            elif op == Op.LEAKY_RELU:
                opts = [O.LeakyReluOptions(0.2), O.LeakyReluOptions(-1.5)]
            for opt in opts or [None]:
                check_op(op, [x], [(x.shape, dt)], opt,
                         f"{op.name} {np.dtype(dt).name} {x.shape} {opt}")


@pytest.mark.parametrize("op,options", [(Op.GELU, O.GeluOptions(False)),
                                        (Op.GELU, O.GeluOptions(True)), (Op.LOGISTIC, None),
                                        (Op.TANH, None)])
def test_half_activations_are_bit_identical_on_every_half_value(op, options):
    """LiteRT's half GELU and LOGISTIC round every operation to half (GELU's ``erfcf``/``tanhf``
    and LOGISTIC's ``exp`` in float): not the float32 result rounded once, which differs by up
    to ~1% near -2.3 (GELU's approximate form) or 1-2 half steps (LOGISTIC)."""
    x = np.arange(1 << 16, dtype=np.uint16).view(F16)
    content = one_op(op, [x], [(x.shape, F16)], options)
    expected, got = run_litert(content, [x])[0], run_ours(content, [x])[0]
    np.testing.assert_array_equal(got.view(np.uint16)[~np.isnan(expected)],
                                  expected.view(np.uint16)[~np.isnan(expected)])
    assert np.isnan(got[np.isnan(expected)]).all()


@pytest.mark.parametrize("op,lo,hi,share", [(Op.EXP, -87, 88, 0.002), (Op.LOG, -80, 80, 0.002),
                                             (Op.SIN, -100, 100, 0.03),
                                             (Op.COS, -100, 100, 0.03)])
def test_float_transcendentals_agree_with_the_c_library(op, lo, hi, share):
    """LiteRT's float32 EXP/LOG/SIN/COS are the C library's expf/logf/sinf/cosf; ours (the
    float64 result rounded once) equal them on all but a small share of inputs and are never
    more than one ulp away (numpy's float32 functions differed on 4-40%, by up to 4 ulps).
    LOG's inputs are exp(uniform(lo, hi))."""
    rng = np.random.default_rng(7)
    x = rng.uniform(lo, hi, 100_000)
    x = (np.exp(x) if op == Op.LOG else x).astype(F32)
    content = one_op(op, [x], [(x.shape, F32)])
    expected, got = run_litert(content, [x])[0], run_ours(content, [x])[0]
    ulps = np.abs(got.view(np.int32).astype(np.int64) - expected.view(np.int32))
    assert ulps.max() <= 1 and (ulps != 0).mean() <= share, (ulps.max(), (ulps != 0).mean())


def test_round_is_half_to_even():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997], F32)
    out = check_op(Op.ROUND, [x], [(x.shape, F32)])[0]
    np.testing.assert_array_equal(out, [-2, -2, 0, 0, 2, 2, 4, 0])


def test_unary_converted(tf):
    def f(x):
        return (tf.exp(x), tf.math.log(x), tf.sqrt(x), tf.math.rsqrt(x), tf.square(x),
                tf.abs(x), tf.sign(x), tf.floor(x), tf.math.ceil(x), tf.round(x), tf.sin(x),
                tf.cos(x), tf.negative(x))

    content = convert(tf, "unary", f, [((3, 5), tf.float32)])
    names = op_names(content)
    for name in ("EXP", "LOG", "SQRT", "RSQRT", "SQUARE", "ABS", "SIGN", "FLOOR", "CEIL",
                 "ROUND", "SIN", "COS", "NEG"):
        assert name in names, (name, names)
    check(content, [rand((3, 5), F32, -4, 4)], "converted unary")

    g = lambda x: (tf.abs(x), tf.negative(x), tf.sign(x))  # noqa: E731
    content = convert(tf, "unary_i32", g, [((7,), tf.int32)])
    assert {"ABS", "NEG", "SIGN"} <= set(op_names(content))
    check(content, [specials(I32)[:7]], "converted int32 unary")


def test_activations_converted(tf):
    def f(x):
        return (tf.nn.relu(x), tf.nn.relu6(x), tf.clip_by_value(x, -1.0, 1.0),
                tf.clip_by_value(x, 0.0, 1.0), tf.sigmoid(x), tf.tanh(x),
                x * tf.nn.relu6(x + 3.0) / 6.0, tf.nn.leaky_relu(x, 0.3), tf.nn.elu(x),
                tf.nn.log_softmax(x))

    content = convert(tf, "activations", f, [((4, 33), tf.float32)])
    names = op_names(content)
    for name in ("RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH",
                 "LEAKY_RELU", "ELU", "LOG_SOFTMAX"):  # (clip to [0, 1] is not fused)
        assert name in names, (name, names)
    x = np.concatenate([np.linspace(-8, 8, 99, dtype=F32), rand((33,), F32, -50, 50)])
    check(content, [x.reshape(4, 33)], "converted activations")
    for approximate in (False, True):  # one GELU per model, or the converter cannot fuse it
        content = convert(tf, f"gelu_{approximate}",
                          lambda x: tf.nn.gelu(x, approximate=approximate), [((4, 33), tf.float32)])
        (op,) = wb.load(content).main.operators
        assert op.name == "GELU" and op.options.approximate == approximate
        check(content, [x.reshape(4, 33)], f"converted GELU approximate={approximate}")


def test_prelu():
    for xs, alpha in [((2, 3), (3,)), ((2, 4, 3), (1, 1, 3)), ((2, 3, 4, 5), (1, 4, 5)),
                      ((2, 1, 3, 4, 5, 6), (3, 1, 5, 6)), ((2, 3), (2, 3)), ((0, 3), (3,))]:
        x = rand(xs, F32)
        a = rand(alpha, F32, -1, 1)
        check_op(Op.PRELU, [x, a], [(xs, F32)], what=f"PRELU {xs} {alpha}")
        check_op(Op.PRELU, [x, Const(a)], [(xs, F32)], what=f"PRELU const {xs} {alpha}")
    x = rand((1, 4, 3), F32)
    with pytest.raises(ModelError, match="alpha"):
        Interpreter(model_content=one_op(Op.PRELU, [x, rand((2, 1, 3), F32)],
                                         [((2, 4, 3), F32)])).allocate_tensors()


def test_prelu_converted(tf):
    layer = tf.keras.layers.PReLU(shared_axes=[1, 2],
                                  alpha_initializer=tf.keras.initializers.RandomUniform(-1, 1))
    layer.build((None, 5, 6, 4))
    content = convert(tf, "prelu", lambda x: layer(x), [((2, 5, 6, 4), tf.float32)])
    assert "PRELU" in op_names(content)
    check(content, [rand((2, 5, 6, 4), F32)], "converted PRELU")


# == comparison and logical =====================================================================
COMPARE = {Op.LESS: np.less, Op.LESS_EQUAL: np.less_equal, Op.GREATER: np.greater,
           Op.GREATER_EQUAL: np.greater_equal, Op.EQUAL: np.equal, Op.NOT_EQUAL: np.not_equal}


@pytest.mark.parametrize("op", list(COMPARE), ids=lambda o: o.name)
def test_comparisons(op):
    # LiteRT's NOT_EQUAL has no int16 kernel (its output is garbage); ours compares correctly
    dtypes = [F32, F16, I32, I64] + ([I16] if op != Op.NOT_EQUAL else []) + \
        ([B] if op in (Op.EQUAL, Op.NOT_EQUAL) else [])
    for dt in dtypes:
        a, b = pair_grid(dt)
        check_op(op, [a, b], [(a.shape, B)], what=f"{op.name} {np.dtype(dt).name} edges")
        for sa, sb in BROADCASTS:
            x, y = rand(sa, dt, -3, 3), rand(sb, dt, -3, 3)
            check_op(op, [x, y], [(np.broadcast_shapes(sa, sb), B)],
                     what=f"{op.name} {np.dtype(dt).name} {sa} {sb}")
    # int16 is compared as stored even when quantized
    q = QuantParams(scale=[0.25], zero_point=[0])
    a, b = rand((4, 3), I16), rand((3,), I16)
    if op != Op.NOT_EQUAL:
        check_op(op, [a, b], [((4, 3), B)], quant=q, what=f"{op.name} quantized int16")
    got = run_ours(one_op(op, [a, b], [((4, 3), B)], quant=q), [a, b])[0]
    np.testing.assert_array_equal(got, COMPARE[op](a, b))


@pytest.mark.parametrize("op", [Op.LOGICAL_AND, Op.LOGICAL_OR], ids=lambda o: o.name)
def test_logical(op):
    for sa, sb in BROADCASTS:
        check_op(op, [rand(sa, B), rand(sb, B)], [(np.broadcast_shapes(sa, sb), B)],
                 what=f"{op.name} {sa} {sb}")


def test_comparison_and_logical_converted(tf):
    def f(a, b, c):
        lt, ge = tf.less(a, b), tf.greater_equal(a, b)
        return (lt, tf.less_equal(a, b), tf.greater(a, b), ge, tf.equal(a, b),
                tf.not_equal(a, b), tf.logical_and(lt, c), tf.logical_or(ge, c),
                tf.logical_not(c))

    for dt, npdt in ((tf.float32, F32), (tf.int32, I32), (tf.int64, I64)):
        content = convert(tf, f"cmp_{npdt.__name__}", f,
                          [((3, 4), dt), ((4,), dt), ((3, 4), tf.bool)])
        names = op_names(content)
        for name in ("LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL",
                     "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT"):
            assert name in names, (name, names)
        check(content, [rand((3, 4), npdt, -2, 2), rand((4,), npdt, -2, 2), rand((3, 4), B)],
              f"converted comparisons {npdt.__name__}")


# == select and cast ============================================================================
ALL_DTYPES = (F32, F16, F64, I8, U8, I16, I32, I64, B)


def test_select_v2_broadcasting_all_dtypes():
    for dt in ALL_DTYPES:
        for sc, sx, sy in [((2, 3), (2, 3), (2, 3)), ((), (2, 3), (3,)), ((2, 1), (3,), (2, 3)),
                           ((1, 3, 1, 2), (2, 1, 4, 1), (1,)), ((2, 0), (1,), (2, 1)),
                           ((2, 1, 1, 1, 2, 1), (1, 2, 1, 2, 1, 3), (3,))]:
            out = np.broadcast_shapes(sc, sx, sy)
            check_op(Op.SELECT_V2, [rand(sc, B), rand(sx, dt), rand(sy, dt)], [(out, dt)],
                     what=f"SELECT_V2 {np.dtype(dt).name} {sc} {sx} {sy}")
    q = QuantParams(scale=[0.1], zero_point=[-3])
    check_op(Op.SELECT_V2, [rand((4,), B), rand((4,), I8), rand((4,), I8)], [((4,), I8)],
             quant=q, what="SELECT_V2 quantized")


def test_select_v1_condition_shapes():
    for dt in ALL_DTYPES:
        for sc, sx in [((2, 3), (2, 3)), ((), (2, 3)), ((4,), (4, 2, 3)), ((3,), (3,)),
                       ((0,), (0, 2))]:
            check_op(Op.SELECT, [rand(sc, B), rand(sx, dt), rand(sx, dt)], [(sx, dt)],
                     what=f"SELECT {np.dtype(dt).name} {sc} {sx}")
    with pytest.raises(ModelError, match="condition"):
        Interpreter(model_content=one_op(Op.SELECT, [rand((3,), B), rand((2, 3), F32),
                                                     rand((2, 3), F32)],
                                         [((2, 3), F32)])).allocate_tensors()


def test_select_converted(tf):
    def f(c, x, y):
        return tf.where(c, x, y), tf.raw_ops.Select(condition=c[:, 0], x=x, y=x * 2.0)

    content = convert(tf, "select", f, [((2, 3), tf.bool), ((2, 3), tf.float32),
                                        ((3,), tf.float32)])
    names = op_names(content)
    assert "SELECT_V2" in names and "SELECT" in names, names
    check(content, [rand((2, 3), B), rand((2, 3), F32), rand((3,), F32)], "converted select")


CAST_DTYPES = (F32, F16, F64, I8, U8, I16, U16, I32, U32, I64, B, C64)


def test_cast_matrix():
    """Every pair of types; floats saturate to integers (NaN -> max), integers wrap."""
    for src in CAST_DTYPES:
        s = np.dtype(src)
        if s.kind == "f":
            with np.errstate(over="ignore"):
                x = np.concatenate([specials(src), np.array([200.7, -200.7, 70000.5, 3e9, -3e9,
                                                             2147483520, 1e19, -1e19], F64)
                                    .astype(src)])
        elif s.kind == "c":
            x = np.array([1 + 2j, 0 + 1j, -3.5 + 0j, 0, 300.25 - 7j], src)
        else:
            x = specials(src)
        for dst in CAST_DTYPES:
            check_op(Op.CAST, [x], [(x.shape, dst)], O.CastOptions(0, 0),
                     what=f"CAST {s.name} -> {np.dtype(dst).name}", exact=True)


def test_cast_converted(tf):
    def f(x, i):
        return (tf.cast(x, tf.int32), tf.cast(x, tf.uint8), tf.cast(x, tf.bool),
                tf.cast(i, tf.float32), tf.cast(i, tf.int64), tf.cast(i, tf.int8))

    content = convert(tf, "cast", f, [((12,), tf.float32), ((5,), tf.int32)])
    assert op_names(content).count("CAST") == 6
    x = np.array([-1e10, 1e10, np.nan, -3.7, 3.7, 200.5, -0.9, 0, 255.9, 256, -1, 1], F32)
    check(content, [x, np.array([-129, 300, 0, 2**31 - 1, -2**31], I32)], "converted cast")


# == reductions =================================================================================
REDUCE = {
    Op.SUM: (F32, I32, I64), Op.MEAN: (F32, I32, I64), Op.REDUCE_PROD: (F32, I32, I64),
    Op.REDUCE_MAX: (F32, I8, U8, I16, I32, I64), Op.REDUCE_MIN: (F32, I8, U8, I16, I32, I64),
    Op.REDUCE_ANY: (B,), Op.REDUCE_ALL: (B,),
}
AXES = [[1], [-1], [0, 2], [2, 0, -3], [], [0, 1, 2], [1, 1]]


def _reduced(shape, axes, keep):
    ax = {a % len(shape) for a in axes}
    return tuple(1 if i in ax else d for i, d in enumerate(shape)) if keep else \
        tuple(d for i, d in enumerate(shape) if i not in ax)


@pytest.mark.parametrize("op", list(REDUCE), ids=lambda o: o.name)
def test_reductions(op):
    for dt in REDUCE[op]:
        lo, hi = (-3, 3) if op == Op.REDUCE_PROD else (-10**6, 10**6)
        x = rand((3, 4, 5), dt, lo, hi)
        for axes in AXES:
            for keep in (False, True):
                ax = np.array(axes, I32)
                out = _reduced(x.shape, axes, keep)
                what = f"{op.name} {np.dtype(dt).name} axes={axes} keep={keep}"
                expected = check_op(op, [x, Const(ax)], [(out, dt)], O.ReducerOptions(keep),
                                    what)
                # run-time axes (the recorded output shape is the true one here)
                check_op(op, [x, ax], [(out, dt)], O.ReducerOptions(keep), what + " rt")
                # int64 axes: LiteRT wants int32, ours takes both
                got = run_ours(one_op(op, [x, Const(ax.astype(I64))], [(out, dt)],
                                      O.ReducerOptions(keep)), [x])
                assert_close(got[0], expected[0], what + " int64 axes")
        # empty reductions and empty outputs
        for shape, axes in [((2, 0, 3), [1]), ((0, 3), [1]), ((2, 0), [0, 1])]:
            e = rand(shape, dt)
            check_op(op, [e, Const(np.array(axes, I32))], [(_reduced(shape, axes, False), dt)],
                     O.ReducerOptions(False), f"{op.name} empty {shape} {axes}")


def test_integer_sum_and_mean_overflow():
    x = np.full((2, 4), 2**30, I32)
    x[1] = [-7, 5, 1, -2**31]
    for op in (Op.SUM, Op.MEAN, Op.REDUCE_PROD):
        check_op(op, [x, Const(np.array([1], I32))], [((2,), I32)], O.ReducerOptions(False))
        x64 = x.astype(I64) * 2**32
        check_op(op, [x64, Const(np.array([1], I32))], [((2,), I64)], O.ReducerOptions(False))
    y = np.array([[-7, 5, 1], [-7, -1, 0], [7, 1, 0]], I32)  # means truncate toward zero
    check_op(Op.MEAN, [y, Const(np.array([1], I32))], [((3,), I32)], O.ReducerOptions(False))


@pytest.mark.parametrize("op", [Op.REDUCE_MAX, Op.REDUCE_MIN], ids=lambda o: o.name)
def test_reduce_max_min_nan_and_inf(op):
    rng = np.random.default_rng(5)
    for shape in [(4, 7), (3, 5, 6), (2, 33, 17)]:
        x = rng.standard_normal(shape).astype(F32)
        x[rng.random(shape) < 0.15] = np.nan
        x[rng.random(shape) < 0.05] = np.inf
        x[rng.random(shape) < 0.05] = -np.inf
        x.reshape(-1)[-1] = np.nan
        for axes in ([0], [-1], [0, -1], list(range(len(shape))), [1]):
            check_op(op, [x, Const(np.array(axes, I32))],
                     [(_reduced(shape, axes, True), F32)], O.ReducerOptions(True),
                     f"{op.name} NaN {shape} {axes}")


def test_reductions_converted(tf):
    def f(x, b):
        return (tf.reduce_sum(x, [1]), tf.reduce_max(x, [0, 2], keepdims=True),
                tf.reduce_min(x, [-1]), tf.reduce_prod(x, [2]), tf.reduce_mean(x, [1, 2]),
                tf.reduce_any(b, [1]), tf.reduce_all(b, [0], keepdims=True))

    content = convert(tf, "reduce", f, [((3, 4, 5), tf.float32), ((3, 4), tf.bool)])
    names = op_names(content)
    for name in ("SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "MEAN", "REDUCE_ANY",
                 "REDUCE_ALL"):
        assert name in names, (name, names)
    check(content, [rand((3, 4, 5), F32, -2, 2), rand((3, 4), B)], "converted reductions")

    g = lambda x: (tf.reduce_sum(x, [0]), tf.reduce_max(x, -1), tf.reduce_mean(x, [1]))  # noqa
    content = convert(tf, "reduce_i32", g, [((3, 4), tf.int32)])
    assert {"SUM", "REDUCE_MAX", "MEAN"} <= set(op_names(content))
    check(content, [rand((3, 4), I32, -100, 100)], "converted int reductions")


def test_reduction_with_runtime_axes_converted(tf):
    """Run-time axes make the output shape data-dependent (the interpreter adopts it)."""
    g = lambda x, a: (tf.reduce_sum(x, a), tf.reduce_max(x, a))  # noqa: E731
    content = convert(tf, "reduce_rt", g, [((3, 4), tf.float32), ((1,), tf.int32)])
    assert {"SUM", "REDUCE_MAX"} <= set(op_names(content))
    check(content, [rand((3, 4), F32), np.array([1], I32)], "converted run-time axes")


# == arg max/min, top-k, cumsum =================================================================
@pytest.mark.parametrize("op", [Op.ARG_MAX, Op.ARG_MIN], ids=lambda o: o.name)
def test_arg_min_max(op):
    opts = O.ArgMaxOptions if op == Op.ARG_MAX else O.ArgMinOptions
    for dt in (F32, I8, U8, I32, B):
        x = rand((3, 4, 5), dt, -3, 3)  # small range: many ties (first index wins)
        for axis in (0, 1, 2, -1, -3):
            out = tuple(d for i, d in enumerate(x.shape) if i != axis % 3)
            for out_dt, code in ((I32, O.TensorType.INT32), (I64, O.TensorType.INT64)):
                for ax in (np.array([axis], I32), np.array(axis, I64)):
                    check_op(op, [x, Const(ax)], [(out, out_dt)], opts(code),
                             f"{op.name} {np.dtype(dt).name} axis={axis} -> {out_dt.__name__}")
    x = np.array([[np.nan, 1, 2], [1, np.nan, 2], [1, 2, np.nan], [np.nan] * 3,
                  [np.nan, -np.inf, -np.inf], [np.inf, np.nan, np.inf]], F32)
    for axis in (0, 1):
        out = (x.shape[1 - axis],)
        check_op(op, [x, Const(np.array([axis], I32))], [(out, I32)], opts(2), f"{op.name} NaN")
        check_op(op, [-x, Const(np.array([axis], I32))], [(out, I32)], opts(2), f"{op.name} NaN")


def test_runtime_axis_and_k():
    """A run-time axis (ARG_MAX, CUMSUM) or k (TOPK_V2) is read at invoke."""
    x = rand((3, 4, 5), F32)
    check_op(Op.ARG_MAX, [x, np.array([-2], I32)], [((3, 5), I64)], O.ArgMaxOptions(4),
             "ARG_MAX run-time axis")
    check_op(Op.TOPK_V2, [x, np.array(2, I32)], [((3, 4, 2), F32), ((3, 4, 2), I32)],
             what="TOPK_V2 run-time k")


def test_topk():
    for dt in (F32, I8, U8, I16, I32, I64):
        for shape in [(7,), (3, 9), (2, 3, 16)]:
            x = rand(shape, dt, -4, 4)  # many ties: lower index first
            for k in (0, 1, 3, shape[-1]):
                for idx_dt, k_dt in ((I32, I32), (I16, I16)):
                    out = shape[:-1] + (k,)
                    check_op(Op.TOPK_V2, [x, Const(np.array(k, k_dt))],
                             [(out, dt), (out, idx_dt)],
                             what=f"TOPK {np.dtype(dt).name} {shape} k={k}")
    x = np.array([[np.nan, 1, 2, -np.inf], [1, np.nan, 2, np.inf], [np.nan, np.nan, 0, -0.0]],
                 F32)
    check_op(Op.TOPK_V2, [x, Const(np.array(4, I32))], [((3, 4), F32), ((3, 4), I32)],
             what="TOPK NaN")
    content = one_op(Op.TOPK_V2, [x, Const(np.array(5, I32))], [((3, 5), F32), ((3, 5), I32)])
    with pytest.raises(ModelError, match="k = 5"):
        Interpreter(model_content=content).allocate_tensors()


def test_cumsum():
    for dt in (F32, I32, I64):
        x = rand((3, 4, 5), dt, -1000, 1000)
        for axis in (0, 1, 2, -1, -2):
            for exclusive in (False, True):
                for reverse in (False, True):
                    opt = O.CumsumOptions(exclusive, reverse)
                    what = f"CUMSUM {np.dtype(dt).name} axis={axis} ex={exclusive} rev={reverse}"
                    check_op(Op.CUMSUM, [x, Const(np.array(axis, I32))], [(x.shape, dt)], opt,
                             what)
        check_op(Op.CUMSUM, [x, np.array(1, I32)], [(x.shape, dt)], O.CumsumOptions(True, True),
                 "CUMSUM run-time axis")
        e = rand((2, 0, 3), dt)
        check_op(Op.CUMSUM, [e, Const(np.array(1, I32))], [(e.shape, dt)],
                 O.CumsumOptions(True, False), "CUMSUM empty")
    big = np.full((2, 3), 2**31 - 5, I32)
    check_op(Op.CUMSUM, [big, Const(np.array(1, I32))], [(big.shape, I32)],
             O.CumsumOptions(False, False), "CUMSUM wraps")


def test_argmax_topk_cumsum_converted(tf):
    def f(x):
        return (tf.argmax(x, axis=1, output_type=tf.int32), tf.argmin(x, axis=-1),
                tf.math.top_k(x, k=3), tf.math.cumsum(x, axis=1, exclusive=True, reverse=True),
                tf.math.cumsum(x, axis=0))

    content = convert(tf, "argmax_topk_cumsum", f, [((4, 6), tf.float32)])
    names = op_names(content)
    for name in ("ARG_MAX", "ARG_MIN", "TOPK_V2", "CUMSUM"):
        assert name in names, (name, names)
    check(content, [np.round(rand((4, 6), F32, -3, 3))], "converted argmax/topk/cumsum")


# == ATAN2, ADD_N, bitwise ops ==================================================================
def test_atan2_quadrants_zeros_and_specials():
    y, x = pair_grid(F32)  # every sign, zero, infinity and NaN combination
    check_op(Op.ATAN2, [y, x], [(y.shape, F32)], what="ATAN2 specials")
    a, b = rand((3, 4, 5), F32), rand((3, 4, 5), F32)
    check_op(Op.ATAN2, [a, b], [(a.shape, F32)], what="ATAN2 random")
    check_op(Op.ATAN2, [Const(a), b], [(a.shape, F32)], what="ATAN2 constant y")
    with pytest.raises(ModelError, match="one shape"):
        Interpreter(model_content=one_op(Op.ATAN2, [a, b[:1]], [(a.shape, F32)])) \
            .allocate_tensors()
    with pytest.raises(UnsupportedOpError):
        Interpreter(model_content=one_op(Op.ATAN2, [a.astype(I32), b.astype(I32)],
                                         [(a.shape, I32)])).allocate_tensors()


def test_add_n_sums_in_order():
    for dt, lo, hi in ((F32, -1e4, 1e4), (I32, -2**31, 2**31 - 1)):  # int32 wraps
        xs = [rand((2, 3, 4), dt, lo, hi) for _ in range(4)]
        check_op(Op.ADD_N, xs, [((2, 3, 4), dt)], what=f"ADD_N {np.dtype(dt).name}")
    one = rand((5,), F32)
    with pytest.raises(ModelError, match="at least 2"):  # LiteRT refuses it too
        Interpreter(model_content=one_op(Op.ADD_N, [one], [((5,), F32)])).allocate_tensors()
    check_op(Op.ADD_N, [one, Const(one * 3)], [((5,), F32)], what="ADD_N constant")
    with pytest.raises(ModelError, match="all must match"):
        Interpreter(model_content=one_op(Op.ADD_N, [one, rand((4,), F32)], [((5,), F32)])) \
            .allocate_tensors()


BIT_TYPES = (I8, U8, I16, U16, I32, U32)


@pytest.mark.parametrize("op", [Op.BITWISE_XOR, Op.RIGHT_SHIFT], ids=lambda o: o.name)
@pytest.mark.parametrize("dt", BIT_TYPES, ids=lambda d: np.dtype(d).name)
def test_bitwise_ops(op, dt):
    a, b = pair_grid(dt)  # RIGHT_SHIFT: negative and over-wide shifts are clamped
    check_op(op, [a, b], [(a.shape, dt)], what=f"{op.name} {np.dtype(dt).name} edges")
    bits = np.dtype(dt).itemsize * 8
    x = rand((2, 3, 4), dt, -1000, 1000)
    s = rand((3, 1), dt, 0 if op == Op.BITWISE_XOR else -2, bits + 3)
    check_op(op, [x, s], [((2, 3, 4), dt)], what=f"{op.name} {np.dtype(dt).name} broadcast")


def test_bitwise_ops_refuse_float_and_mixed_types():
    a = rand((4,), F32)
    with pytest.raises(UnsupportedOpError):
        Interpreter(model_content=one_op(Op.RIGHT_SHIFT, [a, a], [((4,), F32)])) \
            .allocate_tensors()
    with pytest.raises(ModelError, match="same type"):
        Interpreter(model_content=one_op(Op.BITWISE_XOR, [a.astype(I32), a.astype(I16)],
                                         [((4,), I32)])).allocate_tensors()


def test_atan2_add_n_bitwise_converted(tf):
    def f(y, x, i, j):
        return (tf.atan2(y, x), tf.add_n([y, x, y * x]), tf.bitwise.bitwise_xor(i, j),
                tf.bitwise.right_shift(i, j))

    content = convert(tf, "atan2_addn_bitwise", f, [((3, 5), tf.float32), ((3, 5), tf.float32),
                                                     ((3, 5), tf.int32), ((3, 5), tf.int32)])
    names = op_names(content)
    for name in ("ATAN2", "ADD_N", "BITWISE_XOR", "RIGHT_SHIFT"):
        assert name in names, (name, names)
    check(content, [rand((3, 5), F32), rand((3, 5), F32), rand((3, 5), I32, -500, 500),
                    rand((3, 5), I32, -3, 40)], "converted atan2/add_n/bitwise")


# == RFFT2D and complex parts ===================================================================
@pytest.mark.parametrize("shape,fft", [((3, 4, 8), (4, 8)), ((2, 6, 10), (4, 8)),
                                       ((2, 3, 5), (4, 8)), ((5, 16), (1, 2)), ((2, 2, 3, 4),
                                                                               (8, 4))])
def test_rfft2d_crops_and_pads(shape, fft):
    x = rand(shape, F32, -3, 3)
    out = shape[:-2] + (fft[0], fft[1] // 2 + 1)
    check_op(Op.RFFT2D, [x, Const(np.array(fft, I32))], [(out, C64)], what=f"RFFT2D {fft}")
    (got,) = check_op(Op.RFFT2D, [x, np.array(fft, I32)], [((1, 1), C64)],
                      what=f"RFFT2D run-time {fft}")
    assert got.shape == out


def test_rfft2d_needs_powers_of_two():
    x = rand((4, 6), F32)
    with pytest.raises(ModelError, match="powers of two"):
        Interpreter(model_content=one_op(Op.RFFT2D, [x, Const(np.array([4, 6], I32))],
                                         [((4, 4), C64)])).allocate_tensors()
    content = one_op(Op.RFFT2D, [x, np.array([4, 6], I32)], [((4, 4), C64)])
    with pytest.raises(RuntimeError):
        run_litert(content, [x, np.array([4, 6], I32)])
    with pytest.raises(ModelError, match="powers of two"):
        run_ours(content, [x, np.array([4, 6], I32)])


@pytest.mark.parametrize("op", [Op.COMPLEX_ABS, Op.REAL, Op.IMAG], ids=lambda o: o.name)
def test_complex_to_real(op):
    a, b = pair_grid(F32)
    z = np.empty(a.shape, C64)  # every special value in either part
    z.real, z.imag = a, b
    check_op(op, [z], [(z.shape, F32)], what=f"{op.name} specials")
    with pytest.raises(UnsupportedOpError):
        Interpreter(model_content=one_op(op, [a], [(a.shape, F32)])).allocate_tensors()


def test_stft_magnitude_converted(tf):
    def f(x):
        spec = tf.signal.stft(x, frame_length=64, frame_step=32, fft_length=64)
        return tf.abs(spec), tf.math.real(spec), tf.math.imag(spec)

    content = convert(tf, "stft", f, [((2, 400), tf.float32)])
    names = op_names(content)
    for name in ("RFFT2D", "COMPLEX_ABS", "REAL", "IMAG"):
        assert name in names, (name, names)
    check(content, [rand((2, 400), F32, -1, 1)], "converted stft")


# == BUCKETIZE ==================================================================================
@pytest.mark.parametrize("dt", [F32, F64, I32, I64], ids=lambda d: np.dtype(d).name)
def test_bucketize(dt):
    bounds = (-2.5, -1.0, 0.0, 0.0, 0.1, 3.0, 1e9)  # repeated and huge boundaries
    x = np.concatenate([rand((40,), dt, -5, 5), np.array([-2.5, -1, 0, 3, 1e9, 2**31 - 1],
                                                         np.float64).astype(dt)])
    if np.dtype(dt).kind == "f":
        x = np.concatenate([x, specials(dt)])
    if dt == I64:
        x = np.concatenate([x, np.array([2**40 + 1, -(2**53) - 1], I64)])  # rounded to float
    check_op(Op.BUCKETIZE, [x], [(x.shape, I32)], O.BucketizeOptions(bounds),
             f"BUCKETIZE {np.dtype(dt).name}")
    x2 = x[:x.size // 2 * 2].reshape(-1, 2)
    check_op(Op.BUCKETIZE, [x2], [(x2.shape, I32)], O.BucketizeOptions(()),
             "BUCKETIZE no boundaries")
    with pytest.raises(ModelError, match="not sorted"):
        Interpreter(model_content=one_op(Op.BUCKETIZE, [x], [(x.shape, I32)],
                                         O.BucketizeOptions((1.0, 0.0)))).allocate_tensors()


def test_bucketize_converted(tf):
    content = convert(tf, "bucketize", lambda x: tf.raw_ops.Bucketize(
        input=x, boundaries=[-1.0, 0.0, 0.5, 2.0]), [((4, 6), tf.float32)])
    assert "BUCKETIZE" in op_names(content)
    check(content, [np.round(rand((4, 6), F32, -3, 3) * 2) / 2], "converted bucketize")


def test_mean_over_the_last_axis_is_bit_exact():
    """LiteRT hands a float MEAN over the last axis alone (more than one output) to Eigen, whose
    packet order depends on where each row meets a 16-byte boundary; a single output is summed
    left to right. Every row length and alignment phase, bit for bit."""
    rng = np.random.default_rng(21)
    shapes = [(6, n) for n in range(1, 41)] + [(3, 5, 7), (2, 3, 4, 13), (1, 37), (37,),
                                                 (2, 37), (70, 129), (1, 1, 50)]
    for shape in shapes:
        x = (rng.standard_normal(shape) * 10).astype(F32)
        for axis, keep in ((len(shape) - 1, False), (-1, True)):
            out = shape[:-1] + ((1,) if keep else ())
            check_op(Op.MEAN, [x, Const(np.array([axis], I32))], [(out, F32)],
                     O.ReducerOptions(keep), f"MEAN last axis {shape}", exact=True)


@pytest.mark.parametrize("op,in_dt,out_dt", [(O.BuiltinOperator.NEG, np.int16, np.float32),
                                             (O.BuiltinOperator.ABS, np.float32, np.int32)])
def test_unary_output_declared_with_another_type_is_refused(op, in_dt, out_dt):
    """TF 2.21's converter can declare NEG's output FLOAT32 on an int16 input (16x8 models);
    LiteRT's NEG then retypes the output silently and the next op reads raw int16 under float
    assumptions. We refuse the inconsistent declaration, naming the op and the tensor."""
    x = np.arange(12, dtype=in_dt).reshape(3, 4)
    content = one_op(op, [x], [((3, 4), out_dt)])
    with pytest.raises(ModelError, match=r"operators\[0\].*'out0' is declared"):
        Interpreter(model_content=content).allocate_tensors()
