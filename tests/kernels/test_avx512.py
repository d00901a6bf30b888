"""The AVX-512 GEMMs (``kernels/_avx512.py``). The VNNI int8 one is exact, and the integer
CONV_2D and FULLY_CONNECTED kernels that use it give what their BLAS path and LiteRT give,
value for value; the float32 one (bias and clamp fused) agrees with numpy's float64 GEMM to
float32 rounding, and float CONV_2D with it agrees with its BLAS path and with LiteRT.

Oracles: numpy's int64 matmul for the raw accumulators, ``Requantizer._call_int`` for the
fused requantization, LiteRT (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) and the kernels' own BLAS
path (``_jit.avx512_disabled()``) for the kernels. Skipped on CPUs without AVX-512 (VNNI for
the int8 tests), where ``_jit.int8_gemm()`` / ``float_gemm()`` are None and the kernels keep
their BLAS paths.
"""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels import _jit
from workbench.kernels import _qconv as q

import workbench as wb
from tests.kernels.test_jit_loops import _dw_case, _litert, _model, _out_size, _q
from workbench.ir import ops as O
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import BuiltinOperator as B

vn = _jit.int8_gemm()
fg = _jit.float_gemm()
pytestmark = pytest.mark.skipif(fg is None, reason="no AVX-512 on this CPU (or numba missing): "
                                                   "the BLAS paths run instead")
needs_vnni = pytest.mark.skipif(vn is None, reason="no AVX-512 VNNI on this CPU")


def _gemm(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    pk = vn.PackedWeights(w)
    vg_rows = q.VnniGemm(vn, pk, q.Requantizer([0.5], q.UPWARD, 0, -128, 127, np.int8))
    rows = vg_rows.rows(a, a.shape[0])
    out = np.full((a.shape[0], w.shape[0]), -7, np.int32)
    tile = np.empty(vn.MR * vn.PANEL, np.int32)
    vn.gemm_int32(rows, rows.shape[0], rows.shape[1], pk.packed, pk.offsets, pk.widths, pk.k_steps,
                  pk.n, out, tile)
    return out


@needs_vnni
@pytest.mark.parametrize("m", [1, 5, 6, 7, 13])
@pytest.mark.parametrize("k", [1, 3, 4, 5, 16, 27, 130])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 63, 64, 65, 130])
def test_gemm_accumulators_exact(m, k, n):
    """Every row/column edge of the 6-row tiles and 16-lane vectors, K not a multiple of 4."""
    rng = np.random.default_rng(m * 10007 + k * 101 + n)
    a = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-128, 128, (n, k)).astype(np.int8)
    exp = (a.astype(np.int64) + 128) @ w.astype(np.int64).T
    np.testing.assert_array_equal(_gemm(a, w), exp)


@needs_vnni
def test_gemm_extremes_and_strided_rows():
    """The largest accumulators of either sign, and rows taken from a strided view (copied
    into padded rows)."""
    k = 4096
    a = np.full((7, k), 127, np.int8)
    a[3] = -128
    w = np.full((20, k), -128, np.int8)
    w[5] = 127
    exp = (a.astype(np.int64) + 128) @ w.astype(np.int64).T
    assert exp.min() == -255 * 128 * k
    np.testing.assert_array_equal(_gemm(a, w), exp)
    big = np.random.default_rng(1).integers(-128, 128, (9, 2 * k + 3)).astype(np.int8)
    view = big[:, 1:2 * k + 1:2]
    exp = (view.astype(np.int64) + 128) @ w.astype(np.int64).T
    np.testing.assert_array_equal(_gemm(view, w), exp)


@needs_vnni
def test_bound_refuses_int32_overflow():
    """An accumulator that could leave int32 keeps the BLAS path."""
    k = 2**31 // (255 * 127) + 1
    w = np.full((1, k), 127, np.int8)
    assert vn.PackedWeights(w).bound >= 2**31
    requant = q.Requantizer([1e-4], q.UPWARD, 0, -128, 127, np.int8)
    assert q.VnniGemm.build(w, requant) is None
    assert q.VnniGemm.build(w[:, :k - 2000], requant) is not None


@needs_vnni
@pytest.mark.parametrize("rounding,wrap,low,top,float_form", [
    (q.UPWARD, False, 1e-3, 0.9, True), (q.GEMMLOWP, False, 1e-3, 0.9, True),
    (q.INT64, False, 1e-3, 0.9, True),
    (q.UPWARD, True, 1e-3, 0.9, False),  # wrap_acc rules the float64 form out
    (q.UPWARD, False, 2e-5, 3.0, False),  # left shifts, long right shifts: int64 form
    (q.GEMMLOWP, False, 2e-5, 3.0, False)])
def test_fused_requantization_equals_call_int(rounding, wrap, low, top, float_form):
    """Both requantization forms of the fused loop (float64 where the kernel's requantizer
    proved it exact, else int64) against ``_call_int`` on the true accumulators, per-channel
    multipliers from ``low`` to ``top``."""
    rng = np.random.default_rng(7)
    m, k, n = 31, 77, 45
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    zx, zo = -17, 9
    bias = rng.integers(-40000, 40000, n).astype(np.int64)
    mult = np.geomspace(low, top, n)
    offset = -zx * w.astype(np.int64).sum(axis=1) + bias
    bound = 128 * int(np.abs(w.astype(np.int64)).sum(axis=1).max())
    requant = q.Requantizer(mult, rounding, zo, -128, 127, np.int8, wrap_acc=wrap,
                            offset=offset, bound=bound)
    vg = q.VnniGemm.build(w, requant)
    assert (vg.fq is not None) == float_form
    out = np.empty((m, n), np.int8)
    vg(x, out)
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    np.testing.assert_array_equal(out, requant._call_int(acc))


@needs_vnni
@pytest.mark.parametrize("rounding", [q.UPWARD, q.GEMMLOWP])
def test_fused_requantization_every_accumulator_of_a_range(rounding):
    """The fused epilogue's float32 form with its float64 fallback, on every accumulator from
    -48896 to 48514 (rows ``x`` against ``w = [1, 127, 127, 127]``): exact ties, values a
    float32 rounding away from them and GEMMLOWP's tie threshold all occur, for multipliers
    that make ties frequent (powers of two, small odd numerators) and generic ones,
    per-channel. Oracle: ``_call_int`` on the true accumulators."""
    s = np.arange(-384, 382)  # x1 + x2 + x3, each in [-128, 127]
    x = np.zeros((s.size, 256, 4), np.int64)
    x[..., 0] = np.arange(-128, 128)[None, :]
    x[..., 1] = np.clip(s, -128, 127)[:, None]
    x[..., 2] = np.clip(s[:, None] - x[..., 1], -128, 127)
    x[..., 3] = s[:, None] - x[..., 1] - x[..., 2]
    x = x.reshape(-1, 4).astype(np.int8)
    mult = np.array([0.5, 0.25, 2.0**-10, 3 * 2.0**-12, 5 * 2.0**-9, 1 / 3, 0.7, 1e-3,
                     2.0**-7, 0.9999, 7 * 2.0**-13, 0.0123, 2.0**-11, 0.3, 1.0 / 256, 0.051])
    n = mult.size
    bias = np.random.default_rng(5).integers(-3000, 3000, n)
    bias[:4] = [0, 1, -1, 64]
    w = np.tile(np.array([1, 127, 127, 127], np.int8), (n, 1))
    zx, zo = 3, -5
    offset = -zx * w.astype(np.int64).sum(axis=1) + bias
    bound = 255 * 4 * 127
    requant = q.Requantizer(mult, rounding, zo, -128, 127, np.int8, offset=offset, bound=bound)
    vg = q.VnniGemm.build(w, requant)
    assert vg is not None and vg.fq is not None and vg.fq.ties == (rounding == q.GEMMLOWP)
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    assert acc.min() <= -48896 and acc.max() >= 48514
    assert np.array_equal(np.unique(acc[:, 0]), np.arange(acc.min(), acc.max() + 1))
    out = np.empty((x.shape[0], n), np.int8)
    vg(x, out)
    np.testing.assert_array_equal(out, requant._call_int(acc))


def _rows_for(targets: np.ndarray) -> np.ndarray:
    """int8 rows ``x`` with ``x @ [1, 127, 127, 127] == targets`` (|targets| <= 48000)."""
    s = np.round(targets / 127).astype(np.int64)
    x = np.empty((targets.size, 4), np.int64)
    x[:, 0] = targets - 127 * s
    x[:, 1] = np.clip(s, -128, 127)
    x[:, 2] = np.clip(s - x[:, 1], -128, 127)
    x[:, 3] = s - x[:, 1] - x[:, 2]
    return x.astype(np.int8)


@needs_vnni
def test_fused_requantization_gemmlowp_threshold_undecided():
    """GEMMLOWP's tie fix subtracts one right-shift step where ``acc * M < -2**30``: with one
    right shift (multipliers just above 2**-2) the full accumulator -1 lands a hair below that
    threshold, and a large bias makes float32's error larger than the hair, so float32 alone
    would decide the wrong side for some of these channels (checked below): the kernel must
    count such lanes as undecided. Sixteen copies of each channel fill a vector (no other lane
    sends it to the float64 form). Oracle: ``_call_int``."""
    f32 = np.float32
    wrong_sides = 0
    for i, delta in enumerate(np.geomspace(1e-8, 3e-4, 16)):
        bias = int(30001 + 1100 * i) * (-1) ** i
        w = np.tile(np.array([1, 127, 127, 127], np.int8), (16, 1))
        offset = np.full(16, -3 * 382 + bias)
        requant = q.Requantizer(np.full(16, 0.25 + delta), q.GEMMLOWP, -5, -128, 127, np.int8,
                                offset=offset, bound=255 * 4 * 127)
        vg = q.VnniGemm.build(w, requant)
        assert vg is not None and vg.fq is not None and vg.fq.ties
        x = _rows_for(np.arange(-4, 3) - offset[0])
        acc = x.astype(np.int64) @ w.astype(np.int64).T
        out = np.empty((x.shape[0], 16), np.int8)
        vg(x, out)
        np.testing.assert_array_equal(out, requant._call_int(acc.copy()))
        fa, fb, thr = (v[0] for v in requant.loop_params_float(1)[:3])
        a = -1 - offset[0]  # the kernel's sums for the full accumulator -1
        fast = f32(float(f32(a)) * float(f32(fa)) + float(f32(fb)))
        wrong_sides += (fast < f32(thr)) != (a * fa + fb < thr)
    assert wrong_sides >= 3


CONV_GEOMETRIES = [  # n, h, w, c, oc, k, stride, dilation, padding
    (1, 10, 10, 16, 24, 1, 1, 1, O.Padding.VALID),   # pointwise: the input is the GEMM's rows
    (1, 9, 7, 3, 5, 1, 1, 1, O.Padding.VALID),       # pointwise, K = 3: padded rows
    (1, 11, 9, 3, 32, 3, 2, 1, O.Padding.SAME),      # a first conv (K = 27)
    (2, 7, 7, 12, 70, 3, 1, 1, O.Padding.SAME),      # batch, two panels, 70 channels
    (1, 12, 12, 8, 16, 3, 1, 2, O.Padding.SAME),     # dilation
    (1, 6, 6, 4, 9, 5, 3, 1, O.Padding.VALID),       # stride < kernel, odd sizes
    (1, 3, 3, 8, 17, 7, 1, 1, O.Padding.SAME),       # kernel larger than the image: taps cropped
    (1, 5, 5, 16, 130, 2, 2, 1, O.Padding.SAME),     # stride = kernel, three panels
]


def _conv_case(g, rng, zx, zo, act):
    n, h, w_, c, oc, k, s, d, padding = g
    opts = O.Conv2DOptions(padding=padding, stride_w=s, stride_h=s, dilation_w_factor=d,
                           dilation_h_factor=d, fused_activation_function=act)
    out_shape = (n, _out_size(h, k, s, d, padding), _out_size(w_, k, s, d, padding), oc)
    x = rng.integers(-128, 128, (n, h, w_, c)).astype(np.int8)
    w = rng.integers(-127, 128, (oc, k, k, c)).astype(np.int8)
    sx, so = 0.02, 0.02 * k * np.sqrt(c)
    sw = rng.uniform(0.002, 0.02, oc).astype(np.float32)
    b = rng.integers(-3000, 3000, oc).astype(np.int32)
    return _model(B.CONV_2D, opts, x.shape, w, b, out_shape, dtype=np.int8, qx=_q(sx, zx),
                  qw=_q(sw, np.zeros(oc, np.int64)), qb=_q(np.float32(sx) * sw,
                                                          np.zeros(oc, np.int64)),
                  qo=_q(so, zo)), [x]


def _run_three(content, inputs, op, attr="vnni", terms=1, oracle=None):
    """Ours on AVX-512 (asserting it ran), ours with the BLAS path, LiteRT: all equal (float:
    within float32 rounding of ``terms``-term sums of unit-scale products taken in another
    order). ``oracle``: the model LiteRT runs instead (same maths)."""
    it = wb.Interpreter(model_content=content)
    got = it.run(inputs)[0]
    kern = it._plans[0].kernels[0]
    assert kern.node.op.name == op and getattr(kern, attr) is not None
    with _jit.avx512_disabled():
        it2 = wb.Interpreter(model_content=content)
        plain = it2.run(inputs)[0]
        assert getattr(it2._plans[0].kernels[0], attr) is None
    exp = _litert(content if oracle is None else oracle, inputs)
    if got.dtype == np.float32:
        tol = 4 * terms * 2.0**-23
        np.testing.assert_allclose(got, plain, rtol=1e-5, atol=tol)
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=tol)
    else:
        np.testing.assert_array_equal(got, plain)
        np.testing.assert_array_equal(got, exp)


@needs_vnni
@pytest.mark.parametrize("g", CONV_GEOMETRIES, ids=lambda g: "x".join(map(str, g[:8])))
@pytest.mark.parametrize("zx,zo", [(-128, 127), (127, -128), (0, 0), (-3, 5)])
def test_conv_2d_vnni_as_blas_and_litert(g, zx, zo):
    rng = np.random.default_rng(sum(g[:8]) + zx + 128)
    for act in (Act.NONE, Act.RELU6, Act.RELU_N1_TO_1):
        content, inputs = _conv_case(g, rng, zx, zo, act)
        _run_three(content, inputs, "CONV_2D")


@needs_vnni
@pytest.mark.parametrize("batch,k,units", [(1, 1280, 1000), (3, 7, 5), (13, 64, 130)])
@pytest.mark.parametrize("zx,zo", [(-128, 127), (5, -3)])
def test_fully_connected_vnni_as_blas_and_litert(batch, k, units, zx, zo):
    rng = np.random.default_rng(batch + k + units)
    x = rng.integers(-128, 128, (batch, k)).astype(np.int8)
    w = rng.integers(-127, 128, (units, k)).astype(np.int8)
    b = rng.integers(-5000, 5000, units).astype(np.int32)
    sx, sw, so = 0.05, 0.01, 0.05 * np.sqrt(k)
    content = _model(B.FULLY_CONNECTED, O.FullyConnectedOptions(), x.shape, w, b,
                     (batch, units), dtype=np.int8, qx=_q(sx, zx), qw=_q(sw, 0),
                     qb=_q(sx * sw, 0), qo=_q(so, zo))
    _run_three(content, [x], "FULLY_CONNECTED")


@needs_vnni
def test_switch():
    with _jit.avx512_disabled():
        assert _jit.int8_gemm() is None
    with _jit.disabled():  # no compiled loops: no VNNI either
        assert _jit.int8_gemm() is None
    assert _jit.int8_gemm() is vn


# -- float32 -------------------------------------------------------------------------------------
def _fgemm(a, w, bias, lo, hi):
    pk = fg.PackedWeights(w)
    out = np.full((a.shape[0], w.shape[0]), 7.0, np.float32)
    fg.gemm_bias_clamp(a, a.shape[0], a.shape[1], pk.packed, pk.offsets, pk.widths, pk.k_steps,
                       pk.n, pk.padded(bias, np.float32), np.float32(lo), np.float32(hi), out)
    return out


@pytest.mark.parametrize("m", [1, 6, 7, 13])
@pytest.mark.parametrize("k", [1, 3, 16, 27, 300])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 64, 65, 130])
def test_float_gemm_as_float64(m, k, n):
    """Every tile edge; the result within float32 rounding of the float64 product, each
    output's error bounded by ``k`` roundings of its largest term."""
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    exp = a.astype(np.float64) @ w.astype(np.float64).T + bias
    got = _fgemm(a, w, bias, -np.inf, np.inf)
    scale = np.abs(a).astype(np.float64) @ np.abs(w).astype(np.float64).T + np.abs(bias)
    assert np.all(np.abs(got - exp) <= (k + 1) * 2.0**-23 * scale)
    lo, hi = -0.5, 0.75
    np.testing.assert_array_equal(_fgemm(a, w, bias, lo, hi), np.clip(got, lo, hi))


def test_float_gemm_nan_and_inf():
    """NaN propagates through the sums and the clamp (as ``_loops._clamp``); infinities clamp."""
    a = np.ones((7, 5), np.float32)
    a[2, 3] = np.nan
    a[4, 1] = np.inf
    w = np.ones((20, 5), np.float32)
    got = _fgemm(a, w, np.zeros(20, np.float32), 0.0, 6.0)
    assert np.all(np.isnan(got[2]))
    np.testing.assert_array_equal(got[4], 6.0)
    np.testing.assert_array_equal(got[0], 5.0)
    got = _fgemm(a, w, np.zeros(20, np.float32), -np.inf, np.inf)
    assert np.all(np.isinf(got[4]))


FLOAT_GEOMETRIES = [g for g in CONV_GEOMETRIES]


@pytest.mark.parametrize("g", FLOAT_GEOMETRIES, ids=lambda g: "x".join(map(str, g[:8])))
@pytest.mark.parametrize("bias", [True, False])
def test_conv_2d_float_avx512_as_blas_and_litert(g, bias):
    n, h, w_, c, oc, k, s, d, padding = g
    rng = np.random.default_rng(sum(g[:8]) + bias)
    for act in (Act.NONE, Act.RELU6, Act.RELU_N1_TO_1, Act.TANH):
        opts = O.Conv2DOptions(padding=padding, stride_w=s, stride_h=s, dilation_w_factor=d,
                               dilation_h_factor=d, fused_activation_function=act)
        out_shape = (n, _out_size(h, k, s, d, padding), _out_size(w_, k, s, d, padding), oc)
        x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
        w = rng.standard_normal((oc, k, k, c)).astype(np.float32)
        b = rng.standard_normal(oc).astype(np.float32) if bias else None
        content = _model(B.CONV_2D, opts, x.shape, w, b, out_shape)
        # (LiteRT's float CONV_2D requires a bias: it runs the same model with zeros)
        oracle = None if bias else _model(B.CONV_2D, opts, x.shape, w,
                                          np.zeros(oc, np.float32), out_shape)
        _run_three(content, [x], "CONV_2D", attr="fgemm", terms=k * k * c, oracle=oracle)


def test_float_switch():
    with _jit.avx512_disabled():
        assert _jit.float_gemm() is None
    assert _jit.float_gemm() is fg


# -- int8 depthwise ------------------------------------------------------------------------------
DW_GEOMETRIES = [  # (n, h, w, c, mult, k, s, d, padding)
    (1, 12, 12, 32, 1, 3, 1, 1, O.Padding.SAME),    # 3x3 (unrolled taps), whole vectors
    (2, 13, 11, 20, 1, 3, 2, 1, O.Padding.SAME),    # batch, stride 2, a partial vector
    (1, 14, 14, 40, 1, 5, 1, 1, O.Padding.SAME),    # 5x5 (unrolled)
    (1, 15, 15, 7, 1, 3, 1, 2, O.Padding.VALID),    # dilation, fewer than 16 channels
    (1, 9, 10, 18, 1, 2, 1, 1, O.Padding.SAME),     # 2x2: the tap loop
    (1, 8, 8, 16, 1, 3, 4, 1, O.Padding.SAME),      # stride > kernel
    (1, 3, 3, 9, 1, 5, 1, 1, O.Padding.SAME),       # no interior pixel at all
]


@pytest.mark.parametrize("g", DW_GEOMETRIES, ids=lambda g: "x".join(map(str, g[:8])) + str(g[8]))
def test_depthwise_int8_avx512_as_loops_and_litert(g):
    """Interior runs in the AVX-512 kernel, border pixels in the compiled loop: the whole
    output equal to the loops-only path and to LiteRT, zero points included."""
    rng = np.random.default_rng(sum(g[:8]))
    for act in (Act.NONE, Act.RELU6, Act.RELU_N1_TO_1):
        content, inputs = _dw_case(g, rng, np.int8, act)
        _run_three(content, inputs, "DEPTHWISE_CONV_2D", attr="dw512")


def test_depthwise_int8_avx512_not_for_depth_multiplier():
    content, inputs = _dw_case((1, 6, 6, 4, 2, 3, 1, 1, O.Padding.SAME),
                               np.random.default_rng(3), np.int8)
    it = wb.Interpreter(model_content=content)
    np.testing.assert_array_equal(it.run(inputs)[0], _litert(content, inputs))
    assert it._plans[0].kernels[0].dw512 is None


@needs_vnni
def test_requant_block_without_a_float32_bound_takes_float64():
    """Channels whose float32 constants cannot carry the error bound (a multiplier that is
    subnormal or zero in float32) are always undecided, padding channels never: the fused
    GEMM gives the float64 form's values there (oracle: ``requantize_value_float``'s formula
    in numpy float64)."""
    rng = np.random.default_rng(12)
    m, k, n = 23, 8, 5
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    pk = vn.PackedWeights(w)
    fa = np.array([1e-40, 1e-46, 0.0123, 3e-3, 1e-39])  # subnormal, underflowing, normal
    fb = np.array([100.25, 90.5, 7.75, 128.0, -1e6])
    thr, step = np.full(n, -np.inf), np.ones(n)
    blk = vn.RequantBlock(-128 * pk.colsum, (fa, fb, thr, step, 255.0, -128), n, pk.width)
    eb = blk.block[vn._block_offset("f32", "eb", blk.width):].view(np.float32)[:blk.width]
    assert np.isinf(eb[[0, 1, 4]]).all() and np.isfinite(eb[[2, 3]]).all()
    assert (eb[n:] == -1).all()
    out = np.empty((m, n), np.int8)
    vn.gemm_requantize_float(x, m, k, pk.packed, pk.offsets, pk.widths, pk.k_steps, n,
                             blk.block, blk.width, 255.0, -128, False, out)
    acc = x.astype(np.int64) @ w.astype(np.int64).T
    t = np.clip(acc * fa + fb, 0, 255)
    np.testing.assert_array_equal(out, (np.trunc(t) - 128).astype(np.int8))
