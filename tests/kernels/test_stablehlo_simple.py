"""STABLEHLO_ADD/MULTIPLY/MAXIMUM/MINIMUM/AND, STABLEHLO_SHIFT_LEFT, STABLEHLO_PAD and DILATE
against LiteRT 2.3.0's built-in kernels, on one-op models: every element type LiteRT accepts,
random values with integer extremes and float specials (NaN, infinities, signed zeros), empty
tensors, negative (cropping) padding, out-of-range shift amounts. Every output is compared bit
for bit (bytes), floats included: these ops compute exactly as LiteRT does.

Faults: where LiteRT refuses at prepare we raise a typed error at ``allocate_tensors``; where it
fails the invoke, at ``invoke``; where LiteRT crashes or would allocate gigabytes, we raise a
typed error (LiteRT is not run on those).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from tests.kernels.test_elementwise import Const, _run, feeds, one_op
from tests.litert_oracle import litert_interpreter
from workbench.errors import InputError, ModelError, UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir import ops as O
from workbench.ir.graph import QuantParams

Op = O.Op
BF16 = np.dtype(ml_dtypes.bfloat16)
NUMERIC = [np.dtype(d) for d in (np.float16, np.float32, np.float64, np.int8, np.int16,
                                  np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                                  np.uint64, np.bool_)]
ANY = NUMERIC + [BF16, np.dtype(np.complex64)]
ELEMENTWISE = [Op.STABLEHLO_ADD, Op.STABLEHLO_MULTIPLY, Op.STABLEHLO_MAXIMUM,
               Op.STABLEHLO_MINIMUM, Op.STABLEHLO_AND]


# -- running -----------------------------------------------------------------------------------
def same(got: np.ndarray, exp: np.ndarray, what: str) -> None:
    assert got.dtype == exp.dtype and got.shape == exp.shape, \
        f"{what}: got {got.dtype}{list(got.shape)}, expected {exp.dtype}{list(exp.shape)}"
    if got.tobytes() != exp.tobytes():
        bad = np.nonzero(got.reshape(-1).view(np.uint8) != exp.reshape(-1).view(np.uint8))[0]
        k = bad[0] // got.dtype.itemsize
        raise AssertionError(f"{what}: element {k} differs: got {got.reshape(-1)[k]!r}, "
                             f"expected {exp.reshape(-1)[k]!r}")


def check(op, ins, outs, options=None, what="", quant=None) -> list[np.ndarray]:
    """Ours and LiteRT on one one-op model: bit-identical outputs. Returns LiteRT's."""
    content = one_op(op, ins, outs, options=options, quant=quant)
    xs = feeds(ins)
    exp = _run(litert_interpreter(content), xs)
    got = _run(Interpreter(model_content=content), xs)
    for k, (g, e) in enumerate(zip(got, exp)):
        same(g, e, f"{what or op.name} output {k}")
    return exp


def refused(op, ins, outs, options=None, at="prepare", ours=ModelError, litert=True,
            match="failed to prepare"):
    """LiteRT (unless ``litert`` is False) and ours both fail, at parse (building the
    interpreter), prepare (allocate) or invoke; ours with the typed error ``ours`` naming the
    op (at allocate for parse and prepare faults)."""
    content = one_op(op, ins, outs, options=options)
    xs = feeds(ins)
    if litert:
        it = litert_interpreter(content) if at != "parse" else None
        if at == "parse":
            with pytest.raises(ValueError):
                litert_interpreter(content)
        elif at == "prepare":
            with pytest.raises(RuntimeError, match=match):
                it.allocate_tensors()
        else:
            it.allocate_tensors()
            for d, x in zip(it.get_input_details(), xs):
                it.set_tensor(d["index"], x)
            with pytest.raises(RuntimeError, match="failed to invoke"):
                it.invoke()
    wb = Interpreter(model_content=content)
    if at in ("parse", "prepare"):
        with pytest.raises(ours) as e:
            wb.allocate_tensors()
    else:
        wb.allocate_tensors()
        for d, x in zip(wb.get_input_details(), xs):
            wb.set_tensor(d["index"], x)
        with pytest.raises(ours) as e:
            wb.invoke()
    assert op.name in str(e.value)
    return e.value


# -- values ------------------------------------------------------------------------------------
def rand(rng, shape, dt) -> np.ndarray:
    """Random values over the whole range of integer types; floats of mixed magnitudes with
    NaN, infinities and signed zeros sprinkled in."""
    dt = np.dtype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, shape).astype(dt)
    if dt.kind in "iu":
        i = np.iinfo(dt)
        x = rng.integers(i.min, i.max, shape, endpoint=True, dtype=dt)
        small = rng.integers(-3 if i.min else 0, 4, shape).astype(dt)
        return np.where(rng.random(shape) < 0.3, small, x).astype(dt)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0])
    pick = rng.random(shape) < 0.2
    x = np.where(pick, specials[rng.integers(0, len(specials), shape)], x)
    return x.astype(dt)


# == elementwise ================================================================================
SHAPES = [(), (7,), (2, 3, 4), (1, 2, 1, 3, 1, 2), (0, 3)]


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda o: o.name)
def test_elementwise_every_type(op):
    rng = np.random.default_rng(int(op))
    types = [d for d in NUMERIC if op != Op.STABLEHLO_AND or d.kind in "iub"]
    for dt in types:
        for shape in SHAPES:
            a, b = rand(rng, shape, dt), rand(rng, shape, dt)
            if shape == (7,):
                b[:3] = a[:3]  # equal operands (MAXIMUM/MINIMUM of -0 and +0, NaN and NaN)
            check(op, [a, b], [(shape, dt)], what=f"{op.name} {dt} {shape}")


def test_elementwise_float_specials_pairwise():
    """Every pair of float specials, in both orders: which operand MAXIMUM/MINIMUM return
    (LiteRT's std::max/std::min keep the first unless the second compares greater/smaller)."""
    s = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 65504.0, 1e-8])
    a, b = (g.reshape(-1) for g in np.meshgrid(s, s, indexing="ij"))
    for op in ELEMENTWISE[:4]:
        for dt in (np.float16, np.float32, np.float64):
            check(op, [a.astype(dt), b.astype(dt)], [(a.shape, dt)], what=f"{op.name} {dt}")


def test_elementwise_integer_wraps_and_bool():
    for dt in NUMERIC:
        if dt.kind not in "iu":
            continue
        i = np.iinfo(dt)
        a = np.array([i.max, i.min, i.max, i.min, i.max // 2 + 3, 0], dt)
        b = np.array([1, i.max, i.max, i.min, 5, i.min], dt)
        for op in (Op.STABLEHLO_ADD, Op.STABLEHLO_MULTIPLY):
            got = check(op, [a, b], [(a.shape, dt)])[0]
            np.testing.assert_array_equal(got, a + b if op == Op.STABLEHLO_ADD else a * b)
    t, f = np.array([True, True, False, False]), np.array([True, False, True, False])
    want = {Op.STABLEHLO_ADD: t | f, Op.STABLEHLO_MULTIPLY: t & f, Op.STABLEHLO_MAXIMUM: t | f,
            Op.STABLEHLO_MINIMUM: t & f, Op.STABLEHLO_AND: t & f}
    for op, w in want.items():
        np.testing.assert_array_equal(check(op, [t, f], [((4,), np.bool_)])[0], w)


def test_elementwise_constant_and_quantized_inputs():
    rng = np.random.default_rng(5)
    a, b = rand(rng, (3, 4), np.int16), rand(rng, (3, 4), np.int16)
    for op in ELEMENTWISE:
        check(op, [Const(a), b], [((3, 4), np.int16)], what=f"{op.name} const")
        check(op, [Const(a), Const(b)], [((3, 4), np.int16)], what=f"{op.name} folded")
    # quantization parameters are ignored: stored values are combined and wrap
    q = QuantParams(scale=np.array([0.5], np.float32), zero_point=np.array([3], np.int64))
    for dt in (np.int8, np.uint8, np.int16):
        a, b = rand(rng, (20,), dt), rand(rng, (20,), dt)
        for op in ELEMENTWISE:
            check(op, [a, b], [((20,), dt)], quant=q, what=f"{op.name} quantized {dt}")


def test_elementwise_types_refused_at_invoke():
    x = np.ones((2, 3), np.float32)
    for op in ELEMENTWISE:
        for dt in (BF16, np.dtype(np.complex64)):
            refused(op, [x.astype(dt), x.astype(dt)], [((2, 3), dt)], at="invoke",
                    ours=UnsupportedOpError)
    for dt in (np.float16, np.float32, np.float64):
        refused(Op.STABLEHLO_AND, [x.astype(dt), x.astype(dt)], [((2, 3), dt)], at="invoke",
                ours=UnsupportedOpError)


def test_elementwise_refused_at_prepare():
    f = np.ones((2, 3), np.float32)
    for op in ELEMENTWISE + [Op.STABLEHLO_SHIFT_LEFT]:
        x = f.astype(np.int32)
        # SHIFT_LEFT's shapes are not checked by LiteRT, which reads past the second's end
        checked = op != Op.STABLEHLO_SHIFT_LEFT
        refused(op, [x, np.ones((3,), np.int32)], [((2, 3), np.int32)], litert=checked)
        e = refused(op, [x, np.ones((1, 3), np.int32)], [((2, 3), np.int32)], litert=checked)
        assert "shapes differ" in str(e)  # no broadcasting
        refused(op, [x, x.astype(np.int16)], [((2, 3), np.int32)])  # types
        refused(op, [x], [((2, 3), np.int32)], litert=False)  # arity
        # an output of another type: LiteRT writes the wrong bytes (or retypes it)
        refused(op, [x, x], [((2, 3), np.float32)], litert=False)


# == SHIFT_LEFT =================================================================================
def test_shift_left_in_range():
    rng = np.random.default_rng(7)
    for dt in (np.int8, np.int16, np.int32):
        for shape in [(), (5,), (3, 7), (2, 3, 4), (0, 2)]:
            x = rand(rng, shape, dt)
            s = rng.integers(0, 32 if dt != np.int8 else 128, shape).astype(dt)
            s = np.minimum(s, 31).astype(dt)
            got = check(Op.STABLEHLO_SHIFT_LEFT, [x, s], [(shape, dt)], what=f"{dt} {shape}")[0]
            want = (x.astype(np.int64) << s.astype(np.int64)).astype(dt)
            np.testing.assert_array_equal(got, want)


def test_shift_left_out_of_range_amounts():
    """Negative and >= 32 shift amounts (undefined in C++): LiteRT's vectorized elements and
    scalar tail differ; both reproduced, for every count around the vector thresholds."""
    rng = np.random.default_rng(8)
    for dt in (np.int8, np.int16, np.int32):
        i = np.iinfo(dt)
        for n in list(range(1, 26)) + [33, 64, 100]:
            x = rand(rng, (n,), dt)
            s = np.where(rng.random(n) < 0.5, rng.integers(-70, 140, n),
                         rng.integers(i.min, i.max, n, endpoint=True)).astype(dt)
            check(Op.STABLEHLO_SHIFT_LEFT, [x, s], [((n,), dt)], what=f"{dt} n={n}")
        x = rand(rng, (4, 5, 3), dt)
        s = rng.integers(i.min, i.max, (4, 5, 3), endpoint=True).astype(dt)
        check(Op.STABLEHLO_SHIFT_LEFT, [x, Const(s)], [((4, 5, 3), dt)], what=f"{dt} 3-D")


def test_shift_left_types_refused_at_invoke():
    for dt in (np.int64, np.uint8, np.uint16, np.uint32, np.float32, np.bool_):
        x = np.ones((4,), dt)
        refused(Op.STABLEHLO_SHIFT_LEFT, [x, x], [((4,), dt)], at="invoke",
                ours=UnsupportedOpError)


# == STABLEHLO_PAD ==============================================================================
def _pad_opts(lo, hi, it):
    return O.StablehloPadOptions(edge_padding_low=lo, edge_padding_high=hi,
                                 interior_padding=it)


def test_pad_random():
    rng = np.random.default_rng(11)
    cases = 0
    for dt in ANY:
        for _ in range(12):
            rank = int(rng.integers(1, 5))
            shape = tuple(int(d) for d in rng.integers(0 if rng.random() < 0.15 else 1, 5, rank))
            lo = rng.integers(-5, 5, rank).tolist()
            hi = rng.integers(-5, 5, rank).tolist()
            it = rng.integers(0, 4, rank).tolist()
            x, v = rand(rng, shape, dt), rand(rng, (), dt)
            ins = [x, Const(v) if rng.random() < 0.3 else v]
            check(Op.STABLEHLO_PAD, ins, [((1,), dt)], options=_pad_opts(lo, hi, it),
                  what=f"{dt} {shape} lo={lo} hi={hi} interior={it}")
            cases += 1
    assert cases == 12 * len(ANY)
    for _ in range(25):  # paddings and crops larger than the input
        rank = int(rng.integers(1, 4))
        shape = tuple(int(d) for d in rng.integers(0, 4, rank))
        lo, hi = rng.integers(-12, 12, rank).tolist(), rng.integers(-12, 12, rank).tolist()
        it = rng.integers(0, 6, rank).tolist()
        check(Op.STABLEHLO_PAD, [rand(rng, shape, np.int32), rand(rng, (), np.int32)],
              [((1,), np.int32)], options=_pad_opts(lo, hi, it),
              what=f"{shape} lo={lo} hi={hi} interior={it}")


def test_pad_edge_cases():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    v = np.array(-1, np.float32)

    def pad(lo, hi, it, x=x, v=v):
        return check(Op.STABLEHLO_PAD, [x, v], [((1,), x.dtype)], options=_pad_opts(lo, hi, it),
                     what=f"lo={lo} hi={hi} interior={it} {list(np.shape(x))}")[0]

    got = pad([1, 0], [0, 2], [1, 1])
    np.testing.assert_array_equal(got[1], [1, -1, 2, -1, 3, -1, -1])
    assert pad([-2, 0], [0, 0], [0, 0]).shape == (0, 0)  # any size <= 0: every dimension 0
    assert pad([-3, 0], [0, 0], [0, 0]).shape == (0, 0)
    assert pad([-2**62, 0], [0, 0], [0, 0]).shape == (0, 0)
    np.testing.assert_array_equal(pad([0, -3], [0, 0], [0, 1]), [[-1, 3], [-1, 6]])
    pad([-1, -1], [0, -1], [0, 1])  # cropping into interior padding
    pad([5, -4], [-6, 3], [2, 1])  # crop and pad on both sides
    pad([1], [1], [1])  # option vectors shorter than the rank: zeros
    pad([1, 1, 1], [1, 1, 1], [0, 0, 5])  # longer: the extra values are ignored
    pad([0] * 8, [1] * 8, [0] * 8)
    e = np.zeros((0, 3), np.float32)
    assert pad([0, 0], [0, 0], [0, 0], x=e).shape == (0, 0)
    assert pad([-1, 0], [2, 0], [3, 0], x=e).shape == (1, 3)  # empty: interior ignored
    pad([0] * 8, [1, 0, 2, 0, 0, 0, 0, 1], [1] * 8, x=np.ones((1, 2, 1, 2, 1, 1, 2, 1), np.float32))
    check(Op.STABLEHLO_PAD, [x, np.array([[7]], np.float32)], [((1,), np.float32)],
          options=_pad_opts([1, 1], [1, 1], [1, 1]), what="value of shape [1, 1]")
    q = QuantParams(scale=np.array([0.5], np.float32), zero_point=np.array([3], np.int64))
    check(Op.STABLEHLO_PAD, [x.astype(np.int8), np.array(9, np.int8)], [((1,), np.int8)],
          options=_pad_opts([1, 0], [0, 1], [1, 0]), quant=q, what="quantized: copied")


def test_pad_refused():
    x = np.ones((2, 3), np.float32)
    v = np.array(0, np.float32)
    P = Op.STABLEHLO_PAD
    e = refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0, 0], [0, 0], [-1, 0]))
    assert "negative" in str(e)
    refused(P, [np.array(1, np.float32), v], [((), np.float32)], _pad_opts([], [], []))
    refused(P, [np.ones((1,) * 9, np.float32), v], [((1,) * 9, np.float32)],
            _pad_opts([0] * 8, [0] * 8, [0] * 8))
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0] * 9, [0] * 9, [0] * 9),
            at="parse")
    refused(P, [x, v], [((2, 3), np.float32)], None, at="parse")
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts(None, None, [0, 0]), at="parse")
    refused(P, [x, np.array([1, 2], np.float32)], [((2, 3), np.float32)],
            _pad_opts([0, 0], [0, 0], [0, 0]))
    refused(P, [x, np.zeros((0,), np.float32)], [((2, 3), np.float32)],
            _pad_opts([0, 0], [0, 0], [0, 0]))
    refused(P, [x, np.array(1, np.int32)], [((2, 3), np.float32)],
            _pad_opts([0, 0], [0, 0], [0, 0]))
    refused(P, [x, v], [((2, 3), np.int32)], _pad_opts([0, 0], [0, 0], [0, 0]))
    # sizes beyond int32, or an int64 overflow
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0, 0], [2**40, 0], [0, 0]))
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0, 0], [0, 0], [2**62, 0]))
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0, 0], [0, 0], [0, 2**62]))
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0, 0], [0, 0], [2**63 - 1, 0]))
    refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([2**62, 0], [2**62, 0], [0, 0]))
    # int32-sized dimensions, 1e18 elements: LiteRT fails (no message); ours refuses early
    e = refused(P, [x, v], [((2, 3), np.float32)], _pad_opts([0, 0], [10**9, 10**9], [0, 0]),
                match=None)
    assert "GiB" in str(e)


# == DILATE =====================================================================================
def test_dilate_random():
    rng = np.random.default_rng(13)
    for dt in ANY:
        for k in range(8):
            rank = int(rng.integers(1, 5))
            shape = tuple(int(d) for d in rng.integers(1, 5, rank))
            d = rng.integers(1, 5, rank).astype(np.int32)
            x, v = rand(rng, shape, dt), rand(rng, (), dt)
            dil = Const(d) if k % 2 else d
            check(Op.DILATE, [x, dil, v], [((1,), dt)], what=f"{dt} {shape} dilations {d}")


def test_dilate_edge_cases():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    v = np.array(-1, np.float32)
    got = check(Op.DILATE, [x, Const(np.array([2, 3], np.int32)), v], [((1,), np.float32)])[0]
    np.testing.assert_array_equal(got, [[1, -1, -1, 2, -1, -1, 3], [-1] * 7,
                                        [4, -1, -1, 5, -1, -1, 6]])
    check(Op.DILATE, [x, np.array([1, 1], np.int32), v], [((1,), np.float32)])
    # the padding value is the first element of a longer tensor
    check(Op.DILATE, [x, np.array([2, 2], np.int32), np.array([5, 6], np.float32)],
          [((1,), np.float32)])
    # an empty dimension with dilation 1 stays empty
    check(Op.DILATE, [np.zeros((3, 0), np.float32), Const(np.array([2, 1], np.int32)), v],
          [((1,), np.float32)])
    # a large dilation of a size-1 dimension changes nothing
    check(Op.DILATE, [np.ones((1, 3), np.int8), Const(np.array([2**31 - 1, 2], np.int32)),
                      np.array(0, np.int8)], [((1,), np.int8)])


def test_dilate_refused():
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    v = np.array(-1, np.float32)
    D = Op.DILATE
    out = [((1,), np.float32)]
    for dil in (np.array([0, 1], np.int32), np.array([-1, 1], np.int32)):
        refused(D, [x, Const(dil), v], out, at="invoke", ours=ModelError)
        refused(D, [x, dil, v], out, at="invoke", ours=InputError)
    for dil in (np.array([2, 2], np.int64), np.array([2, 2, 2], np.int32),
                np.array([2], np.int32), np.array([[2, 2]], np.int32)):
        refused(D, [x, Const(dil), v], out, at="invoke")
        refused(D, [x, dil, v], out, at="invoke")
    refused(D, [x, Const(np.array([2, 2], np.int32)), np.array(1, np.int32)], out)
    refused(D, [x, Const(np.array([2, 2], np.int32)), v], [((1,), np.int32)])
    refused(D, [np.array(1, np.float32), Const(np.zeros((0,), np.int32)), v], out)
    # an empty dimension dilated by 2 has size -1
    e = np.zeros((0, 3), np.float32)
    refused(D, [e, Const(np.array([2, 2], np.int32)), v], out)
    refused(D, [e, np.array([2, 2], np.int32), v], out, at="invoke", ours=InputError)
    # sizes beyond int32
    big = np.array([2**31 - 1, 2], np.int32)
    refused(D, [x, Const(big), v], out)
    refused(D, [x, big, v], out, at="invoke", ours=InputError)
    # LiteRT crashes on these (an empty padding value; an empty leading dimension): not run
    refused(D, [x, Const(np.array([2, 2], np.int32)), np.zeros((0,), np.float32)], out,
            litert=False)
    # LiteRT allocates and fills 5.4 GB here: ours refuses before allocating
    huge = np.array([2**28, 2], np.int32)
    e = refused(D, [x, Const(huge), v], out, litert=False)
    assert "GiB" in str(e)
    e = refused(D, [x, huge, v], out, at="invoke", ours=InputError, litert=False)
    assert "GiB" in str(e)


def test_dilate_empty_leading_dimension():
    """LiteRT crashes on this one (an empty dimension with dilation 1 before a dilated one);
    ours returns the empty result."""
    content = one_op(Op.DILATE, [np.zeros((0, 3), np.float32), Const(np.array([1, 2], np.int32)),
                                 np.array(0, np.float32)], [((1,), np.float32)])
    got = _run(Interpreter(model_content=content), [np.zeros((0, 3), np.float32),
                                                    np.array(0, np.float32)])[0]
    assert got.shape == (0, 5) and got.dtype == np.float32
