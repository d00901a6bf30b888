"""The compiled loops (``kernels/_loops.py``, numba) compute what the numpy forms compute.

Each kernel that has a compiled loop is prepared twice on the same hand-built model, once with
the loops and once under ``_jit.disabled()``: the outputs must be equal value for value. The
integer models are also run by LiteRT (bit-exact oracle) and the float ones compared with
LiteRT within the float contract, so a loop that matched a wrong numpy form would still fail.
The requantization loop is checked directly against ``Requantizer._call_int`` on accumulators
that exercise every flag (int32 wraps, left shifts, the GEMMLOWP tie fix, each rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels import _jit

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.ir import ops as O
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import BuiltinOperator as B

pytestmark = pytest.mark.skipif(_jit.loops() is None, reason="numba not available")


def _q(scale, zp, axis=0):
    return QuantParams(scale=np.atleast_1d(np.asarray(scale, np.float32)),
                       zero_point=np.atleast_1d(np.asarray(zp, np.int64)),
                       quantized_dimension=axis)


def _model(op, options, x_shape, w, b, out_shape, *, dtype=np.float32, qx=None, qw=None,
           qb=None, qo=None, const_w=True, const_b=True) -> bytes:
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    x = sg.new_tensor("x", x_shape, dtype, quantization=qx)
    sg.inputs.append(x)
    wt = sg.new_tensor("w", w.shape, w.dtype, data=w if const_w else None, quantization=qw)
    if not const_w:
        sg.inputs.append(wt)
    ins = [x, wt]
    if b is not None:
        bt = sg.new_tensor("b", b.shape, b.dtype, data=b if const_b else None, quantization=qb)
        if not const_b:
            sg.inputs.append(bt)
        ins.append(bt)
    y = sg.new_tensor("y", out_shape, dtype, quantization=qo)
    sg.outputs.append(y)
    sg.add_operator(Operator(m.opcode(op), ins, [y], options=options))
    return m.to_bytes()


def _run_both(content: bytes, inputs: list[np.ndarray], exact: bool = True) -> np.ndarray:
    """Our output with the compiled loops, after checking it equals the numpy forms' one.
    ``exact`` False: float CONV_2D, whose numpy form may add a constant bias inside the GEMM
    (one more column) where the loop adds it after, in the other order of float32 sums."""
    got = wb.Interpreter(model_content=content).run(inputs)[0]
    with _jit.disabled():
        plain = wb.Interpreter(model_content=content).run(inputs)[0]
    assert got.dtype == plain.dtype
    if exact:
        np.testing.assert_array_equal(got, plain)
    else:
        np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-6 * float(np.ptp(plain)))
    return got


def _litert(content: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    it = litert_interpreter(content)
    it.allocate_tensors()
    for d, a in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], a)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def _out_size(size, k, s, d, padding):
    eff = (k - 1) * d + 1
    return -(-size // s) if padding == O.Padding.SAME else (size - eff) // s + 1


DW_GEOMETRIES = [  # (n, h, w, c, mult, k, s, d, padding)
    (1, 12, 12, 8, 1, 3, 1, 1, O.Padding.SAME),
    (1, 13, 11, 16, 1, 3, 2, 1, O.Padding.SAME),   # odd sizes, stride 2
    (2, 9, 10, 5, 1, 3, 2, 1, O.Padding.VALID),    # batch, channels not a multiple of 8
    (1, 14, 14, 12, 1, 5, 1, 1, O.Padding.SAME),   # 5x5 (the generic pixel loop)
    (1, 15, 15, 6, 1, 3, 1, 2, O.Padding.SAME),    # dilation
    (1, 10, 10, 3, 2, 3, 1, 1, O.Padding.SAME),    # depth multiplier
    (1, 8, 8, 4, 1, 3, 4, 1, O.Padding.SAME),      # stride > kernel
    (1, 7, 9, 24, 1, 1, 1, 1, O.Padding.VALID),    # 1x1
    (1, 3, 3, 9, 1, 5, 1, 1, O.Padding.SAME),      # kernel larger than the image
]


def _dw_case(g, rng, dtype, act=Act.RELU6, bias=True, const_w=True, const_b=True):
    n, h, w_, c, mult, k, s, d, padding = g
    oc = c * mult
    opts = O.DepthwiseConv2DOptions(padding=padding, stride_w=s, stride_h=s,
                                    depth_multiplier=mult, fused_activation_function=act,
                                    dilation_w_factor=d, dilation_h_factor=d)
    out_shape = (n, _out_size(h, k, s, d, padding), _out_size(w_, k, s, d, padding), oc)
    if dtype == np.float32:
        x = rng.standard_normal((n, h, w_, c)).astype(np.float32) * 3
        w = rng.standard_normal((1, k, k, oc)).astype(np.float32)
        b = rng.standard_normal(oc).astype(np.float32) if bias else None
        content = _model(B.DEPTHWISE_CONV_2D, opts, x.shape, w, b, out_shape,
                         const_w=const_w, const_b=const_b)
    else:
        info = np.iinfo(dtype)
        zx = 0 if dtype == np.int16 else int(rng.integers(info.min, info.max + 1))
        zo = 0 if dtype == np.int16 else int(rng.integers(info.min // 2, info.max // 2))
        x = rng.integers(info.min, info.max + 1, (n, h, w_, c)).astype(dtype)
        sx, so = 0.02, 0.05 * k
        if dtype == np.uint8:
            zw = int(rng.integers(0, 256))
            w = rng.integers(0, 256, (1, k, k, oc)).astype(np.uint8)
            qw, sw = _q(0.01, zw), np.float32(0.01)
        else:
            w = rng.integers(-127, 128, (1, k, k, oc)).astype(np.int8)
            sw = rng.uniform(0.002, 0.02, oc).astype(np.float32)
            qw = _q(sw, np.zeros(oc, np.int64), axis=3)
        bdt = np.int64 if dtype == np.int16 else np.int32
        b = rng.integers(-3000, 3000, oc).astype(bdt) if bias else None
        qb = _q(np.float32(sx) * np.asarray(sw, np.float32) * np.ones(oc, np.float32),
                np.zeros(oc, np.int64)) if bias else None
        content = _model(B.DEPTHWISE_CONV_2D, opts, x.shape, w, b, out_shape, dtype=dtype,
                         qx=_q(sx, zx), qw=qw, qb=qb, qo=_q(so, zo), const_w=const_w,
                         const_b=const_b)
    inputs = [x] + ([] if const_w else [w]) + ([] if const_b or b is None else [b])
    return content, inputs


@pytest.mark.parametrize("g", DW_GEOMETRIES, ids=lambda g: "x".join(map(str, g[:8])) + str(g[8]))
def test_depthwise_float_loop(g):
    rng = np.random.default_rng(sum(g[:8]))
    for act in (Act.RELU6, Act.NONE, Act.RELU_N1_TO_1):
        content, inputs = _dw_case(g, rng, np.float32, act=act)
        got = _run_both(content, inputs)
        exp = _litert(content, inputs)
        span = max(float(np.ptp(exp)), 1e-6)
        np.testing.assert_allclose(got, exp, atol=1e-5 * span, rtol=0)


@pytest.mark.parametrize("const", [(False, True), (True, False)], ids=["runtime_w", "runtime_b"])
def test_depthwise_float_loop_runtime_operands(const):
    rng = np.random.default_rng(3)
    content, inputs = _dw_case(DW_GEOMETRIES[1], rng, np.float32, act=Act.RELU,
                               const_w=const[0], const_b=const[1])
    got = _run_both(content, inputs)
    np.testing.assert_allclose(got, _litert(content, inputs), atol=1e-4)


def test_depthwise_float_loop_without_bias_keeps_nan():
    rng = np.random.default_rng(4)
    content, (x,) = _dw_case(DW_GEOMETRIES[0], rng, np.float32, act=Act.RELU6, bias=False)
    x[0, 5, 5, 2] = np.nan
    got = _run_both(content, [x])
    assert np.isnan(got[0, 4:7, 4:7, 2]).all() and np.isnan(got).sum() == 9


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
@pytest.mark.parametrize("g", DW_GEOMETRIES, ids=lambda g: "x".join(map(str, g[:8])) + str(g[8]))
def test_depthwise_quantized_loop(g, dtype):
    rng = np.random.default_rng(sum(g[:8]) + np.dtype(dtype).itemsize)
    if dtype == np.uint8 and g[4] > 1:
        pytest.skip("legacy uint8 models have no depth multiplier here")
    for act in (Act.RELU6, Act.NONE):
        content, inputs = _dw_case(g, rng, dtype, act=act)
        got = _run_both(content, inputs)
        np.testing.assert_array_equal(got, _litert(content, inputs))


def test_depthwise_quantized_loop_runtime_bias():
    rng = np.random.default_rng(7)
    content, inputs = _dw_case(DW_GEOMETRIES[2], rng, np.int8, const_b=False)
    got = _run_both(content, inputs)
    np.testing.assert_array_equal(got, _litert(content, inputs))


def test_depthwise_quantized_loop_runtime_filter():
    rng = np.random.default_rng(8)
    content, inputs = _dw_case(DW_GEOMETRIES[0], rng, np.int8, const_w=False)
    got = _run_both(content, inputs)
    np.testing.assert_array_equal(got, _litert(content, inputs))


CONV_GEOMETRIES = [  # (n, h, w, c, oc, k, s, padding)
    (1, 10, 10, 16, 24, 1, 1, O.Padding.VALID),   # pointwise
    (1, 11, 9, 3, 8, 3, 2, O.Padding.SAME),       # a first conv
    (2, 7, 7, 12, 20, 3, 1, O.Padding.SAME),      # batch, channels not a multiple of 8
]


def _conv_case(g, rng, dtype, act=Act.RELU6):
    n, h, w_, c, oc, k, s, padding = g
    opts = O.Conv2DOptions(padding=padding, stride_w=s, stride_h=s,
                           fused_activation_function=act)
    out_shape = (n, _out_size(h, k, s, 1, padding), _out_size(w_, k, s, 1, padding), oc)
    if dtype == np.float32:
        x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
        w = rng.standard_normal((oc, k, k, c)).astype(np.float32)
        b = rng.standard_normal(oc).astype(np.float32)
        return _model(B.CONV_2D, opts, x.shape, w, b, out_shape), [x]
    info = np.iinfo(dtype)
    zx = 0 if dtype == np.int16 else int(rng.integers(info.min, info.max + 1))
    zo = 0 if dtype == np.int16 else int(rng.integers(info.min // 2, info.max // 2))
    x = rng.integers(info.min, info.max + 1, (n, h, w_, c)).astype(dtype)
    sx, so = 0.02, 0.02 * k * np.sqrt(c)
    if dtype == np.uint8:
        w = rng.integers(0, 256, (oc, k, k, c)).astype(np.uint8)
        sw = np.full(oc, 0.01, np.float32)
        qw = _q(0.01, int(rng.integers(0, 256)))
    else:
        w = rng.integers(-127, 128, (oc, k, k, c)).astype(np.int8)
        sw = rng.uniform(0.002, 0.02, oc).astype(np.float32)
        qw = _q(sw, np.zeros(oc, np.int64), axis=0)
    b = rng.integers(-3000, 3000, oc).astype(np.int64 if dtype == np.int16 else np.int32)
    qb = _q(np.float32(sx) * sw, np.zeros(oc, np.int64))
    return _model(B.CONV_2D, opts, x.shape, w, b, out_shape, dtype=dtype, qx=_q(sx, zx),
                  qw=qw, qb=qb, qo=_q(so, zo)), [x]


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8, np.int16])
@pytest.mark.parametrize("g", CONV_GEOMETRIES, ids=lambda g: "x".join(map(str, g[:7])))
def test_conv_loops(g, dtype):
    rng = np.random.default_rng(sum(g[:7]))
    for act in (Act.RELU6, Act.NONE, Act.RELU):
        content, inputs = _conv_case(g, rng, dtype, act)
        got = _run_both(content, inputs, exact=dtype != np.float32)
        exp = _litert(content, inputs)
        if dtype == np.float32:
            np.testing.assert_allclose(got, exp, atol=1e-5 * max(float(np.ptp(exp)), 1e-6))
        else:
            np.testing.assert_array_equal(got, exp)


# -- the requantization loop against the numpy int64 form ---------------------------------------
@pytest.mark.parametrize("acc_dtype", [np.int64, np.float64, np.float32])
def test_requantize_rows_equals_call_int(acc_dtype):
    from workbench.kernels._qconv import GEMMLOWP, INT64, SINGLE, UPWARD, Requantizer

    loops = _jit.loops()
    rng = np.random.default_rng(11)
    big = 2**24 if acc_dtype == np.float32 else 2**40
    acc = np.concatenate([rng.integers(-big, big, 4000),
                          rng.integers(-3000, 3000, 4000),
                          np.arange(-1000, 1000)]).reshape(-1, 10).astype(acc_dtype)
    # multipliers below and above 1 (left shifts), tiny and per channel
    mults = np.array([2.0**-9, 0.5, 1 / 3, 0.0123, 2.5e-5, 0.75, 1.5, 3.0, 1e-9, 0.999])
    offset = rng.integers(-300, 300, 10)
    cases = []
    for rounding in (UPWARD, GEMMLOWP, INT64, SINGLE):
        for wrap in (False, True):
            cases.append(dict(multipliers=mults, rounding=rounding, zero_point=-3, lo=-128,
                              hi=127, dtype=np.int8, wrap_acc=wrap, offset=offset))
    cases.append(dict(multipliers=mults, rounding=GEMMLOWP, zero_point=7, lo=0, hi=255,
                      dtype=np.uint8, upward=np.arange(10) < 8))
    cases.append(dict(multipliers=[0.37], rounding=UPWARD, zero_point=0, lo=-32768, hi=32767,
                      dtype=np.int16))
    cases.append(dict(multipliers=mults, rounding=INT64, zero_point=0, lo=-2**31,
                      hi=2**31 - 1, dtype=np.int32, offset=offset))
    for kw in cases:
        r = Requantizer(**kw)
        want = r._call_int(acc.copy())
        out = np.empty(acc.shape, r.dtype)
        loops.requantize_rows(acc, r.loop_params(acc.shape[1]), out)
        np.testing.assert_array_equal(out, want, err_msg=str(kw))


@pytest.mark.parametrize("acc_dtype", [np.float32, np.float64, np.int32])
def test_requantize_rows_float_equals_requantizer(acc_dtype):
    """The float64 loop form, where prepare proved it exact, equals the requantizer (both
    forms), with the GEMMLOWP tie fix on some channels, offsets and clamps."""
    from workbench.kernels._qconv import GEMMLOWP, UPWARD, Requantizer

    loops = _jit.loops()
    rng = np.random.default_rng(12)
    bound = 2**20  # |acc * multiplier| < 2**52: the float64 form is exact
    acc = np.concatenate([rng.integers(-bound, bound, 6000), rng.integers(-600, 600, 6000),
                          np.arange(-600, 600)]).reshape(-1, 12).astype(acc_dtype)
    mults = rng.uniform(1e-5, 0.9, 12)
    mults[:3] = [0.5, 0.25, 2.0**-7]  # exact ties
    offset = rng.integers(-5000, 5000, 12)
    seen = 0
    for kw in (dict(rounding=UPWARD, zero_point=-3, lo=-128, hi=127, dtype=np.int8),
               dict(rounding=GEMMLOWP, zero_point=9, lo=0, hi=255, dtype=np.uint8,
                    upward=np.arange(12) < 8),
               dict(rounding=GEMMLOWP, zero_point=-100, lo=-128, hi=6, dtype=np.int8)):
        r = Requantizer(mults, offset=offset, bound=bound, **kw)
        fq = r.loop_params_float(12)
        if fq is None:  # (not proven exact: the loops use the int64 form)
            continue
        seen += 1
        out = np.empty(acc.shape, r.dtype)
        loops.requantize_rows_float(acc, fq, out)
        np.testing.assert_array_equal(out, r(acc.copy()), err_msg=str(kw))
        np.testing.assert_array_equal(out, r._call_int(acc.astype(np.int64)), err_msg=str(kw))
    assert seen == 3


def test_switch_off_and_on():
    rng = np.random.default_rng(0)
    content, inputs = _dw_case(DW_GEOMETRIES[0], rng, np.int8)
    with _jit.disabled():
        assert _jit.loops() is None
        it = wb.Interpreter(model_content=content)
        it.allocate_tensors()
    assert _jit.loops() is not None
    # the numpy form was prepared: its kernel has no compiled loop
    kernel = it._plans[0].kernels[0]
    assert getattr(kernel, "loops", None) is None


# -- 8-bit binary ops: the byte-pair gather ------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("op", [B.ADD, B.SUB, B.MUL])
@pytest.mark.parametrize("shape", [(1, 7, 7, 24), (2, 5, 3), (37,)], ids=str)
def test_binary_byte_pair_loop(op, dtype, shape):
    rng = np.random.default_rng(int(op) + len(shape))
    info = np.iinfo(dtype)
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    qa = _q(0.05, int(rng.integers(info.min, info.max)))
    qb = _q(0.11, int(rng.integers(info.min, info.max)))
    qo = _q(0.09 if op != B.MUL else 0.4, int(rng.integers(info.min // 2, info.max // 2)))
    a = sg.new_tensor("a", shape, dtype, quantization=qa)
    b = sg.new_tensor("b", shape, dtype, quantization=qb)
    y = sg.new_tensor("y", shape, dtype, quantization=qo)
    sg.inputs += [a, b]
    sg.outputs.append(y)
    opts = {B.ADD: O.AddOptions, B.SUB: O.SubOptions, B.MUL: O.MulOptions}[op](
        fused_activation_function=Act.RELU6)
    sg.add_operator(Operator(m.opcode(op), [a, b], [y], options=opts))
    content = m.to_bytes()
    inputs = [rng.integers(info.min, info.max + 1, shape).astype(dtype) for _ in range(2)]
    got = _run_both(content, inputs)
    np.testing.assert_array_equal(got, _litert(content, inputs))


def test_gather_byte_pairs_blocks():
    """Which block each element reads (the first ``n_vec`` the vector block), with tables whose
    blocks differ everywhere, so any off-by-one shows."""
    rng = np.random.default_rng(5)
    table = rng.integers(-128, 128, 3 * 65536).astype(np.int8)
    x = rng.integers(0, 256, 101).astype(np.uint8)
    y = rng.integers(0, 256, 101).astype(np.uint8)
    idx = (x.astype(np.int64) << 8) | y
    for n_vec, off in [(0, 0), (96, 65536), (101, 2 * 65536), (50, 2 * 65536)]:
        out = np.empty(101, np.int8)
        _jit.loops().gather_byte_pairs(x, y, table, n_vec, off, out)
        want = table[idx + np.where(np.arange(101) < n_vec, off, 0)]
        np.testing.assert_array_equal(out, want)


# -- 8-bit SOFTMAX ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dt_in,dt_out", [(np.int8, np.int8), (np.uint8, np.uint8),
                                          (np.int8, np.int16), (np.uint8, np.int16)],
                         ids=lambda d: np.dtype(d).name)
def test_softmax_8bit_loop(dt_in, dt_out):
    """The compiled pass equals the numpy form and LiteRT: rows with one hot value, constant
    rows (every entry the maximum), ties at the maximum, several betas and input scales."""
    rng = np.random.default_rng(11)
    info = np.iinfo(dt_in)
    out_q = {np.int8: (1 / 256, -128), np.uint8: (1 / 256, 0), np.int16: (1 / 32768, 0)}[dt_out]
    for k, (shape, beta, scale) in enumerate([((3, 1000), 1.0, 0.1), ((2, 5, 37), 0.5, 0.02),
                                              ((4, 16), 2.0, 0.25), ((1, 1), 1.0, 0.05),
                                              ((2, 512), 1.0, 0.1)]):  # (constant row: p = 0.5)
        m = Model()
        sg = Subgraph(name="main")
        m.subgraphs.append(sg)
        x = sg.new_tensor("x", shape, dt_in, quantization=_q(scale, int(info.min) + 100))
        y = sg.new_tensor("y", shape, dt_out, quantization=_q(*out_q))
        sg.inputs.append(x)
        sg.outputs.append(y)
        sg.add_operator(Operator(m.opcode(B.SOFTMAX), [x], [y],
                                 options=O.SoftmaxOptions(beta=beta)))
        content = m.to_bytes()
        v = rng.integers(info.min, info.max + 1, shape).astype(dt_in)
        v[..., :2] = info.max  # ties at the maximum
        rows = v.reshape(-1, shape[-1])
        rows[0] = info.min
        rows[0, -1] = info.max  # one hot
        if rows.shape[0] > 1:
            rows[1] = 7  # constant row
        got = _run_both(content, [v])
        np.testing.assert_array_equal(got, _litert(content, [v]))
