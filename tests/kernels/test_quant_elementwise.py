"""Quantized (int8 / uint8 / int16) elementwise, activation, softmax, pooling, reduction and
concatenation kernels against LiteRT's built-in kernels (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``):
every integer output bit-identical.

Two kinds of models:

* one-op models built with our IR (milliseconds each): every dtype LiteRT supports, random and
  extreme quantization parameters (zero points at the type's ends, output multipliers above
  and below one), full-range and saturating inputs, each fused activation, and sizes/broadcasts
  chosen to hit both the vector loops and the scalar leftovers of LiteRT's optimized kernels
  (which round differently on x86, see ``kernels/_qelementwise.py``);
* small graphs converted by TensorFlow's converter in full-int8 (int8 I/O) and 16x8 (int16 I/O)
  modes, compared tensor by tensor (``experimental_preserve_all_tensors``).
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
from workbench.ir.ops import Op

I8, U8, I16 = np.int8, np.uint8, np.int16
ACTS = [int(a) for a in (O.ActivationFunctionType.NONE, O.ActivationFunctionType.RELU,
                         O.ActivationFunctionType.RELU6, O.ActivationFunctionType.RELU_N1_TO_1)]
_CACHE: dict = {}


# -- building and running one-op models --------------------------------------------------------
def qp(scale, zero_point=0) -> QuantParams:
    return QuantParams(scale=[np.float32(scale)], zero_point=[int(zero_point)])


class Const:
    def __init__(self, value, quant=None):
        self.value, self.quant = np.asarray(value), quant


def build(op, ins, outs, options=None) -> bytes:
    """``ins``: (array, QuantParams or None) fed at run time, or :class:`Const`; ``outs``:
    (shape, dtype, QuantParams or None)."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    tin = []
    for k, x in enumerate(ins):
        if isinstance(x, Const):
            tin.append(sg.new_tensor(f"c{k}", x.value.shape, x.value.dtype, data=x.value,
                                     quantization=x.quant))
        else:
            t = sg.new_tensor(f"in{k}", x[0].shape, x[0].dtype, quantization=x[1])
            sg.inputs.append(t)
            tin.append(t)
    tout = [sg.new_tensor(f"out{k}", s, d, quantization=q) for k, (s, d, q) in enumerate(outs)]
    sg.outputs.extend(tout)
    sg.add_operator(Operator(m.opcode(op), tin, tout, options=options))
    return m.to_bytes()


def _run(it, xs):
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def check(op, ins, outs, options=None, what=""):
    """Build, run in LiteRT and in ours, assert every output bit-identical."""
    content = build(op, ins, outs, options)
    xs = [x[0] for x in ins if not isinstance(x, Const)]
    expected = _run(litert_interpreter(content), xs)
    got = _run(Interpreter(model_content=content), xs)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype and g.shape == e.shape, f"{what} output {k}"
        np.testing.assert_array_equal(g, e, err_msg=f"{op.name} {what} output {k}")
    return expected


def litert_fails(op, ins, outs, options=None) -> bool:
    content = build(op, ins, outs, options)
    xs = [x[0] for x in ins if not isinstance(x, Const)]
    try:
        _run(litert_interpreter(content), xs)
    except (RuntimeError, ValueError):
        return True
    return False


RNG = np.random.default_rng(20240)


def rand_q(dt, lo=-3.0, hi=-0.3, rng=RNG):
    """Random (scale, zero point): scale log-uniform in [10**lo, 10**hi], zero point anywhere in
    the type's range (0 for int16)."""
    info = np.iinfo(dt)
    s = float(np.float32(10 ** rng.uniform(lo, hi)))
    z = 0 if dt == I16 else int(rng.integers(info.min, info.max + 1))
    return s, z


def values(dt, shape, rng=RNG):
    """Random values over the whole range, with both ends present."""
    info = np.iinfo(dt)
    x = rng.integers(info.min, info.max + 1, shape).astype(dt)
    flat = x.reshape(-1)
    if flat.size >= 2:
        flat[0], flat[-1] = info.min, info.max
    return x


def every_value(dt, repeat=2):
    """Every value of an 8-bit type (a sample for int16), in a length that leaves a scalar tail
    after LiteRT's 16-wide vector loops."""
    info = np.iinfo(dt)
    if dt == I16:
        x = np.concatenate([RNG.integers(info.min, info.max + 1, 997),
                            [info.min, info.max, 0, 1, -1]])
    else:
        x = np.tile(np.arange(info.min, info.max + 1), repeat)[:-3]
    return x.astype(dt)


def extreme_zero_points(dt):
    info = np.iinfo(dt)
    return [0] if dt == I16 else [int(info.min), int(info.max), 0]


# == binary arithmetic ==========================================================================
ARITH_OPTS = {Op.ADD: lambda a: O.AddOptions(a, False), Op.SUB: lambda a: O.SubOptions(a, False),
              Op.MUL: lambda a: O.MulOptions(a)}
#: (shape a, shape b): same shapes (vector blocks + tail), five-fold broadcasts with an inner
#: run (y4 > 1) and with a scalar inner loop (y4 == 1), a generic broadcast, scalars.
SHAPES = [((37,), (37,)), ((2, 3, 40), (2, 3, 40)), ((2, 5, 40), (40,)), ((40,), (2, 5, 40)),
          ((3, 1), (3, 41)), ((3, 41), (3, 1)), ((2, 1, 3, 17), (2, 4, 1, 17)),
          ((2, 1, 3), (1, 4, 1)), ((1,), (5, 19)), ((), (23,)), ((1, 4), (4,))]


@pytest.mark.parametrize("op", list(ARITH_OPTS), ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [I8, U8, I16], ids=lambda d: d.__name__)
def test_binary_arithmetic(op, dt):
    rng = np.random.default_rng(1)
    for k, (sa, sb) in enumerate(SHAPES):
        (s1, z1), (s2, z2), (so, zo) = rand_q(dt, rng=rng), rand_q(dt, rng=rng), \
            rand_q(dt, rng=rng)
        a, b = values(dt, sa, rng), values(dt, sb, rng)
        out = np.broadcast_shapes(sa, sb)
        act = ACTS[k % len(ACTS)]
        b_in = Const(b, qp(s2, z2)) if k % 3 == 2 and b.size else (b, qp(s2, z2))
        check(op, [(a, qp(s1, z1)), b_in], [(out, dt, qp(so, zo))], ARITH_OPTS[op](act),
              f"{dt.__name__} {sa} {sb} act {act}")


@pytest.mark.parametrize("op", list(ARITH_OPTS), ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [I8, U8, I16], ids=lambda d: d.__name__)
def test_binary_arithmetic_extremes(op, dt):
    """Zero points at the type's ends, equal scales, a tiny output scale (saturation: the
    vector loops narrow through int16), every input value against a few others."""
    x = every_value(dt)
    y = values(dt, x.shape)
    for z in extreme_zero_points(dt):
        for s_out in (0.02, 1e-4):
            check(op, [(x, qp(0.02, z)), (y, qp(0.05, z))], [(x.shape, dt, qp(s_out, z))],
                  ARITH_OPTS[op](0), f"zero point {z} out scale {s_out}")
        check(op, [(x, qp(0.05, z)), (y, qp(0.05, z))], [(x.shape, dt, qp(0.05, z))],
              ARITH_OPTS[op](0), f"equal params {z}")


@pytest.mark.parametrize("op", [Op.ADD, Op.SUB], ids=lambda o: o.name)
def test_int16_power_of_two_scales(op):
    """``pot_scale_int16`` with power-of-two scales: the saturating shift-and-add path."""
    x, y = every_value(I16), values(I16, (1002,))
    opts = O.AddOptions(0, True) if op == Op.ADD else O.SubOptions(0, True)
    for s1, s2, so in [(2**-12, 2**-12, 2**-12), (2**-14, 2**-12, 2**-12),
                       (2**-12, 2**-15, 2**-12)]:
        check(op, [(x, qp(s1)), (y, qp(s2))], [(x.shape, I16, qp(so))], opts, f"{s1} {s2}")


def test_mul_int16_inputs_int8_output():
    x, y = every_value(I16), values(I16, (1002,))
    for z in (-128, 0, 127):
        check(Op.MUL, [(x, qp(2**-15)), (y, qp(2**-15))], [(x.shape, I8, qp(1 / 128, z))],
              O.MulOptions(0), f"zero point {z}")


def test_squared_difference_int8():
    rng = np.random.default_rng(2)
    for sa, sb in SHAPES[:8]:
        (s1, z1), (s2, z2), (so, zo) = rand_q(I8, rng=rng), rand_q(I8, rng=rng), \
            rand_q(I8, -2, 0, rng=rng)
        check(Op.SQUARED_DIFFERENCE, [(values(I8, sa, rng), qp(s1, z1)),
                                      (values(I8, sb, rng), qp(s2, z2))],
              [(np.broadcast_shapes(sa, sb), I8, qp(so, zo))], None, f"{sa} {sb}")


COMPARISONS = [Op.LESS, Op.LESS_EQUAL, Op.GREATER, Op.GREATER_EQUAL, Op.EQUAL, Op.NOT_EQUAL]


@pytest.mark.parametrize("op", COMPARISONS, ids=lambda o: o.name)
def test_comparisons(op):
    """Both sides rescaled to a common fixed-point scale; scales of 1 and more included (LiteRT
    then shifts by a negative amount, which its x86 build turns into a sign)."""
    rng = np.random.default_rng(3)
    dts = [I8, U8] + ([I16] if op in (Op.EQUAL, Op.NOT_EQUAL) else [])
    for dt in dts:
        for k, (sa, sb) in enumerate(SHAPES[:9]):
            s1, z1 = rand_q(dt, rng=rng)
            s2 = float(np.float32(s1 * [1, 0.5, 3.0, 1.7, 40.0, 1e3][k % 6]))
            z2 = z1 if k % 2 else rand_q(dt, rng=rng)[1]
            a, b = values(dt, sa, rng), values(dt, sb, rng)
            check(op, [(a, qp(s1, z1)), (b, qp(s2, z2))],
                  [(np.broadcast_shapes(sa, sb), np.bool_, None)], None,
                  f"{dt.__name__} {sa} {sb} scales {s1} {s2}")


def test_int16_ordering_comparisons_use_stored_values():
    a, b = values(I16, (50,)), values(I16, (50,))
    check(Op.LESS, [(a, qp(0.5)), (b, qp(0.01))], [((50,), np.bool_, None)])


# == activations ================================================================================
def _activation_params(name, dt, rng):
    (si, zi), (so, zo) = rand_q(dt, rng=rng), rand_q(dt, rng=rng)
    if name == "LOGISTIC":
        so, zo = (1 / 32768, 0) if dt == I16 else (1 / 256, -128 if dt == I8 else 0)
    elif name == "TANH":
        so, zo = (1 / 32768, 0) if dt == I16 else (1 / 128, 0 if dt == I8 else 128)
    return (si, zi), (so, zo)


ACTIVATIONS = {
    "RELU": (I8, U8, I16), "RELU6": (I8, U8, I16), "RELU_N1_TO_1": (I8, U8),
    "RELU_0_TO_1": (I8, U8), "LOGISTIC": (I8, U8, I16), "TANH": (I8, U8, I16),
    "HARD_SWISH": (I8, U8), "LEAKY_RELU": (I8, U8, I16), "ELU": (I8,), "GELU": (I8, U8, I16),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations(name):
    rng = np.random.default_rng(4)
    op = getattr(Op, name)
    for dt in ACTIVATIONS[name]:
        x = every_value(dt)
        for k in range(6):
            (si, zi), (so, zo) = _activation_params(name, dt, rng)
            if k == 0 and name not in ("LOGISTIC", "TANH"):
                so, zo = si, zi  # same parameters
            opts = None
            if name == "LEAKY_RELU":
                opts = O.LeakyReluOptions([0.2, 0.01, 1.5, -0.3, 3.0, 0.0][k])
            elif name == "GELU":
                opts = O.GeluOptions(bool(k % 2))
            if name == "HARD_SWISH" and si / 128 > so:
                so = si  # LiteRT needs the output multiplier below one
            check(op, [(x, qp(si, zi))], [(x.shape, dt, qp(so, zo))], opts,
                  f"{dt.__name__} in {si, zi} out {so, zo} {opts}")


@pytest.mark.parametrize("dt", [I8, U8])
def test_hard_swish_at_extreme_scales(dt):
    """HARD_SWISH with input scales from 1e-9 to 100 (a tf_keras MobileNetV3Small converted to
    int8 has a channel at 7.9e-9): its 16-bit fixed-point shifts then exceed 15 bits, where
    gemmlowp's int16 RoundingDivideByPOT gives -1 or +1 instead of 0 (its mask wraps to -1).
    Every input value, bit for bit with LiteRT."""
    rng = np.random.default_rng(11)
    x = every_value(dt)
    for si in (7.943551e-09, 3e-8, 1e-6, 1e-4, 0.02, 3.0, 100.0):
        for ratio in (0.99, 1.0, 0.3, 0.01):
            so = si * ratio
            zi, zo = (int(rng.integers(-128, 128)) if dt == I8 else int(rng.integers(0, 256))
                      for _ in range(2))
            check(Op.HARD_SWISH, [(x, qp(si, zi))], [(x.shape, dt, qp(so, zo))],
                  what=f"{dt.__name__} in {si, zi} out {so, zo}")


@pytest.mark.parametrize("name,dt", [("ELU", U8), ("ELU", I16), ("HARD_SWISH", I16),
                                     ("RELU_N1_TO_1", I16), ("RELU_0_TO_1", I16)])
def test_activation_types_litert_lacks(name, dt):
    op = getattr(Op, name)
    x = every_value(dt)
    assert litert_fails(op, [(x, qp(0.01))], [(x.shape, dt, qp(0.01))])
    content = build(op, [(x, qp(0.01))], [(x.shape, dt, qp(0.01))])
    with pytest.raises(UnsupportedOpError):
        Interpreter(model_content=content).allocate_tensors()


def test_int16_logistic_tanh_power_of_two_inputs():
    """2**-12 input scales (2**-11 for TANH) take gemmlowp's fixed-point functions in LiteRT."""
    x = np.arange(-32768, 32768).astype(I16)
    for op, scale in [(Op.LOGISTIC, 2**-12), (Op.TANH, 2**-12), (Op.TANH, 2**-11)]:
        check(op, [(x, qp(scale))], [(x.shape, I16, qp(2**-15))], None, f"scale {scale}")


def test_prelu():
    rng = np.random.default_rng(5)
    for dt in (I8, U8):
        for k, ashape in enumerate([(2, 4, 5, 6), (6,), (1, 1, 6), (5, 1), (1,)]):
            (si, zi), (sa, za), (so, zo) = [rand_q(dt, -3, 0, rng) for _ in range(3)]
            x, alpha = values(dt, (2, 4, 5, 6), rng), values(dt, ashape, rng)
            a_in = Const(alpha, qp(sa, za)) if k % 2 else (alpha, qp(sa, za))
            check(Op.PRELU, [(x, qp(si, zi)), a_in], [(x.shape, dt, qp(so, zo))], None,
                  f"{dt.__name__} alpha {ashape}")


# == softmax ====================================================================================
@pytest.mark.parametrize("dt_in,dt_out", [(I8, I8), (U8, U8), (I8, I16), (U8, I16), (I16, I16)],
                         ids=lambda d: d.__name__)
def test_softmax(dt_in, dt_out):
    rng = np.random.default_rng(6)
    out_q = {I8: (1 / 256, -128), U8: (1 / 256, 0), I16: (1 / 32768, 0)}[dt_out]
    for k, shape in enumerate([(2, 5, 37), (3, 1000), (1, 7), (4, 2, 3, 16), (1,)]):
        si, zi = rand_q(dt_in, -3, 0, rng)
        x = values(dt_in, shape, rng)
        if k % 2:
            x[..., :3] = np.iinfo(dt_in).max  # ties at the maximum
        beta = [1.0, 0.5, 2.0, 1.7, 1.0][k]
        check(Op.SOFTMAX, [(x, qp(si, zi))], [(shape, dt_out, qp(*out_q))],
              O.SoftmaxOptions(beta), f"{shape} beta {beta}")


@pytest.mark.parametrize("dt", [I8, U8], ids=lambda d: d.__name__)
def test_log_softmax(dt):
    rng = np.random.default_rng(7)
    for shape in [(3, 5, 41), (2, 256), (1, 1)]:
        si, zi = rand_q(dt, -3, 0, rng)
        check(Op.LOG_SOFTMAX, [(values(dt, shape, rng), qp(si, zi))],
              [(shape, dt, qp(16 / 256, 127 if dt == I8 else 255))], None, f"{shape}")


def test_softmax_output_parameters_are_enforced():
    x = values(I8, (2, 5))
    content = build(Op.SOFTMAX, [(x, qp(0.1, 0))], [((2, 5), I8, qp(1 / 256, 0))],
                    O.SoftmaxOptions(1.0))
    assert litert_fails(Op.SOFTMAX, [(x, qp(0.1, 0))], [((2, 5), I8, qp(1 / 256, 0))],
                        O.SoftmaxOptions(1.0))
    with pytest.raises(ModelError):
        Interpreter(model_content=content).allocate_tensors()


# == pooling ====================================================================================
@pytest.mark.parametrize("op", [Op.MAX_POOL_2D, Op.AVERAGE_POOL_2D], ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [I8, U8, I16], ids=lambda d: d.__name__)
def test_pooling(op, dt):
    from workbench.kernels._common import same_or_valid

    rng = np.random.default_rng(8)
    for k in range(10):
        s, z = rand_q(dt, rng=rng)
        n, h, w, c = 2, int(rng.integers(1, 12)), int(rng.integers(3, 12)), [1, 3, 17, 40][k % 4]
        fh, fw = int(rng.integers(1, 4)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        pad = k % 2
        if pad == 1 and (h < fh or w < fw):
            pad = 0
        if pad == 1 or h >= fh and w >= fw:
            oh = same_or_valid(pad, h, fh, sh)[0]
            ow = same_or_valid(pad, w, fw, sw)[0]
        else:
            continue
        opts = O.Pool2DOptions(pad, sw, sh, fw, fh, ACTS[k % len(ACTS)])
        check(op, [(values(dt, (n, h, w, c), rng), qp(s, z))], [((n, oh, ow, c), dt, qp(s, z))],
              opts, f"{dt.__name__} {(h, w, c)} filter {(fh, fw)} stride {(sh, sw)} {opts}")


# == reductions =================================================================================
def _reduce(op, x, q_in, axes, keep, q_out):
    nd = x.ndim
    ra = sorted({a % nd for a in axes})
    out_shape = tuple((1 if i in ra else d) for i, d in enumerate(x.shape)
                      if keep or i not in ra)
    return check(op, [(x, q_in), Const(np.array(axes, np.int32))],
                 [(out_shape, x.dtype, q_out)], O.ReducerOptions(keep),
                 f"{x.dtype} {x.shape} axes {axes} keep {keep}")


REDUCE_CASES = [((2, 5, 7, 33), [1, 2], True), ((1, 9, 9, 16), [2, 1], True),
                ((1, 4, 4, 40), [1, 2], False), ((2, 5, 7, 33), [1, 2, 2], True),
                ((3, 20), [-1], False), ((2, 3, 4, 5, 6), [1, 3], True), ((3, 20), [], True),
                ((2, 3, 7), [0, 2], False), ((1, 3, 4, 8), [0], True)]


@pytest.mark.parametrize("op", [Op.MEAN, Op.SUM], ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [I8, U8, I16], ids=lambda d: d.__name__)
def test_mean_and_sum(op, dt):
    """MEAN: LiteRT's optimized spatial kernel (with its 16-channel vector blocks) for 4-D
    H/W means with keep_dims, the reference one otherwise; SUM: its float-based kernel."""
    rng = np.random.default_rng(9)
    for k, (shape, axes, keep) in enumerate(REDUCE_CASES):
        x = values(dt, shape, rng)
        (si, zi), (so, zo) = rand_q(dt, rng=rng), rand_q(dt, rng=rng)
        if op == Op.SUM:
            n = int(np.prod([shape[a] for a in {a % len(shape) for a in axes}] or [1]))
            so = float(np.float32(si * n * rng.uniform(0.1, 1.0)))
        if k == 0:
            so, zo = si, zi
        _reduce(op, x, qp(si, zi), axes, keep, qp(so, zo))
    if op == Op.MEAN:  # the smallest and largest sums (the ends of the 8-bit kernels' tables)
        for fill in (np.iinfo(dt).min, np.iinfo(dt).max):
            for keep in (True, False):
                (si, zi), (so, zo) = rand_q(dt, rng=rng), rand_q(dt, rng=rng)
                _reduce(op, np.full((2, 5, 7, 33), fill, dt), qp(si, zi), [1, 2], keep,
                        qp(so, zo))


@pytest.mark.parametrize("dt", [I8, I16], ids=lambda d: d.__name__)
def test_reduce_prod(dt):
    rng = np.random.default_rng(10)
    for shape, axes, keep in REDUCE_CASES:
        x = rng.integers(-4, 5, shape).astype(dt)
        (si, zi), (so, zo) = rand_q(dt, -2, 0, rng), rand_q(dt, -2, 0, rng)
        _reduce(Op.REDUCE_PROD, x, qp(si, zi), axes, keep, qp(so, zo))


@pytest.mark.parametrize("op", [Op.REDUCE_MAX, Op.REDUCE_MIN], ids=lambda o: o.name)
def test_reduce_max_min(op):
    rng = np.random.default_rng(11)
    for dt in (I8, U8, I16):
        for shape, axes, keep in REDUCE_CASES[:6]:
            s, z = rand_q(dt, rng=rng)
            _reduce(op, values(dt, shape, rng), qp(s, z), axes, keep, qp(s, z))
    x = values(I8, (2, 3))
    ins = [(x, qp(0.1, 1)), Const(np.array([1], np.int32))]
    outs = [((2,), I8, qp(0.2, 1))]
    assert litert_fails(op, ins, outs, O.ReducerOptions(False))
    with pytest.raises(ModelError, match="must be equal"):
        Interpreter(model_content=build(op, ins, outs, O.ReducerOptions(False))
                    ).allocate_tensors()


# == concatenation ==============================================================================
def test_concatenation_uint8_requantizes():
    rng = np.random.default_rng(12)
    for k in range(8):
        parts = [(2, int(rng.integers(1, 5)), 3) for _ in range(int(rng.integers(1, 4)))]
        ins = []
        for i, shape in enumerate(parts):
            s, z = rand_q(U8, -3, 0, rng) if (k + i) % 3 else (0.05, 7)
            x = values(U8, shape, rng)
            ins.append(Const(x, qp(s, z)) if k % 4 == 1 and i == 0 else (x, qp(s, z)))
        out = (2, sum(p[1] for p in parts), 3)
        check(Op.CONCATENATION, ins, [(out, U8, qp(0.05, 7))], O.ConcatenationOptions(1, 0))


def test_concatenation_int16_copies_and_int8_needs_equal_params():
    x = values(I16, (2, 3))
    check(Op.CONCATENATION, [(x, qp(0.1)), (x, qp(0.3))], [((2, 6), I16, qp(0.2))],
          O.ConcatenationOptions(1, 0))
    y = values(I8, (2, 3))
    ins, outs = [(y, qp(0.1, 3)), (y, qp(0.3, 3))], [((2, 6), I8, qp(0.2, 3))]
    assert litert_fails(Op.CONCATENATION, ins, outs, O.ConcatenationOptions(1, 0))
    with pytest.raises(ModelError):
        Interpreter(model_content=build(Op.CONCATENATION, ins, outs,
                                        O.ConcatenationOptions(1, 0))).allocate_tensors()


# == DIV ========================================================================================
@pytest.mark.parametrize("dt", [I8, U8, I16], ids=lambda d: d.__name__)
def test_div(dt):
    """TFLite's fixed-point reciprocal, including small dividends whose total shift leaves
    [0, 31] (x86's masked shift counts)."""
    rng = np.random.default_rng(14)
    info = np.iinfo(dt)
    for k, (sa, sb) in enumerate(SHAPES[:9]):
        (s1, z1), (s2, z2), (so, zo) = [rand_q(dt, -3, 0, rng) for _ in range(3)]
        a, b = values(dt, sa, rng), values(dt, sb, rng)
        b[b == z2] = z2 + 1 if z2 < info.max else z2 - 1
        check(Op.DIV, [(a, qp(s1, z1)), (b, qp(s2, z2))],
              [(np.broadcast_shapes(sa, sb), dt, qp(so, zo))], O.DivOptions(ACTS[k % 4]),
              f"{sa} {sb}")
    if dt != I16:  # every pair of values
        z2 = 5
        a = np.repeat(np.arange(info.min, info.max + 1), 255).astype(dt)
        b = np.tile(np.array([v for v in range(info.min, info.max + 1) if v != z2]), 256)
        check(Op.DIV, [(a, qp(0.02, -7 if dt == I8 else 7)), (b.astype(dt), qp(0.05, z2))],
              [(a.shape, dt, qp(0.3, 3))], O.DivOptions(0), "all pairs")


def test_div_by_zero_point_fails():
    x, y = np.array([5, 2], I8), np.array([3, 4], I8)
    ins, outs = [(x, qp(0.1)), (y, qp(0.1, 3))], [((2,), I8, qp(0.1))]
    assert litert_fails(Op.DIV, ins, outs, O.DivOptions(0))
    it = Interpreter(model_content=build(Op.DIV, ins, outs, O.DivOptions(0)))
    it.allocate_tensors()
    for d, v in zip(it.get_input_details(), (x, y)):
        it.set_tensor(d["index"], v)
    with pytest.raises(InputError, match="division by zero"):
        it.invoke()


# == RSQRT, SQRT, ABS, LOG, EXP ==================================================================
@pytest.mark.parametrize("op", [Op.RSQRT, Op.SQRT, Op.ABS, Op.LOG, Op.EXP],
                         ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [I8, I16], ids=lambda d: d.__name__)
def test_unary_math(op, dt):
    rng = np.random.default_rng(13)
    for k in range(6):
        (si, zi), (so, zo) = rand_q(dt, -3, 0, rng), rand_q(dt, -3, 0, rng)
        if k == 0:
            so = si
        if k == 1 and op == Op.EXP:
            si, so = 0.08, 1e-4  # exp overflows: saturated 8-bit tables, NaN int16 entries
        x = every_value(dt)
        if op in (Op.RSQRT, Op.SQRT):
            x = np.maximum(x, zi).astype(dt)
        check(op, [(x, qp(si, zi))], [(x.shape, dt, qp(so, zo))], None,
              f"in {si, zi} out {so, zo}")


@pytest.mark.parametrize("op", [Op.RSQRT, Op.SQRT], ids=lambda o: o.name)
def test_square_roots_refuse_values_below_zero_point(op):
    x = np.array([5, 2, 9], I8)
    ins, outs = [(x, qp(0.1, 3))], [((3,), I8, qp(0.1, 0))]
    assert litert_fails(op, ins, outs)
    it = Interpreter(model_content=build(op, ins, outs))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    with pytest.raises(InputError, match="defined for"):
        it.invoke()


# == converted graphs ===========================================================================
@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _graph_int8(tf, x, y):
    a = tf.add(x, y)
    b = tf.multiply(a, x)
    s = tf.subtract(b, y)
    h = s * tf.nn.relu6(s + 3.0) / 6.0
    t = tf.nn.leaky_relu(tf.tanh(a), alpha=0.2)
    g = tf.nn.gelu(t)
    mp = tf.nn.max_pool2d(tf.sigmoid(s), 2, 2, "SAME")
    ap = tf.nn.avg_pool2d(g, 3, 1, "SAME")
    m = tf.reduce_mean(ap, axis=[1, 2], keepdims=True)
    sm = tf.nn.softmax(tf.reshape(m, [1, -1]))
    sq = tf.math.squared_difference(mp, tf.reduce_mean(mp, axis=-1, keepdims=True))
    r = tf.math.rsqrt(tf.reduce_mean(sq, axis=-1, keepdims=True) + 1e-3)
    lsm = tf.nn.log_softmax(tf.reshape(h, [1, -1]))
    return sm, r, tf.reduce_sum(h, axis=-1), tf.reduce_max(tf.nn.relu(y), axis=[1]), lsm


def _graph_int16(tf, x, y):
    a = tf.add(x, y)
    b = tf.multiply(a, x)
    s = tf.subtract(b, y)
    t = tf.nn.leaky_relu(tf.tanh(a), alpha=0.2)
    mp = tf.nn.max_pool2d(tf.sigmoid(s), 2, 2, "SAME")
    ap = tf.nn.avg_pool2d(tf.nn.relu(t), 3, 1, "SAME")
    m = tf.reduce_mean(ap, axis=[1, 2], keepdims=True)
    sm = tf.nn.softmax(tf.reshape(m, [1, -1]))
    return sm, tf.reduce_sum(mp, axis=-1), tf.reduce_max(tf.nn.relu6(y), axis=[1]), \
        tf.nn.gelu(b)


def converted(tf, mode: str) -> bytes:
    if mode in _CACHE:
        return _CACHE[mode]
    shape = (1, 6, 7, 21)
    graph = _graph_int8 if mode == "int8" else _graph_int16
    spec = [tf.TensorSpec(shape, tf.float32)] * 2
    fn = tf.function(lambda x, y: graph(tf, x, y), input_signature=spec)

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.standard_normal(shape).astype(np.float32) * 2,
                   rng.standard_normal(shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    if mode == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    else:
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    _CACHE[mode] = conv.convert()
    return _CACHE[mode]


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_converted_graph_every_tensor(tf, mode):
    content = converted(tf, mode)
    names = {op.name for op in wb.load(content).main.operators}
    expected_ops = {"ADD", "MUL", "SUB", "LOGISTIC", "TANH", "LEAKY_RELU", "MAX_POOL_2D",
                    "AVERAGE_POOL_2D", "MEAN", "SOFTMAX", "SUM", "REDUCE_MAX", "GELU"}
    if mode == "int8":
        expected_ops |= {"HARD_SWISH", "SQUARED_DIFFERENCE", "RSQRT", "LOG_SOFTMAX"}
    assert expected_ops <= names, sorted(expected_ops - names)
    ref = litert_interpreter(content, preserve_all=True)
    ref.allocate_tensors()
    ours = Interpreter(model_content=content)
    ours.allocate_tensors()
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        for d_ref, d_ours in zip(ref.get_input_details(), ours.get_input_details()):
            dt = np.dtype(d_ref["dtype"])
            x = values(dt.type, tuple(d_ref["shape"]), rng)
            ref.set_tensor(d_ref["index"], x)
            ours.set_tensor(d_ours["index"], x)
        ref.invoke()
        ours.invoke()
        by_name = {d["name"]: d["index"] for d in ref.get_tensor_details()}
        compared = 0
        for d in ours.get_tensor_details():
            if d["name"] not in by_name:
                continue
            expected = ref.get_tensor(by_name[d["name"]])
            if expected.dtype.kind not in "iub":
                continue
            np.testing.assert_array_equal(ours.get_tensor(d["index"]), expected,
                                          err_msg=f"{mode} seed {seed} {d['name']}")
            compared += 1
        assert compared > 20
