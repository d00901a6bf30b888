"""Hybrid (dynamic-range) kernels, sparse weights and int4 against LiteRT's built-in kernels.

One-op models are built with our IR and writer (int8 / uint8 / int4 weights with per-tensor or
per-channel scales, options the converter rarely emits), or converted by TensorFlow (sparse
Dense layers). The integer part of a hybrid kernel (run-time input quantization, integer
products) and its float epilogue follow LiteRT's operation order, so outputs are compared
bit for bit; TRANSPOSE_CONV, whose float accumulation order LiteRT does not expose, within float
rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels._hybrid import (
    densify,
    pack_int4,
    quantize_asymmetric,
    quantize_symmetric,
    unpack_int4,
)

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.interpreter import Interpreter
from workbench.ir.graph import Buffer, Model, Operator, QuantParams, Subgraph
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import (
    BatchMatMulOptions,
    Conv2DOptions,
    DepthwiseConv2DOptions,
    FullyConnectedOptions,
    Op,
    Padding,
    TensorType,
    TransposeConvOptions,
)

F32 = np.float32
RNG = np.random.default_rng(20240501)
_CACHE: dict = {}


# -- building and running ----------------------------------------------------------------------

class Const:
    def __init__(self, value, quant=None, dtype=None):
        self.value = np.asarray(value)
        self.quant = quant
        self.dtype = dtype


def qparams(scale, axis=0, zero_point=None):
    scale = np.atleast_1d(np.asarray(scale, F32))
    zp = np.zeros(scale.size, np.int64) if zero_point is None else np.atleast_1d(zero_point)
    return QuantParams(scale=scale, zero_point=zp, quantized_dimension=axis)


def one_op(op, ins, outs, options=None) -> tuple[bytes, list[np.ndarray]]:
    """A one-operator model; ``ins``: arrays (fed at run time), :class:`Const` or None;
    ``outs``: (shape, dtype) per output. Returns (model bytes, the run-time feeds)."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    tin, feeds = [], []
    for k, x in enumerate(ins):
        if x is None:
            tin.append(None)
        elif isinstance(x, Const):
            t = sg.new_tensor(f"c{k}", x.value.shape, x.value.dtype, data=x.value,
                              quantization=x.quant)
            if x.dtype == TensorType.INT4:
                t.dtype = TensorType.INT4
                t.buffer = Buffer(pack_int4(x.value))
            tin.append(t)
        else:
            t = sg.new_tensor(f"in{k}", x.shape, x.dtype)
            sg.inputs.append(t)
            tin.append(t)
            feeds.append(x)
    tout = [sg.new_tensor(f"out{k}", s, d) for k, (s, d) in enumerate(outs)]
    sg.outputs.extend(tout)
    sg.add_operator(Operator(m.opcode(op), tin, tout, options=options))
    return m.to_bytes(), feeds


def _run(it, feeds):
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def both(content: bytes, feeds):
    return _run(Interpreter(model_content=content), feeds), _run(litert_interpreter(content),
                                                                 feeds)


def check(content: bytes, feeds, exact=True, rel=0.0):
    ours, ref = both(content, feeds)
    for got, exp in zip(ours, ref):
        assert got.shape == exp.shape and got.dtype == exp.dtype
        if exact:
            mism = np.count_nonzero(got != exp)
            assert mism == 0, f"{mism}/{got.size} values differ, max " \
                f"{np.max(np.abs(got.astype(np.float64) - exp)):g}"
        else:
            tol = rel * max(float(np.ptp(exp)), 1e-6)
            assert np.max(np.abs(got.astype(np.float64) - exp), initial=0) <= tol
    return ours


def activations_input(shape, seed=0):
    """Rows of very different magnitudes, all-positive, all-negative, constant and all-zero
    rows: every branch of the run-time quantizers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(F32)
    flat = x.reshape(-1, shape[-1])
    flat *= rng.uniform(0.01, 20, (flat.shape[0], 1)).astype(F32)
    if flat.shape[0] >= 5:
        flat[1] = np.abs(flat[1])
        flat[2] = -np.abs(flat[2])
        flat[3] = 0.0
        flat[4] = 1.5
    return x


# -- run-time quantizers (pure) -----------------------------------------------------------------

def test_symmetric_quantizer_rounds_like_litert_lanes():
    # Values just below .5: LiteRT's vectorized lanes (first K & ~7 values) add 0.5 in float32
    # and truncate, so they round up; the scalar tail rounds half away from zero properly.
    x = np.full((1, 12), F32(0.49999997), F32)
    x[0, 0] = 127.0
    q, scale = quantize_symmetric(x)
    assert scale[0] == 1.0
    assert q[0, 1:8].tolist() == [1] * 7 and q[0, 8:].tolist() == [0] * 4


def test_asymmetric_quantizer_range_and_zero_point():
    x = np.array([[-1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0], [2.0, 4.0, 1.0, 3.0]], F32)
    q, scale, zp = quantize_asymmetric(x)
    assert scale[1] == 1.0 and zp[1] == 0 and not q[1].any()
    # Row 0: range [-1, 3] -> scale 4/255, zero point -128 + 1/scale.
    assert scale[0] == F32(F32(4.0) / 255.0)
    assert zp[0] == -64 and q[0, 0] == -128 and q[0, 2] == 127
    # Row 2: the range always includes 0.
    assert zp[2] == -128 and q[2, 1] == 127


# -- FULLY_CONNECTED ---------------------------------------------------------------------------

def fc_model(x, w, scale, *, asym, bias=None, act=Act.NONE, keep=False, wtype=None):
    units = w.shape[0]
    k = w.shape[1]
    out = (*x.shape[:-1], units) if keep else (x.size // k, units)
    ins = [x, Const(w, qparams(scale), wtype), None if bias is None else Const(bias)]
    return one_op(Op.FULLY_CONNECTED, ins, [(out, F32)],
                  FullyConnectedOptions(fused_activation_function=act, keep_num_dims=keep,
                                        asymmetric_quantize_inputs=asym))


@pytest.mark.parametrize("asym", [False, True], ids=["symmetric", "asymmetric"])
@pytest.mark.parametrize("per_channel", [False, True], ids=["per_tensor", "per_channel"])
@pytest.mark.parametrize("k", [5, 8, 37, 300])
def test_fully_connected(asym, per_channel, k):
    units = 13
    x = activations_input((40, k), seed=k)
    w = RNG.integers(-127, 128, (units, k)).astype(np.int8)
    scale = RNG.uniform(1e-3, 5e-2, units if per_channel else 1)
    bias = RNG.standard_normal(units).astype(F32)
    check(*fc_model(x, w, scale, asym=asym, bias=bias))


@pytest.mark.parametrize("act", list(Act), ids=[a.name for a in Act])
def test_fully_connected_activations(act):
    x = activations_input((12, 24), seed=3)
    w = RNG.integers(-127, 128, (7, 24)).astype(np.int8)
    content, feeds = fc_model(x, w, RNG.uniform(0.01, 0.2, 7), asym=True, act=act,
                              bias=RNG.standard_normal(7).astype(F32))
    ours, ref = both(content, feeds)
    if act == Act.TANH:  # std::tanh vs numpy: the last float bit may differ
        np.testing.assert_allclose(ours[0], ref[0], rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(ours[0], ref[0])


def test_fully_connected_keep_num_dims_no_bias_and_zero_input():
    w = RNG.integers(-127, 128, (6, 16)).astype(np.int8)
    x = activations_input((2, 5, 16), seed=4)
    content, feeds = fc_model(x, w, RNG.uniform(0.01, 0.1, 6), asym=True, keep=True)
    check(content, feeds)
    check(content, [np.zeros_like(x)])  # LiteRT's all-zero shortcut: bias (none) only


def test_fully_connected_uint8_weights_are_read_as_int8_bytes():
    w = RNG.integers(0, 256, (5, 20)).astype(np.uint8)
    x = activations_input((6, 20), seed=5)
    check(*fc_model(x, w, [0.02], asym=False, bias=RNG.standard_normal(5).astype(F32)))


# -- int4 -------------------------------------------------------------------------------------

def test_int4_pack_round_trip():
    v = RNG.integers(-8, 8, (7, 9)).astype(np.int8)
    packed = pack_int4(v)
    assert packed.size == (v.size + 1) // 2
    assert (packed[0] & 0x0F) == (v.reshape(-1)[0] & 0x0F)  # low nibble first
    np.testing.assert_array_equal(unpack_int4(packed, v.shape), v)


@pytest.mark.parametrize("k,units,rows,asym", [
    (37, 5, 3, False),   # odd depth: LiteRT unpacks to int8 and runs the hybrid kernel
    (64, 3, 2, True),    # fewer than 4 units: the same
    (30, 8, 2, True),    # depth below 32: the same
    (64, 4, 2, True),    # LiteRT's optimized 4-bit kernel (symmetric, plain rounding)
    (96, 9, 5, False),
])
def test_fully_connected_int4(k, units, rows, asym):
    w = RNG.integers(-7, 8, (units, k)).astype(np.int8)
    x = activations_input((rows, k), seed=k)
    check(*fc_model(x, w, RNG.uniform(0.01, 0.1, units), asym=asym,
                    bias=RNG.standard_normal(units).astype(F32), wtype=TensorType.INT4))


# -- BATCH_MATMUL ------------------------------------------------------------------------------

@pytest.mark.parametrize("adj_x,adj_y", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("asym", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("batch,w_batch", [((), ()), ((3,), ()), ((3,), (3,)), ((1, 2), ())])
def test_batch_matmul(adj_x, adj_y, asym, per_channel, batch, w_batch):
    m_, k, n = 6, 19, 7
    a_shape = (*batch, k, m_) if adj_x else (*batch, m_, k)
    b_shape = (*w_batch, n, k) if adj_y else (*w_batch, k, n)
    a = activations_input(a_shape, seed=int(adj_x) + 2 * int(adj_y))
    b = RNG.integers(-127, 128, b_shape).astype(np.int8)
    scale = RNG.uniform(0.01, 0.05, n if per_channel else 1)
    axis = len(b_shape) - (2 if adj_y else 1)
    content, feeds = one_op(Op.BATCH_MATMUL, [a, Const(b, qparams(scale, axis))],
                            [((*batch, m_, n), F32)],
                            BatchMatMulOptions(adj_x=adj_x, adj_y=adj_y,
                                               asymmetric_quantize_inputs=asym))
    check(content, feeds)


def test_batch_matmul_two_batch_dims_is_mathematically_right():
    """With two or more batch dimensions of size > 1 LiteRT's hybrid BATCH_MATMUL indexes the
    per-row input scales by the *sum* of the batch indices (a LiteRT defect: rows of batch
    [1, 0] get the scale of batch [0, 1]); we use each row's own scale."""
    a = activations_input((2, 3, 6, 19), seed=3)
    b = RNG.integers(-127, 128, (19, 7)).astype(np.int8)
    content, feeds = one_op(Op.BATCH_MATMUL, [a, Const(b, qparams([0.02]))],
                            [((2, 3, 6, 7), F32)], BatchMatMulOptions())
    ours = _run(Interpreter(model_content=content), feeds)[0]
    exact = a @ (b.astype(np.float64) * F32(0.02))
    # One input quantization step per product at most.
    step = np.abs(a).max(axis=-1, keepdims=True) / 127 * 19 * 127 * 0.02
    assert np.all(np.abs(ours - exact) <= step)


# -- CONV_2D / DEPTHWISE_CONV_2D / TRANSPOSE_CONV -----------------------------------------------

@pytest.mark.parametrize("case", [
    dict(stride=1, pad=Padding.SAME, dil=1, k=3),
    dict(stride=2, pad=Padding.SAME, dil=1, k=3),
    dict(stride=2, pad=Padding.VALID, dil=1, k=5),
    dict(stride=1, pad=Padding.SAME, dil=2, k=3),
    dict(stride=1, pad=Padding.VALID, dil=1, k=1),
], ids=["s1same", "s2same", "s2valid_k5", "dilated", "pointwise"])
@pytest.mark.parametrize("per_channel", [True, False], ids=["per_channel", "equal_scales"])
def test_conv2d(case, per_channel):
    n, h, w_, c, oc, k = 2, 11, 9, 5, 6, case["k"]
    x = activations_input((n, h, w_, c), seed=case["k"])
    w = RNG.integers(-127, 128, (oc, k, k, c)).astype(np.int8)
    # Equal per-channel scales: LiteRT takes its per-tensor (symmetric) hybrid path.
    scale = RNG.uniform(0.01, 0.05, oc) if per_channel else np.full(oc, 0.02)
    opts = Conv2DOptions(padding=case["pad"], stride_w=case["stride"], stride_h=case["stride"],
                         dilation_w_factor=case["dil"], dilation_h_factor=case["dil"],
                         fused_activation_function=Act.RELU6)
    content, feeds = one_op(Op.CONV_2D, [x, Const(w, qparams(scale)),
                                         Const(RNG.standard_normal(oc).astype(F32))],
                            [(_conv_out(x.shape, oc, k, case), F32)], opts)
    check(content, feeds)


def _conv_out(xs, oc, k, case):
    from workbench.kernels._common import same_or_valid

    oh = same_or_valid(case["pad"], xs[1], k, case["stride"], case["dil"])[0]
    ow = same_or_valid(case["pad"], xs[2], k, case["stride"], case["dil"])[0]
    return (xs[0], oh, ow, oc)


@pytest.mark.parametrize("mult,c", [(1, 6), (2, 3), (1, 8)])
@pytest.mark.parametrize("case", [
    dict(stride=1, pad=Padding.SAME, dil=1, k=3),
    dict(stride=2, pad=Padding.VALID, dil=1, k=3),
    dict(stride=1, pad=Padding.SAME, dil=2, k=3),
], ids=["s1same", "s2valid", "dilated"])
def test_depthwise_conv2d(mult, c, case):
    n, h, w_, k = 2, 10, 9, case["k"]
    oc = c * mult
    x = activations_input((n, h, w_, c), seed=oc)
    w = RNG.integers(-127, 128, (1, k, k, oc)).astype(np.int8)
    opts = DepthwiseConv2DOptions(padding=case["pad"], stride_w=case["stride"],
                                  stride_h=case["stride"], depth_multiplier=mult,
                                  dilation_w_factor=case["dil"], dilation_h_factor=case["dil"],
                                  fused_activation_function=Act.RELU)
    content, feeds = one_op(Op.DEPTHWISE_CONV_2D,
                            [x, Const(w, qparams(RNG.uniform(0.01, 0.05, oc), axis=3)),
                             Const(RNG.standard_normal(oc).astype(F32))],
                            [(_conv_out(x.shape, oc, k, case), F32)], opts)
    check(content, feeds)


def test_depthwise_conv2d_per_tensor_scale_is_every_channels_scale():
    """TF's converter with ``_experimental_disable_per_channel`` writes a hybrid depthwise
    filter with one scale on axis 0. LiteRT 2.3 accepts it (one scale for dimension 0, of size
    1) but then reads a scale per output channel past the end of that one-element array:
    garbage from channel 1 on, different from run to run (measured: up to 4e36). We apply the
    one scale to every channel: the result LiteRT gives for the same scale repeated per
    channel, bit for bit."""
    c, k = 16, 3
    x = activations_input((1, 6, 7, c), seed=5)
    w = RNG.integers(-127, 128, (1, k, k, c)).astype(np.int8)
    b = Const(RNG.standard_normal(c).astype(F32))
    opts = DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1,
                                  depth_multiplier=1, dilation_w_factor=1, dilation_h_factor=1,
                                  fused_activation_function=Act.RELU6)
    out = [((1, 6, 7, c), F32)]
    per_tensor, feeds = one_op(Op.DEPTHWISE_CONV_2D, [x, Const(w, qparams(0.02, axis=0)), b],
                               out, opts)
    repeated, _ = one_op(Op.DEPTHWISE_CONV_2D, [x, Const(w, qparams([0.02] * c, axis=3)), b],
                         out, opts)
    (got,) = _run(Interpreter(model_content=per_tensor), feeds)
    _, (expected,) = both(repeated, feeds)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("k,stride,dil", [
    ((3, 3), 1, (1, 2**24)),
    ((3, 3), 2, (2**24, 2**24)),
    ((3, 3), 3, (2**15 - 1, 2**15 - 1)),  # the input cropped to the rows read
    ((4, 2), 1, (20000, 2**15 - 1)),  # no tap reaches the input: bias only
])
@pytest.mark.parametrize("kind", ["conv_per_channel", "conv_equal_scales", "depthwise",
                                  "depthwise_multiplier"])
def test_huge_dilation_bit_exact(kind, k, stride, dil):
    """Hybrid CONV_2D (both LiteRT paths) and DEPTHWISE_CONV_2D with dilations up to 2**24: each
    image is quantized over the whole input before the crop, taps reading padding alone
    dropped; bit-exact with LiteRT (at dilation INT16_MAX beyond its limit, same geometry
    asserted), the padded input at most three input sizes where TFLite's is >= 10**8."""
    from tests.kernels.test_nn_ops import huge_dilation_pair

    x = activations_input((2, 5, 7, 4), seed=11)
    rng = np.random.default_rng(12)
    conv = kind.startswith("conv")
    oc = 6 if conv else 4 * (2 if kind == "depthwise_multiplier" else 1)
    if conv:
        w = rng.integers(-127, 128, (oc, *k, 4)).astype(np.int8)
        scale = rng.uniform(0.01, 0.05, oc) if kind == "conv_per_channel" else np.full(oc, .02)
        wq = qparams(scale)
    else:
        w = rng.integers(-127, 128, (1, *k, oc)).astype(np.int8)
        wq = qparams(rng.uniform(0.01, 0.05, oc), axis=3)
    bias = Const(rng.standard_normal(oc).astype(F32))
    out = [((2, -(-5 // stride), -(-7 // stride), oc), F32)]

    def build(d):
        common = dict(padding=Padding.SAME, stride_w=stride, stride_h=stride,
                      dilation_h_factor=d[0], dilation_w_factor=d[1],
                      fused_activation_function=Act.RELU)
        if conv:
            return one_op(Op.CONV_2D, [x, Const(w, wq), bias], out, Conv2DOptions(**common))[0]
        opts = DepthwiseConv2DOptions(depth_multiplier=oc // 4, **common)
        return one_op(Op.DEPTHWISE_CONV_2D, [x, Const(w, wq), bias], out, opts)[0]

    name = "CONV_2D" if conv else "DEPTHWISE_CONV_2D"
    ours, oracle = huge_dilation_pair(build, name, x.shape, k, (stride, stride), dil)
    (got,) = _run(Interpreter(model_content=ours), [x])
    (exp,) = _run(litert_interpreter(oracle), [x])
    np.testing.assert_array_equal(got, exp)


def test_transpose_conv_within_float_rounding():
    x = activations_input((2, 5, 6, 4), seed=9)
    w = RNG.integers(-127, 128, (3, 3, 3, 4)).astype(np.int8)
    out = (2, 10, 12, 3)
    content, feeds = one_op(
        Op.TRANSPOSE_CONV,
        [Const(np.array(out, np.int32)), Const(w, qparams(RNG.uniform(0.01, 0.05, 3))), x,
         Const(RNG.standard_normal(3).astype(F32))],
        [(out, F32)], TransposeConvOptions(padding=Padding.SAME, stride_w=2, stride_h=2))
    from workbench.kernels import _hybrid
    # Until TRANSPOSE_CONV dispatches here, run the hybrid class on the node directly.
    ours = Interpreter(model_content=content)
    try:
        ours.allocate_tensors()
        got = _run(ours, feeds)[0]
    except wb.UnsupportedOpError:
        pytest.skip("TRANSPOSE_CONV does not dispatch to _hybrid.HybridTransposeConv yet")
    exp = _run(litert_interpreter(content), feeds)[0]
    assert hasattr(_hybrid, "HybridTransposeConv")
    assert np.max(np.abs(got - exp)) <= 1e-6 * np.ptp(exp)


# -- EMBEDDING_LOOKUP (hybrid) -------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["int8", "int8_per_row", "uint8", "int4"])
def test_embedding_lookup_hybrid(kind):
    rows, cols = 9, 6
    if kind == "uint8":
        table = RNG.integers(0, 256, (rows, cols)).astype(np.uint8)
    else:
        table = RNG.integers(-8 if kind == "int4" else -128, 8 if kind == "int4" else 128,
                             (rows, cols)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, rows) if kind == "int8_per_row" else [0.037]
    lookup = np.array([3, 0, 8, 3, 5], np.int32)
    content, feeds = one_op(
        Op.EMBEDDING_LOOKUP,
        [lookup, Const(table, qparams(scale), TensorType.INT4 if kind == "int4" else None)],
        [((5, cols), F32)])
    check(content, feeds)


# -- sparse weights and DENSIFY -------------------------------------------------------------------

def _sparse_dense_model(tf, mode):
    key = ("sparse", mode)
    if key not in _CACHE:
        import keras

        keras.utils.set_random_seed(1)
        inp = keras.Input((64,), batch_size=3)
        layer = keras.layers.Dense(32, activation="relu")
        model = keras.Model(inp, layer(inp))
        w, _ = layer.get_weights()
        wt = w.T.copy()  # TFLite layout [units, in]; prune 1x4 blocks along the input
        blocks = wt.reshape(32, 16, 4)
        blocks[np.random.default_rng(2).random((32, 16)) < 0.8] = 0
        layer.set_weights([wt.T, np.linspace(-1, 1, 32).astype(F32)])
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
        if mode == "dynamic":
            conv.optimizations.append(tf.lite.Optimize.DEFAULT)
        _CACHE[key] = conv.convert()
    return _CACHE[key]


@pytest.mark.parametrize("mode", ["float", "dynamic"])
def test_sparse_dense_layer_from_converter(mode):
    tf = pytest.importorskip("tensorflow")
    content = _sparse_dense_model(tf, mode)
    m = wb.load(content)
    names = [op.name for op in m.main.operators]
    sparse = [t for op in m.main.operators for t in op.inputs
              if t is not None and t.sparsity is not None]
    assert sparse, "the converter kept the weights dense"
    if mode == "float":  # 1x4 block-sparse float weights read by FULLY_CONNECTED itself
        assert names == ["FULLY_CONNECTED"] and sparse[0].sparsity.block_map == (1,)
        check(content, [activations_input((3, 64), seed=1)], exact=False, rel=1e-6)
    else:  # int8 sparse constant -> DENSIFY -> hybrid FULLY_CONNECTED
        assert names == ["DENSIFY", "FULLY_CONNECTED"]
        check(content, [activations_input((3, 64), seed=1)])


def _csr(dense: np.ndarray):
    """Row-major CSR of a 2-D array: (segments, indices, values)."""
    seg, idx, vals = [0], [], []
    for row in dense:
        nz = np.flatnonzero(row)
        idx.extend(nz.tolist())
        vals.extend(row[nz].tolist())
        seg.append(len(idx))
    return np.array(seg, np.int32), np.array(idx, np.int32), np.array(vals, dense.dtype)


def _sparse_const(sg, name, dense, fmt):
    from workbench.ir.graph import DimensionMetadata, Sparsity, Tensor
    from workbench.ir.ops import tensor_type_of

    rows, cols = dense.shape
    if fmt == "csr":  # dims (0 DENSE, 1 SPARSE_CSR)
        seg, idx, vals = _csr(dense)
        sp = Sparsity(traversal_order=(0, 1), block_map=(),
                      dim_metadata=[DimensionMetadata(format=0, dense_size=rows),
                                    DimensionMetadata(format=1, array_segments=("Int32Vector", seg),
                                                      array_indices=("Int32Vector", idx))])
    elif fmt.startswith("block"):  # (0 DENSE, 1 SPARSE_CSR over blocks, 2 DENSE block)
        bs = 4 if fmt == "block1x4" else 16
        blocks = dense.reshape(rows, cols // bs, bs)
        nzb = np.abs(blocks).sum(axis=2) != 0
        seg = np.concatenate([[0], np.cumsum(nzb.sum(axis=1))]).astype(np.int32)
        idx = np.concatenate([np.flatnonzero(r) for r in nzb]).astype(np.int32)
        vals = blocks[nzb].reshape(-1)
        sp = Sparsity(traversal_order=(0, 1, 2), block_map=(1,),
                      dim_metadata=[DimensionMetadata(format=0, dense_size=rows),
                                    DimensionMetadata(format=1, array_segments=("Int32Vector", seg),
                                                      array_indices=("Int32Vector", idx)),
                                    DimensionMetadata(format=0, dense_size=bs)])
    else:  # column-major traversal: (1 DENSE, 0 SPARSE_CSR)
        seg, idx, vals = _csr(dense.T.copy())
        sp = Sparsity(traversal_order=(1, 0), block_map=(),
                      dim_metadata=[DimensionMetadata(format=0, dense_size=cols),
                                    DimensionMetadata(format=1, array_segments=("Int32Vector", seg),
                                                      array_indices=("Int32Vector", idx))])
    t = Tensor(name=name, shape=dense.shape, dtype=tensor_type_of(dense.dtype),
               buffer=Buffer(np.ascontiguousarray(vals).view(np.uint8)), sparsity=sp)
    sg.add_tensor(t)
    return t


def _pruned(shape, dtype, block=1):
    rng = np.random.default_rng(7)
    if np.dtype(dtype) == np.int8:
        v = rng.integers(-127, 128, shape).astype(np.int8)
    else:
        v = rng.standard_normal(shape).astype(dtype)
    keep = rng.random((shape[0], shape[1] // block)) < 0.3
    keep[2] = False  # an empty row
    return (v.reshape(shape[0], -1, block) * keep[..., None]).reshape(shape).astype(dtype)


@pytest.mark.parametrize("fmt", ["csr", "block1x4", "column_major"])
def test_densify_formats(fmt):
    dense = _pruned((6, 12), np.float32, block=4 if fmt == "block1x4" else 1)
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    src = _sparse_const(sg, "w", dense, fmt)
    out = sg.new_tensor("dense", dense.shape, F32)
    sg.outputs.append(out)
    sg.add_operator(Operator(m.opcode(Op.DENSIFY), [src], [out]))
    np.testing.assert_array_equal(densify(np.frombuffer(src.buffer.data.tobytes(), F32),
                                          dense.shape, src.sparsity), dense)
    content = m.to_bytes()
    ours = _run(Interpreter(model_content=content), [])[0]
    np.testing.assert_array_equal(ours, dense)
    if fmt != "column_major":  # LiteRT's DENSIFY handles these traversal orders
        np.testing.assert_array_equal(ours, _run(litert_interpreter(content), [])[0])


@pytest.mark.parametrize("fmt,dtype,asym", [
    ("csr", np.float32, False), ("block1x4", np.float32, False),
    ("block1x16", np.int8, False), ("block1x16", np.int8, True), ("csr", np.int8, True)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_sparse_fully_connected_hand_built(fmt, dtype, asym, per_channel):
    units, k = 8, 32
    block = {"csr": 1, "block1x4": 4, "block1x16": 16}[fmt]
    dense = _pruned((units, k), dtype, block=block)
    scale = RNG.uniform(0.01, 0.05, units if per_channel else 1)

    def build(sparse_fmt):
        m = Model()
        sg = Subgraph(name="main")
        m.subgraphs.append(sg)
        if sparse_fmt is None:
            w = sg.new_tensor("w", dense.shape, dense.dtype, data=dense)
        else:
            w = _sparse_const(sg, "w", dense, sparse_fmt)
        if dtype == np.int8:
            w.quantization = qparams(scale)
        x = sg.new_tensor("x", (3, k), F32)
        b = sg.new_tensor("b", (units,), F32, data=np.linspace(-1, 1, units).astype(F32))
        out = sg.new_tensor("y", (3, units), F32)
        sg.inputs.append(x)
        sg.outputs.append(out)
        sg.add_operator(Operator(m.opcode(Op.FULLY_CONNECTED), [x, w, b], [out],
                                 options=FullyConnectedOptions(
                                     fused_activation_function=Act.RELU,
                                     asymmetric_quantize_inputs=asym)))
        return m.to_bytes()

    content = build(fmt)
    feeds = [activations_input((3, k), seed=2)]
    ours = _run(Interpreter(model_content=content), feeds)[0]
    if dtype == np.float32:
        expect = np.maximum(feeds[0] @ dense.T + np.linspace(-1, 1, units), 0)
        np.testing.assert_allclose(ours, expect, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ours, _run(litert_interpreter(content), feeds)[0],
                                   rtol=1e-5, atol=1e-5)
    elif fmt == "block1x16":  # the layout LiteRT's sparse hybrid kernel reads: bit-exact
        np.testing.assert_array_equal(ours, _run(litert_interpreter(content), feeds)[0])
    else:  # LiteRT misreads other int8 layouts; ours equals the dense hybrid product
        dense_ours = _run(Interpreter(model_content=build(None)), feeds)[0]
        np.testing.assert_array_equal(ours, dense_ours)


# -- the dynamic-range corpus, op by op -----------------------------------------------------------

def _corpus_names():
    from tests import corpus

    return [pytest.param(n, marks=[pytest.mark.slow] if s.big else [], id=n)
            for n, s in corpus.MODELS.items()]


@pytest.mark.parametrize("name", _corpus_names())
def test_corpus_hybrid_ops_in_isolation_bit_exact(name):
    """Every hybrid op of a dynamic-range corpus model, fed LiteRT's own inputs for it, gives
    LiteRT's output to the bit (end to end, float kernels upstream that are not bit-exact can
    flip a run-time quantization step, so whole-model runs are compared within tolerance)."""
    from tests import corpus
    from tests.litert_oracle import random_inputs

    path = corpus.model_path(name, "dynamic")
    if path is None:
        pytest.skip(corpus.unsupported_reason(name, "dynamic") or "not built")
    content = path.read_bytes()
    ref = litert_interpreter(content, preserve_all=True)
    ref.allocate_tensors()
    for d, x in zip(ref.get_input_details(), random_inputs(ref.get_input_details(), 0)):
        ref.set_tensor(d["index"], x)
    ref.invoke()
    index = {d["name"]: d["index"] for d in ref.get_tensor_details()}
    model = wb.load(content)
    checked = 0
    for op in model.main.operators:
        ins = [t for t in op.inputs if t is not None]
        if not any(t.type_name in ("INT8", "UINT8", "INT4") and t.is_constant for t in ins):
            continue
        if not any(t.type_name == "FLOAT32" and not t.is_constant for t in ins):
            continue
        m = Model()
        sg = Subgraph(name="main")
        m.subgraphs.append(sg)
        feeds = []
        for t in ins:
            if not t.is_constant:
                sg.inputs.append(t)
                feeds.append(ref.get_tensor(index[t.name]))
        sg.outputs.extend(op.outputs)
        sg.add_operator(Operator(m.opcode(op.code), list(op.inputs), list(op.outputs),
                                 options=op.options))
        it = Interpreter(m)
        for d, x in zip(it.get_input_details(), feeds):  # recorded shapes may be placeholders
            it.resize_tensor_input(d["index"], x.shape)
        got = _run(it, feeds)[0]
        exp = ref.get_tensor(index[op.outputs[0].name])
        if op.name == "TRANSPOSE_CONV":
            assert np.max(np.abs(got - exp)) <= 1e-6 * np.ptp(exp), op.outputs[0].name
        else:
            np.testing.assert_array_equal(got, exp, err_msg=f"{op.name} {op.outputs[0].name}")
        checked += 1
    if name != "embedding":
        assert checked > 0
