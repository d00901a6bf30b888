"""Neural-network kernels against LiteRT: convolutions (2-D, depthwise, 3-D, transposed),
fully connected, batch matmul, pooling, resizing and normalization.

Each case converts a one-op TensorFlow function (or edits a converted model's IR to reach options
the converter never emits: fused activations, runtime output shapes, other dtypes), checks the
op is really there, then compares our outputs with LiteRT's built-in kernels on seeded inputs:
float32 within 1e-4 of the output's range, integers bit-exact.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

import workbench as wb
from tests.kernels.test_elementwise import Const, one_op
from tests.kernels.test_elementwise import run_litert as _lrt
from tests.kernels.test_elementwise import run_ours as _ours
from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError, UnsupportedOpError
from workbench.ir.graph import QuantParams
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import Op, Padding, TensorType

_CACHE: dict = {}


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def convert(tf, key, fn, specs) -> bytes:
    """Convert ``fn`` with fixed input ``specs`` (shapes, dtype float32 unless given); cached."""
    if key not in _CACHE:
        sigs = [tf.TensorSpec(s[0], s[1]) if isinstance(s, tuple) and len(s) == 2 and
                isinstance(s[0], (list, tuple)) else tf.TensorSpec(s, tf.float32)
                for s in specs]
        cf = tf.function(fn, input_signature=sigs).get_concrete_function()
        _CACHE[key] = tf.lite.TFLiteConverter.from_concrete_functions([cf]).convert()
    return _CACHE[key]


def op_names(content: bytes) -> list[str]:
    return [op.name for op in wb.load(content).main.operators]


def edit(content: bytes, fn) -> bytes:
    m = wb.load(content)
    fn(m)
    return m.to_bytes()


def the_op(m, name):
    (op,) = [op for op in m.main.operators if op.name == name]
    return op


def set_options(m, name, **changes):
    op = the_op(m, name)
    op.options = dataclasses.replace(op.options, **changes)


def fuse_add(m, name, act=Act.NONE):
    """Fold the ADD of a bias that follows ``name`` into its optional bias input (index 2, or 3
    for transposed convs) and set the fused activation."""
    sg = m.main
    op = the_op(m, name)
    add = the_op(m, "ADD")
    bias = add.inputs[1]
    slot = 3 if name in ("TRANSPOSE_CONV", "CONV_3D_TRANSPOSE") else 2
    while len(op.inputs) <= slot:
        op.inputs.append(None)
    op.inputs[slot] = bias
    op.outputs = [add.outputs[0]]
    op.options = dataclasses.replace(op.options, fused_activation_function=act)
    sg.remove_operator(add)
    sg.remove_unused_tensors()


def make_input(m, tensor_name):
    """Turn a constant of the main subgraph into a model input (a runtime value)."""
    sg = m.main
    t = sg.tensor(tensor_name)
    t.buffer = None
    sg.inputs.append(t)


def seeded(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), shape,
                        endpoint=True).astype(dtype)


def assert_matches(got, expected, name=""):
    assert got.shape == expected.shape and got.dtype == expected.dtype, \
        (name, got.dtype, got.shape, expected.dtype, expected.shape)
    if expected.dtype.kind == "f":
        rng = float(np.max(expected) - np.min(expected)) if expected.size else 0.0
        tol = 1e-4 * max(rng, 1e-6) + 1e-6
        err = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0
        assert err <= tol, f"{name}: max error {err:g} > {tol:g}"
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)


def compare(content: bytes, inputs=None, seed=0) -> list[np.ndarray]:
    """Run LiteRT and ours on the same inputs (seeded by input dtype when not given)."""
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    details = ref.get_input_details()
    if inputs is None:
        inputs = [seeded(tuple(d["shape"]), d["dtype"], seed + k) for k, d in enumerate(details)]
    for d, x in zip(details, inputs):
        if tuple(d["shape"]) != tuple(np.shape(x)):
            ref.resize_tensor_input(d["index"], np.shape(x))
    ref.allocate_tensors()
    for d, x in zip(ref.get_input_details(), inputs):
        ref.set_tensor(d["index"], x)
    ref.invoke()
    expected = [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
    ours = wb.Interpreter(model_content=content)
    got = ours.run(list(inputs))
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_matches(g, e, f"output {k}")
    return got


def retype(m, dtype: int, tensors, scale=0.05, zero_point=0):
    """Give tensors another element type (and one shared quantization) in place."""
    for t in tensors:
        t.dtype = dtype
        if dtype in (TensorType.INT8, TensorType.UINT8, TensorType.INT16):
            t.quantization = QuantParams(scale=[scale], zero_point=[zero_point])


# -- CONV_2D -----------------------------------------------------------------------------------
CONV2D = [
    # (input NHWC, filter HWIO, strides, padding, dilations)
    ((1, 7, 9, 3), (3, 3, 3, 4), (1, 1), "SAME", (1, 1)),
    ((2, 7, 9, 3), (3, 2, 3, 5), (2, 2), "SAME", (1, 1)),
    ((1, 8, 11, 2), (3, 3, 2, 4), (2, 3), "VALID", (1, 1)),
    ((1, 9, 9, 2), (2, 2, 2, 3), (3, 3), "VALID", (1, 1)),   # strides > kernel
    ((1, 9, 9, 2), (2, 2, 2, 3), (3, 4), "SAME", (1, 1)),    # strides > kernel, SAME
    ((1, 10, 11, 3), (3, 3, 3, 2), (1, 1), "SAME", (2, 3)),  # dilation
    ((1, 10, 11, 3), (3, 2, 3, 2), (1, 1), "VALID", (2, 2)),
    ((1, 5, 5, 8), (1, 1, 8, 6), (1, 1), "VALID", (1, 1)),   # pointwise
    ((1, 3, 3, 2), (5, 5, 2, 2), (1, 1), "SAME", (1, 1)),    # kernel larger than input
]


@pytest.mark.parametrize("x_shape,w_shape,strides,padding,dil", CONV2D)
def test_conv_2d(tf, x_shape, w_shape, strides, padding, dil):
    w = tf.constant(seeded(w_shape, seed=1))
    b = tf.constant(seeded(w_shape[-1:], seed=2))
    content = convert(tf, ("conv2d", x_shape, w_shape, strides, padding, dil),
                      lambda x: tf.nn.relu(tf.nn.conv2d(x, w, strides, padding, dilations=dil) + b),
                      [x_shape])
    assert "CONV_2D" in op_names(content)
    compare(content)


@pytest.mark.parametrize("groups", [2, 3])
def test_conv_2d_groups(tf, groups):
    c = 6
    layer = tf.keras.layers.Conv2D(6, 3, padding="same", groups=groups, activation="relu6")
    layer.build((1, 5, 7, c))
    layer.set_weights([seeded(w.shape, seed=3) for w in layer.get_weights()])
    content = convert(tf, ("conv2d_groups", groups), lambda x: layer(x), [(1, 5, 7, c)])
    if "CONV_2D" not in op_names(content):
        pytest.skip(f"converter lowered grouped conv to {op_names(content)}")
    compare(content)


@pytest.mark.parametrize("act", [Act.RELU, Act.RELU6, Act.RELU_N1_TO_1, Act.TANH])
def test_conv_2d_fused_activation(tf, act):
    w = tf.constant(seeded((3, 3, 2, 3), seed=4))
    base = convert(tf, ("conv2d_plain",), lambda x: tf.nn.conv2d(x, w, 1, "SAME"),
                   [(1, 6, 5, 2)])
    content = edit(base, lambda m: set_options(m, "CONV_2D", fused_activation_function=act))
    compare(content)


# -- DEPTHWISE_CONV_2D -------------------------------------------------------------------------
DEPTHWISE = [
    # (input, kernel hw, multiplier, strides, padding, dilations)
    ((1, 7, 9, 3), (3, 3), 1, (1, 1), "SAME", (1, 1)),
    ((2, 8, 7, 4), (3, 3), 2, (2, 2), "SAME", (1, 1)),
    ((1, 9, 10, 2), (2, 3), 3, (3, 3), "VALID", (1, 1)),
    ((1, 11, 9, 3), (3, 3), 1, (1, 1), "SAME", (2, 2)),
    ((1, 11, 9, 2), (3, 2), 2, (1, 1), "VALID", (3, 2)),
]


@pytest.mark.parametrize("x_shape,k,mult,strides,padding,dil", DEPTHWISE)
def test_depthwise_conv_2d(tf, x_shape, k, mult, strides, padding, dil):
    w = tf.constant(seeded((*k, x_shape[-1], mult), seed=5))
    b = tf.constant(seeded((x_shape[-1] * mult,), seed=6))
    st = (1, *strides, 1)
    content = convert(tf, ("dw", x_shape, k, mult, strides, padding, dil),
                      lambda x: tf.nn.relu6(tf.nn.depthwise_conv2d(x, w, st, padding,
                                                                   dilations=dil) + b),
                      [x_shape])
    assert "DEPTHWISE_CONV_2D" in op_names(content)
    compare(content)


# -- FULLY_CONNECTED ---------------------------------------------------------------------------
FC = [
    # (input shape, units, bias, keep_num_dims)
    ((3, 7), 5, True, False),
    ((3, 7), 5, False, False),
    ((2, 3, 7), 4, True, True),
    ((2, 3, 4, 7), 6, True, True),   # rank-4 input kept
    ((2, 3, 4, 7), 6, False, False),  # rank-4 input flattened to rows
    ((1, 7), 1, True, False),
]


@pytest.mark.parametrize("x_shape,units,bias,keep", FC)
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU])
def test_fully_connected(tf, x_shape, units, bias, keep, act):
    k = x_shape[-1]
    layer = tf.keras.layers.Dense(units, use_bias=True)
    layer.build((2, k))
    layer.set_weights([seeded(w.shape, seed=7 + i) for i, w in enumerate(layer.get_weights())])
    content = convert(tf, ("fc", k, units), lambda x: layer(x), [(2, k)])
    assert op_names(content) == ["FULLY_CONNECTED"]

    def fix(m):  # the same weights on an input of any rank, with the options under test
        op = the_op(m, "FULLY_CONNECTED")
        op.inputs[0].shape = tuple(x_shape)
        op.inputs[0].shape_signature = None
        rows = int(np.prod(x_shape[:-1]))
        op.outputs[0].shape = (*x_shape[:-1], units) if keep else (rows, units)
        op.outputs[0].shape_signature = None
        op.options = dataclasses.replace(op.options, keep_num_dims=keep,
                                         fused_activation_function=act)
        if not bias:
            op.inputs[2] = None  # an omitted (-1) optional input
            m.main.remove_unused_tensors()

    compare(edit(content, fix))


# -- TRANSPOSE_CONV ----------------------------------------------------------------------------
TCONV = [
    # (input NHWC, kernel hw, out channels, strides, padding, output hw)
    ((1, 5, 6, 2), (3, 3), 4, (2, 2), "SAME", (9, 11)),
    ((1, 5, 6, 2), (3, 3), 4, (2, 2), "SAME", (10, 12)),
    ((2, 4, 3, 3), (2, 3), 2, (1, 1), "SAME", (4, 3)),
    ((1, 4, 5, 2), (3, 3), 3, (2, 2), "VALID", (9, 11)),
    ((1, 4, 5, 2), (3, 3), 3, (2, 2), "VALID", (10, 12)),  # output_padding: uncovered edge
    ((1, 3, 4, 2), (2, 2), 3, (3, 3), "VALID", (9, 12)),  # strides > kernel: gaps
    ((1, 3, 4, 1), (4, 5), 2, (1, 2), "VALID", (6, 12)),
]


def _tconv(tf, x_shape, k, oc, strides, padding, out_hw):
    w = tf.constant(seeded((*k, oc, x_shape[-1]), seed=8))
    b = tf.constant(seeded((oc,), seed=9))
    out = [x_shape[0], *out_hw, oc]
    return convert(tf, ("tconv", x_shape, k, oc, strides, padding, out_hw),
                   lambda x: tf.nn.relu(tf.nn.conv2d_transpose(x, w, out, strides, padding) + b),
                   [x_shape])


@pytest.mark.parametrize("x_shape,k,oc,strides,padding,out_hw", TCONV)
def test_transpose_conv(tf, x_shape, k, oc, strides, padding, out_hw):
    content = _tconv(tf, x_shape, k, oc, strides, padding, out_hw)
    op = the_op(wb.load(content), "TRANSPOSE_CONV")
    assert len(op.inputs) == 4 and op.inputs[3] is not None  # bias folded in
    compare(content)


@pytest.mark.parametrize("act", [Act.NONE, Act.RELU6, Act.TANH])
def test_transpose_conv_without_bias_and_activations(tf, act):
    content = _tconv(tf, (1, 5, 6, 2), (3, 3), 4, (2, 2), "SAME", (9, 11))

    def fix(m):
        op = the_op(m, "TRANSPOSE_CONV")
        op.inputs = op.inputs[:3]
        op.options = dataclasses.replace(op.options, fused_activation_function=act)
        m.main.remove_unused_tensors()

    compare(edit(content, fix))


def test_transpose_conv_runtime_output_shape(tf):
    content = _tconv(tf, (1, 5, 6, 2), (3, 3), 4, (2, 2), "SAME", (10, 11))

    def fix(m):
        make_input(m, the_op(m, "TRANSPOSE_CONV").inputs[0].name)

    content = edit(content, fix)
    x = seeded((1, 5, 6, 2))
    compare(content, [x, np.array([1, 10, 11, 4], np.int32)])
    ours = wb.Interpreter(model_content=content)
    with pytest.raises(ModelError, match="output_shape"):
        ours.run([x, np.array([2, 10, 11, 4], np.int32)])


# -- CONV_3D / CONV_3D_TRANSPOSE --------------------------------------------------------------
CONV3D = [
    # (input NDHWC, kernel dhw, out channels, strides, padding, dilations)
    ((1, 4, 5, 6, 2), (2, 3, 3), 4, (1, 1, 1), "SAME", (1, 1, 1)),
    ((2, 5, 6, 7, 3), (3, 3, 2), 2, (2, 2, 3), "SAME", (1, 1, 1)),
    ((1, 6, 7, 5, 2), (2, 2, 3), 3, (1, 2, 1), "VALID", (1, 1, 1)),
    ((1, 7, 7, 7, 1), (2, 2, 2), 2, (3, 3, 3), "VALID", (1, 1, 1)),  # strides > kernel
    ((1, 6, 7, 8, 2), (2, 3, 2), 3, (1, 1, 1), "SAME", (2, 1, 3)),
    ((1, 6, 7, 8, 2), (2, 3, 2), 3, (1, 1, 1), "VALID", (2, 2, 1)),  # dilations set in the IR
]


@pytest.mark.parametrize("x_shape,k,oc,strides,padding,dil", CONV3D)
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU6])
def test_conv_3d(tf, x_shape, k, oc, strides, padding, dil, act):
    w = tf.constant(seeded((*k, x_shape[-1], oc), seed=10))
    b = tf.constant(seeded((oc,), seed=11))
    # TF's own shape inference rejects dilated VALID conv3d: set those dilations in the IR.
    tf_dil = (1, 1, 1) if padding == "VALID" else dil
    content = convert(tf, ("conv3d", x_shape, k, oc, strides, padding, tf_dil),
                      lambda x: tf.nn.conv3d(x, w, (1, *strides, 1), padding,
                                             dilations=(1, *tf_dil, 1)) + b, [x_shape])
    assert "CONV_3D" in op_names(content)

    def fix(m):
        fuse_add(m, "CONV_3D", act)
        set_options(m, "CONV_3D", dilation_d_factor=dil[0], dilation_h_factor=dil[1],
                    dilation_w_factor=dil[2])

    compare(edit(content, fix))


def test_conv_3d_without_bias(tf):
    w = tf.constant(seeded((2, 2, 2, 3, 2), seed=12))
    content = convert(tf, ("conv3d_nobias",), lambda x: tf.nn.conv3d(x, w, (1,) * 5, "SAME"),
                      [(1, 3, 4, 5, 3)])
    assert op_names(content) == ["CONV_3D"]
    compare(content)


CONV3DT = [
    # (input NDHWC, kernel dhw, out channels, strides, padding, output dhw, dilations)
    ((1, 3, 4, 5, 2), (2, 3, 3), 4, (2, 2, 2), "SAME", (6, 8, 10), (1, 1, 1)),
    ((1, 3, 4, 5, 2), (2, 3, 3), 4, (2, 2, 2), "SAME", (5, 7, 9), (1, 1, 1)),
    ((2, 3, 3, 2, 3), (3, 2, 2), 2, (1, 2, 3), "VALID", (5, 6, 6), (1, 1, 1)),
    ((1, 2, 3, 2, 1), (2, 2, 2), 2, (3, 3, 3), "VALID", (6, 9, 6), (1, 1, 1)),  # gaps
    ((1, 4, 5, 6, 2), (2, 3, 2), 3, (1, 1, 1), "SAME", (4, 5, 6), (2, 1, 3)),
]


@pytest.mark.parametrize("x_shape,k,oc,strides,padding,out,dil", CONV3DT)
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU])
def test_conv_3d_transpose(tf, x_shape, k, oc, strides, padding, out, dil, act):
    w = tf.constant(seeded((*k, oc, x_shape[-1]), seed=13))
    b = tf.constant(seeded((oc,), seed=14))
    shape = [x_shape[0], *out, oc]
    content = convert(tf, ("conv3dT", x_shape, k, oc, strides, padding, out, dil),
                      lambda x: tf.nn.conv3d_transpose(x, w, shape, (1, *strides, 1), padding,
                                                       dilations=(1, *dil, 1)) + b, [x_shape])
    assert "CONV_3D_TRANSPOSE" in op_names(content)
    compare(edit(content, lambda m: fuse_add(m, "CONV_3D_TRANSPOSE", act)))


def test_conv_3d_transpose_runtime_output_shape(tf):
    w = tf.constant(seeded((2, 2, 2, 3, 2), seed=15))
    content = convert(tf, ("conv3dT_rt",),
                      lambda x: tf.nn.conv3d_transpose(x, w, [1, 4, 6, 5, 3], 2, "SAME"),
                      [(1, 2, 3, 3, 2)])
    content = edit(content, lambda m: make_input(
        m, the_op(m, "CONV_3D_TRANSPOSE").inputs[0].name))
    compare(content, [seeded((1, 2, 3, 3, 2)), np.array([1, 4, 6, 5, 3], np.int32)])
    with pytest.raises(ModelError, match="implies input size"):
        wb.Interpreter(model_content=content).run(
            [seeded((1, 2, 3, 3, 2)), np.array([1, 4, 9, 5, 3], np.int32)])


# -- convolutions with a huge dilation (found by a mutation fuzz) -----------------------------
# A dilation of ~2**24 with SAME padding gave TFLite's padding of ~(k-1) * dilation, and the
# kernels padded the input physically to that width (gigabytes, seconds per invoke). Taps that
# read padding for every output are now dropped at prepare (_common.reaching_taps). LiteRT's
# CONV_2D and DEPTHWISE_CONV_2D refuse dilations or paddings above INT16_MAX, yet accept a padded
# input of 65K x 65K; models beyond its limits (which we run, as pooling windows LiteRT refuses)
# are compared with LiteRT on the same model at dilation INT16_MAX, which prepares to the same
# geometry (asserted).
LITERT_MAX_DILATION = 2**15 - 1
HUGE = 2**24


def prepared_kernel(content: bytes, name: str):
    """Our prepared kernel of the one ``name`` node of a model (a hybrid conv's delegate)."""
    it = wb.Interpreter(model_content=content)
    it.allocate_tensors()
    plan = it._plans[0]
    (k,) = [k for node, k in zip(plan.nodes, plan.kernels) if node.op.name == name]
    return getattr(k.eval, "__self__", k)


def padded_extent(kernel, x_shape) -> int:
    """Positions (H * W, or D * H * W) of the padded input a conv kernel builds at eval."""
    pads = kernel.pads[1:-1] if len(kernel.pads) == len(x_shape) else kernel.pads  # np.pad's
    crop = getattr(kernel, "crop", None)
    total = 1
    for axis, (before, after) in enumerate(pads, start=1):
        size = x_shape[axis] if crop is None else len(range(x_shape[axis])[crop[axis]])
        total *= before + size + after
    return total


def tflite_padded_extent(x_shape, kernel, strides, dilations) -> int:
    """Positions of the input padded as TFLite's SAME padding says (what the kernels built)."""
    from workbench.kernels._common import same_or_valid

    total = 1
    for n, k, s, d in zip(x_shape[1:-1], kernel, strides, dilations):
        _, before, after = same_or_valid(Padding.SAME, n, k, s, d)
        total *= n + before + after
    return total


def huge_dilation_pair(build, name, x_shape, kernel, strides, dilations):
    """``(ours, oracle)`` models: ``build(dilations)`` and the same at dilations LiteRT accepts.
    Asserts that TFLite's padding is huge, the padded input ours builds small (at most three
    times the input per dimension), and both models prepare to the same geometry."""
    ours = build(dilations)
    assert tflite_padded_extent(x_shape, kernel, strides, dilations) >= 10**8
    k = prepared_kernel(ours, name)
    assert padded_extent(k, x_shape) <= 3 ** (len(x_shape) - 2) * int(np.prod(x_shape[1:-1]))
    lite = tuple(min(d, LITERT_MAX_DILATION) for d in dilations)
    if lite == tuple(dilations):
        return ours, ours
    oracle = build(lite)
    ko = prepared_kernel(oracle, name)
    for attr in ("pads", "crop", "taps", "kernel", "out"):
        assert repr(getattr(ko, attr, None)) == repr(getattr(k, attr, None)), attr
    if hasattr(k, "geom"):  # (kh, kw, sh, sw, dh, dw, oh, ow): all but the dilations
        assert ko.geom[:4] + ko.geom[6:] == k.geom[:4] + k.geom[6:]
    return ours, oracle


def test_reaching_taps_by_brute_force():
    """``reaching_taps`` keeps exactly the taps that read the input for some output (one run
    for every SAME/VALID geometry), and the cropped input, padded as it says, gives every
    output the value of TFLite's padded form."""
    from workbench.kernels._common import reaching_taps, same_or_valid

    rng = np.random.default_rng(0)
    seen = {"trimmed": 0, "none reaches": 0, "cropped": 0}
    for size, k, s, d, pad in itertools.product(range(1, 10), range(1, 6), range(1, 7),
                                                (1, 2, 3, 5, 8, 13), (Padding.SAME,
                                                                      Padding.VALID)):
        out, before, after = same_or_valid(pad, size, k, s, d)
        if out == 0:
            continue
        reach = [t for t in range(k) if any(0 <= o * s - before + t * d < size
                                            for o in range(out))]
        first, stop, lo, hi = reaching_taps(size, k, s, d, out, before)
        if reach:
            assert reach == list(range(reach[0], reach[-1] + 1))
            assert (first, stop) == (reach[0], reach[-1] + 1)
        else:
            assert (first, stop, lo) == (0, 1, size)
        seen["trimmed"] += (first, stop) != (0, k)
        seen["none reaches"] += not reach
        seen["cropped"] += lo > 0 or hi < size
        assert hi - lo == (out - 1) * s + (stop - first - 1) * d + 1
        x, w = rng.standard_normal(size), rng.standard_normal(k)
        xp = np.concatenate([np.zeros(before), x, np.zeros(after)])
        ref = [sum(xp[o * s + t * d] * w[t] for t in range(k)) for o in range(out)]
        kept = np.concatenate([np.zeros(max(0, -lo)), x[max(0, lo):max(0, min(size, hi))],
                               np.zeros(max(0, hi - size))])
        got = [sum(kept[o * s + t * d] * w[first + t] for t in range(stop - first))
               for o in range(out)]
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert min(seen.values()) > 100, seen


HUGE_DILATION = [
    # (filter hw, strides, dilations)
    ((3, 3), (1, 1), (1, HUGE)),  # only the centre column reads the input
    ((3, 3), (2, 2), (HUGE, HUGE)),
    ((3, 3), (3, 3), (LITERT_MAX_DILATION,) * 2),  # the input cropped to the rows read
    ((4, 2), (1, 1), (20000, LITERT_MAX_DILATION)),  # no tap reaches the input: bias only
    ((3, 3), (1, 1), (HUGE, 2)),  # every column tap kept
]


@pytest.mark.parametrize("k,strides,dil", HUGE_DILATION)
@pytest.mark.parametrize("case", ["conv", "conv_runtime_filter", "depthwise",
                                  "depthwise_multiplier"])
def test_conv_huge_dilation_pads_only_what_taps_read(case, k, strides, dil):
    """Float CONV_2D / DEPTHWISE_CONV_2D on a 1x5x7x3 input with dilations up to 2**24 (SAME):
    TFLite's padding is >= 10**8 positions, ours at most three input sizes; outputs as
    LiteRT's (at dilation INT16_MAX where LiteRT refuses more)."""
    from workbench.ir.ops import Conv2DOptions, DepthwiseConv2DOptions

    x_shape, oc = (1, 5, 7, 3), 4
    mult = 2 if case == "depthwise_multiplier" else 1
    out = (1, -(-5 // strides[0]), -(-7 // strides[1]))
    if case.startswith("conv"):
        w = seeded((oc, *k, 3), seed=1)
    else:
        oc = 3 * mult
        w = seeded((1, *k, oc), seed=1)
    b = Const(seeded((oc,), seed=2))

    def build(d):
        common = dict(padding=Padding.SAME, stride_h=strides[0], stride_w=strides[1],
                      dilation_h_factor=d[0], dilation_w_factor=d[1],
                      fused_activation_function=Act.RELU)
        if case.startswith("conv"):
            op, opts = Op.CONV_2D, Conv2DOptions(**common)
        else:
            op, opts = Op.DEPTHWISE_CONV_2D, DepthwiseConv2DOptions(depth_multiplier=mult,
                                                                     **common)
        filt = w if case == "conv_runtime_filter" else Const(w)
        return one_op(op, [seeded(x_shape), filt, b], [((*out, oc), np.float32)], opts)

    name = "CONV_2D" if case.startswith("conv") else "DEPTHWISE_CONV_2D"
    ours, oracle = huge_dilation_pair(build, name, x_shape, k, strides, dil)
    xs = [seeded(x_shape, seed=3)] + ([w] if case == "conv_runtime_filter" else [])
    (got,) = _ours(ours, xs)
    (exp,) = _lrt(oracle, xs)
    assert_matches(got, exp)
    if k == (4, 2):  # nothing but the bias, through the activation
        np.testing.assert_array_equal(got, np.broadcast_to(np.maximum(b.value, 0), got.shape))


def test_conv_3d_huge_dilation_pads_only_what_taps_read():
    """CONV_3D as CONV_2D above: LiteRT runs dilations up to INT16_MAX (the old padded input
    would have taken 160 GiB) and refuses 2**24."""
    from workbench.ir.ops import Conv3DOptions

    x_shape, k, oc = (1, 3, 4, 5, 2), (3, 3, 3), 3
    w = Const(seeded((*k, 2, oc), seed=1))
    b = Const(seeded((oc,), seed=2))
    for dil in [(1, LITERT_MAX_DILATION, LITERT_MAX_DILATION), (HUGE, 2, HUGE)]:
        def build(d):
            opts = Conv3DOptions(padding=Padding.SAME, stride_d=1, stride_h=2, stride_w=1,
                                 dilation_d_factor=d[0], dilation_h_factor=d[1],
                                 dilation_w_factor=d[2])
            return one_op(Op.CONV_3D, [seeded(x_shape), w, b], [((1, 3, 2, 5, oc),
                                                                 np.float32)], opts)

        ours, oracle = huge_dilation_pair(build, "CONV_3D", x_shape, k, (1, 2, 1), dil)
        xs = [seeded(x_shape, seed=3)]
        assert_matches(_ours(ours, xs)[0], _lrt(oracle, xs)[0], str(dil))


def _peak_bytes(fn):
    """``(fn(), peak traced bytes)`` of a second call: the first one, untraced, takes the
    process's one-time costs (kernel modules, caches), which would otherwise count when the
    test runs first in its process."""
    import tracemalloc

    fn()
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_conv_3d_transpose_huge_dilation_builds_no_huge_canvas():
    """CONV_3D_TRANSPOSE's padding comes from the output size; with dilations of INT16_MAX it
    is ~dilation, and the scatter canvas used to span it (240 GiB here). Contributions are now
    added into the output directly: a few KB of numpy memory; outputs as LiteRT's."""
    from workbench.ir.ops import Conv3DOptions

    x_shape, oc = (1, 3, 4, 5, 2), 3
    opts = Conv3DOptions(padding=Padding.SAME, stride_d=1, stride_h=1, stride_w=1,
                         dilation_d_factor=1, dilation_h_factor=LITERT_MAX_DILATION,
                         dilation_w_factor=LITERT_MAX_DILATION)
    content = one_op(Op.CONV_3D_TRANSPOSE,
                     [Const(np.array([1, 3, 4, 5, oc], np.int32)),
                      Const(seeded((3, 3, 3, oc, 2), seed=1)), seeded(x_shape),
                      Const(seeded((oc,), seed=2))], [((1, 3, 4, 5, oc), np.float32)], opts)
    xs = [seeded(x_shape, seed=3)]
    (got,), peak = _peak_bytes(lambda: _ours(content, xs))
    assert peak < 1 << 20
    assert_matches(got, _lrt(content, xs)[0])


def _transpose_conv_by_definition(x, w, out_hw, strides, pads):
    """Output ``o`` gets ``x[i] @ w[k]`` wherever ``o = i * stride + k - pad``
    (``w [OC, KH, KW, IC]``), in float64."""
    n, h, wd, _ = x.shape
    oc, kh, kw, _ = w.shape
    y = np.zeros((n, *out_hw, oc), np.float64)
    for i, j, a, c in itertools.product(range(h), range(wd), range(kh), range(kw)):
        oy, ox = i * strides[0] + a - pads[0], j * strides[1] + c - pads[1]
        if 0 <= oy < out_hw[0] and 0 <= ox < out_hw[1]:
            y[:, oy, ox] += x[:, i, j].astype(np.float64) @ w[:, a, c].T.astype(np.float64)
    return y


@pytest.mark.parametrize("stride", [LITERT_MAX_DILATION, HUGE])
def test_transpose_conv_output_far_from_the_input_builds_no_huge_canvas(stride):
    """TRANSPOSE_CONV with strides far beyond an output_shape that does not match the input
    (LiteRT refuses both at prepare; we run them): the scatter canvas used to span
    ``(H-1) * stride`` (288 GiB at INT16_MAX). By definition, in a few KB of numpy memory."""
    from workbench.ir.ops import TransposeConvOptions

    x_shape, oc, out_hw = (1, 5, 7, 2), 3, (5, 7)
    w = seeded((oc, 3, 3, 2), seed=1)
    opts = TransposeConvOptions(padding=Padding.SAME, stride_h=stride, stride_w=stride)
    content = one_op(Op.TRANSPOSE_CONV, [Const(np.array([1, *out_hw, oc], np.int32)), Const(w),
                                         seeded(x_shape)], [((1, *out_hw, oc), np.float32)],
                     opts)
    x = seeded(x_shape, seed=3)
    (got,), peak = _peak_bytes(lambda: _ours(content, [x]))
    assert peak < 1 << 20
    np.testing.assert_allclose(got, _transpose_conv_by_definition(x, w, out_hw, (stride,) * 2,
                                                                  (0, 0)), rtol=1e-6, atol=1e-6)


# -- BATCH_MATMUL ------------------------------------------------------------------------------
BMM = [
    # (lhs, rhs, adj_x, adj_y)
    ((3, 4), (4, 5), False, False),
    ((4, 3), (4, 5), True, False),
    ((3, 4), (5, 4), False, True),
    ((4, 3), (5, 4), True, True),
    ((2, 3, 4), (2, 4, 5), False, False),
    ((2, 1, 3, 4), (3, 4, 5), False, False),       # broadcast batch, different ranks
    ((2, 3, 4, 5), (3, 5, 4), True, True),
    ((1, 2, 1, 3, 4), (2, 2, 1, 4, 2), False, False),  # rank 5, both sides broadcast
    ((2, 3, 4), (4, 6), False, False),              # rank-2 rhs broadcast
    ((2, 0, 4), (2, 4, 3), False, False),           # empty M
]


@pytest.mark.parametrize("a_shape,b_shape,adj_x,adj_y", BMM)
def test_batch_matmul(tf, a_shape, b_shape, adj_x, adj_y):
    content = convert(tf, ("bmm", a_shape, b_shape, adj_x, adj_y),
                      lambda a, b: tf.linalg.matmul(a, b, adjoint_a=adj_x, adjoint_b=adj_y),
                      [a_shape, b_shape])
    if op_names(content) != ["BATCH_MATMUL"]:
        # The converter turns some rank-2 or empty products into other ops: set the operand
        # shapes and adj flags on a converted BATCH_MATMUL instead.
        content = convert(tf, ("bmm", (2, 3, 4), (2, 4, 5), False, False),
                          lambda a, b: tf.linalg.matmul(a, b), [(2, 3, 4), (2, 4, 5)])

        def fix(m):
            op = the_op(m, "BATCH_MATMUL")
            for t, shape in zip(op.inputs, (a_shape, b_shape)):
                t.shape, t.shape_signature = tuple(shape), None
            op.outputs[0].shape_signature = None
            op.options = dataclasses.replace(op.options, adj_x=adj_x, adj_y=adj_y)

        content = edit(content, fix)
    compare(content)


def test_batch_matmul_resized_inputs(tf):
    content = convert(tf, ("bmm", (2, 3, 4), (2, 4, 5), False, False),
                      lambda a, b: tf.linalg.matmul(a, b), [(2, 3, 4), (2, 4, 5)])
    compare(content, [seeded((5, 7, 4)), seeded((5, 4, 2), seed=1)])


def test_batch_matmul_rejects_mismatch(tf):
    content = convert(tf, ("bmm", (2, 3, 4), (2, 4, 5), False, False),
                      lambda a, b: tf.linalg.matmul(a, b), [(2, 3, 4), (2, 4, 5)])
    it = wb.Interpreter(model_content=content)
    with pytest.raises(ModelError, match="contraction"):
        it.run([seeded((2, 3, 4)), seeded((2, 3, 5))])


# -- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR -------------------------------------------------
SIZES = [
    # (input hw, output hw)
    ((4, 5), (7, 9)),
    ((4, 5), (8, 10)),
    ((7, 9), (3, 4)),
    ((5, 3), (5, 3)),
    ((3, 3), (1, 1)),
    ((1, 1), (4, 3)),
    ((6, 10), (13, 7)),
    ((3, 7), (10, 29)),
]
MODES = ["plain", "align_corners", "half_pixel_centers"]


def _resize(tf, method, in_hw, out_hw, mode, channels=3, batch=2):
    v1 = tf.compat.v1.image
    fn = v1.resize_bilinear if method == "bilinear" else v1.resize_nearest_neighbor
    kw = {"align_corners": mode == "align_corners",
          "half_pixel_centers": mode == "half_pixel_centers"}
    content = convert(tf, ("resize", method, in_hw, out_hw, mode, channels, batch),
                      lambda x: fn(x, list(out_hw), **kw), [(batch, *in_hw, channels)])
    name = "RESIZE_BILINEAR" if method == "bilinear" else "RESIZE_NEAREST_NEIGHBOR"
    assert op_names(content) == [name]
    return content


@pytest.mark.parametrize("in_hw,out_hw", SIZES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resize_float(tf, method, in_hw, out_hw, mode):
    compare(_resize(tf, method, in_hw, out_hw, mode))


# Sizes where 16.16 fixed point and float32 pick different source pixels (1-byte types).
NEAREST_TRICKY = [((3, 7), (10, 29)), ((7, 9), (3, 4)), ((6, 10), (13, 7)), ((5, 3), (9, 11))]
DTYPES = {"int8": TensorType.INT8, "uint8": TensorType.UINT8, "int16": TensorType.INT16,
          "int32": TensorType.INT32, "int64": TensorType.INT64, "bool": TensorType.BOOL}


def _retyped(content, dtype, name):
    def fix(m):
        op = the_op(m, name)
        retype(m, dtype, [op.inputs[0], op.outputs[0]])
    return edit(content, fix)


@pytest.mark.parametrize("in_hw,out_hw", NEAREST_TRICKY)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32"])
def test_resize_nearest_other_dtypes(tf, dtype, in_hw, out_hw, mode):
    content = _retyped(_resize(tf, "nearest", in_hw, out_hw, mode), DTYPES[dtype],
                       "RESIZE_NEAREST_NEIGHBOR")
    compare(content)


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_resize_nearest_moves_any_dtype(tf, dtype):
    """LiteRT rejects these types; we just move the elements (checked against int32)."""
    base = _resize(tf, "nearest", (3, 7), (10, 29), "plain")
    x = seeded((2, 3, 7, 3), np.int32)
    want = compare(_retyped(base, TensorType.INT32, "RESIZE_NEAREST_NEIGHBOR"), [x])[0]
    np_dtype = {"int64": np.int64, "bool": np.bool_}[dtype]
    (got,) = wb.Interpreter(model_content=_retyped(base, DTYPES[dtype],
                                                   "RESIZE_NEAREST_NEIGHBOR")).run(
        [x.astype(np_dtype)])
    np.testing.assert_array_equal(got, want.astype(np_dtype))


@pytest.mark.parametrize("in_hw,out_hw", SIZES + [((5, 7), (11, 13)), ((2, 2), (9, 9))])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16"])
def test_resize_bilinear_integer(tf, dtype, in_hw, out_hw, mode):
    content = _retyped(_resize(tf, "bilinear", in_hw, out_hw, mode), DTYPES[dtype],
                       "RESIZE_BILINEAR")
    np_dtype = np.dtype(dtype)
    info = np.iinfo(np_dtype)
    x = np.random.default_rng(3).integers(info.min, info.max, (2, *in_hw, 3),
                                          endpoint=True).astype(np_dtype)
    x.reshape(-1)[:4] = [info.min, info.max, info.min, info.max]
    compare(content, [x])


@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resize_runtime_size(tf, method):
    content = _resize(tf, method, (4, 5), (7, 9), "half_pixel_centers")
    name = "RESIZE_BILINEAR" if method == "bilinear" else "RESIZE_NEAREST_NEIGHBOR"
    content = edit(content, lambda m: make_input(m, the_op(m, name).inputs[1].name))
    x = seeded((2, 4, 5, 3))
    compare(content, [x, np.array([7, 9], np.int32)])
    compare(content, [seeded((1, 6, 4, 2)), np.array([7, 9], np.int32)])  # resized input


def test_resize_bilinear_int32_is_unsupported(tf):
    content = _retyped(_resize(tf, "bilinear", (4, 5), (7, 9), "plain"), TensorType.INT32,
                       "RESIZE_BILINEAR")
    with pytest.raises(UnsupportedOpError, match="RESIZE_BILINEAR"):
        wb.Interpreter(model_content=content).allocate_tensors()


# -- MAX/AVERAGE/L2 pooling --------------------------------------------------------------------
POOLS = [
    # (input, filter hw, strides, padding)
    ((1, 7, 9, 3), (3, 3), (2, 2), "SAME"),
    ((2, 7, 9, 3), (3, 2), (1, 1), "SAME"),
    ((1, 8, 11, 2), (2, 3), (2, 3), "VALID"),
    ((1, 9, 10, 2), (2, 2), (3, 3), "VALID"),  # strides > filter
    ((1, 9, 10, 2), (2, 2), (3, 4), "SAME"),
    ((1, 3, 4, 2), (5, 5), (1, 1), "SAME"),    # filter larger than input
]


def _pool(tf, kind, x_shape, k, strides, padding):
    fn = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
    return convert(tf, ("pool", kind, x_shape, k, strides, padding),
                   lambda x: fn(x, k, strides, padding), [x_shape])


@pytest.mark.parametrize("x_shape,k,strides,padding", POOLS)
@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU6])
def test_pool_2d(tf, kind, x_shape, k, strides, padding, act):
    content = _pool(tf, "max" if kind == "l2" else kind, x_shape, k, strides, padding)
    name = {"max": "MAX_POOL_2D", "avg": "AVERAGE_POOL_2D"}.get(kind, "MAX_POOL_2D")
    assert op_names(content) == [name]

    def fix(m):
        op = the_op(m, name)
        op.options = dataclasses.replace(op.options, fused_activation_function=act)
        if kind == "l2":  # the converter never emits L2_POOL_2D: swap the op code
            op.opcode = m.opcode(Op.L2_POOL_2D)
        m.operator_codes[:] = [oc for oc in m.operator_codes
                               if any(o.opcode is oc for _, _, o in m.iter_ops())]

    compare(edit(content, fix))


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_max_pool_nan_and_infinities_as_litert(tf, padding):
    """LiteRT's running maximum starts from the lowest float and takes greater values: a NaN
    never wins, and a window of only NaNs or -infs gives the lowest float."""
    content = _pool(tf, "max", (1, 6, 6, 2), (2, 2), (2, 2), padding)
    x = seeded((1, 6, 6, 2))
    x[0, 0, 0, 0] = np.nan                      # with finite neighbours
    x[0, 2:4, 2:4, 0] = np.nan                  # a whole window
    x[0, 4:6, 0:2, 1] = -np.inf                 # a whole window of -inf
    x[0, 4, 4, 0], x[0, 5, 5, 1] = np.inf, np.nan
    (got,) = compare(content, [x])
    assert not np.isnan(got).any() and got[0, 1, 1, 0] == np.finfo(np.float32).min


def _pool_by_definition(x, kind, filt, strides):
    """SAME pooling by TFLite's definition: each output over the in-bounds part of its window."""
    n, h, w, c = x.shape
    out = []
    for size, f, st in zip((h, w), filt, strides):
        o = -(-size // st)
        pad = max((o - 1) * st + f - size, 0) // 2
        out.append((o, [(max(0, i * st - pad), min(size, i * st - pad + f)) for i in range(o)]))
    y = np.zeros((n, out[0][0], out[1][0], c), np.float32)
    for i, (h0, h1) in enumerate(out[0][1]):
        for j, (w0, w1) in enumerate(out[1][1]):
            win = x[:, h0:h1, w0:w1, :].astype(np.float64)
            y[:, i, j] = {"max": lambda v: v.max(axis=(1, 2)),
                          "avg": lambda v: v.mean(axis=(1, 2)),
                          "l2": lambda v: np.sqrt((v * v).mean(axis=(1, 2)))}[kind](win)
    return y


@pytest.mark.parametrize("filt,strides", [((2**30, 7), (1, 2)), ((40, 3), (2, 1)),
                                          ((3, 2**31 - 1), (3, 1))])
@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
def test_pool_2d_window_far_beyond_the_input(tf, kind, filt, strides):
    """SAME pooling with a window far wider than the input (up to 2**31 - 1): each output pools
    the in-bounds part of its window, without building or looping over the padding. LiteRT
    agrees where it accepts the window (40 here); it refuses to prepare windows of 2**30, so
    those are checked against the definition. Padding past int32 is a ModelError."""
    x_shape = POOLS[-1][0]
    content = _pool(tf, "max" if kind == "l2" else kind, *POOLS[-1])
    name = {"max": "MAX_POOL_2D", "avg": "AVERAGE_POOL_2D"}.get(kind, "MAX_POOL_2D")

    def fix(m):
        op = the_op(m, name)
        op.options = dataclasses.replace(op.options, filter_height=filt[0], filter_width=filt[1],
                                         stride_h=strides[0], stride_w=strides[1])
        if kind == "l2":
            op.opcode = m.opcode(Op.L2_POOL_2D)
        m.operator_codes[:] = [oc for oc in m.operator_codes
                               if any(o.opcode is oc for _, _, o in m.iter_ops())]

    content = edit(content, fix)
    x = seeded(x_shape)
    if max(filt) == 2**31 - 1:  # padded beyond int32: refused, naming the op
        op = "L2_POOL_2D" if kind == "l2" else name
        with pytest.raises(ModelError, match=rf"operators\[0\] \({op}\): filter 2147483647 "):
            wb.Interpreter(model_content=content).allocate_tensors()
        return
    if max(filt) < 2**20:
        compare(content, [x])
    (got,) = wb.Interpreter(model_content=content).run([x])
    np.testing.assert_allclose(got, _pool_by_definition(x, kind, filt, strides), rtol=1e-6,
                               atol=1e-6)


# -- L2_NORMALIZATION / LOCAL_RESPONSE_NORMALIZATION -------------------------------------------
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 2, 3, 6), (2, 3, 1)])
def test_l2_normalization(tf, shape):
    content = convert(tf, ("l2n", shape), lambda x: tf.math.l2_normalize(x, axis=-1), [shape])
    assert op_names(content) == ["L2_NORMALIZATION"]
    x = seeded(shape)
    x.reshape(-1, shape[-1])[0] = 0  # a zero row: the epsilon floor
    if x.reshape(-1, shape[-1]).shape[0] > 1:
        x.reshape(-1, shape[-1])[1] = 1e-9  # below epsilon
    compare(content, [x])


@pytest.mark.parametrize("dtype,zx", [(TensorType.INT8, 0), (TensorType.INT8, -37),
                                      (TensorType.INT8, 127), (TensorType.UINT8, 128),
                                      (TensorType.UINT8, 3), (TensorType.UINT8, 255)])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 2, 3, 6), (2, 40)])
def test_l2_normalization_quantized_bit_exact(tf, shape, dtype, zx):
    """int8/uint8 L2_NORMALIZATION (output scale 1/128, zero point 0 or 128): LiteRT's fixed-point
    inverse square root per row; rows of zeros, single values and saturating values included."""
    content = convert(tf, ("l2n", shape), lambda x: tf.math.l2_normalize(x, axis=-1), [shape])
    zo = 0 if dtype == TensorType.INT8 else 128

    def fix(m):
        op = the_op(m, "L2_NORMALIZATION")
        retype(m, dtype, op.inputs, scale=0.07, zero_point=zx)
        retype(m, dtype, op.outputs, scale=1 / 128, zero_point=zo)

    content = edit(content, fix)
    np_dt = np.int8 if dtype == TensorType.INT8 else np.uint8
    info = np.iinfo(np_dt)
    x = np.random.default_rng(len(shape)).integers(info.min, info.max + 1, shape).astype(np_dt)
    rows = x.reshape(-1, shape[-1])
    rows[0] = zx  # a zero row (sum of squares 0)
    if rows.shape[0] > 1:
        rows[1] = zx
        rows[1, 0] = info.max if zx < info.max else info.min  # one value
    if rows.shape[0] > 2:
        rows[2] = info.min  # every value at an extreme
    compare(content, [x])


def test_l2_normalization_rejects_activation(tf):
    content = convert(tf, ("l2n", (3, 5)), lambda x: tf.math.l2_normalize(x, axis=-1), [(3, 5)])
    content = edit(content, lambda m: set_options(m, "L2_NORMALIZATION",
                                                  fused_activation_function=Act.RELU))
    with pytest.raises(ModelError, match="activation"):
        wb.Interpreter(model_content=content).allocate_tensors()


@pytest.mark.parametrize("radius,bias,alpha,beta", [
    (0, 1.0, 1.0, 0.5), (1, 1.0, 0.5, 0.75), (2, 1.5, 0.3, 0.7), (5, 2.0, 1e-2, 0.75),
    (20, 0.5, 0.1, 1.3)])  # radius beyond the channels
def test_local_response_normalization(tf, radius, bias, alpha, beta):
    content = convert(tf, ("lrn", radius, bias, alpha, beta),
                      lambda x: tf.nn.local_response_normalization(
                          x, depth_radius=radius, bias=bias, alpha=alpha, beta=beta),
                      [(2, 3, 4, 9)])
    assert op_names(content) == ["LOCAL_RESPONSE_NORMALIZATION"]
    compare(content)


# -- quantized paths are named, not silently wrong ---------------------------------------------
def test_int16_l2_normalization_is_unsupported_as_in_litert(tf):
    content = convert(tf, ("l2n", (3, 5)), lambda x: tf.math.l2_normalize(x, axis=-1), [(3, 5)])

    def fix(m):
        op = the_op(m, "L2_NORMALIZATION")
        retype(m, TensorType.INT16, [*op.inputs, *op.outputs], scale=1 / 128)

    content = edit(content, fix)
    with pytest.raises(RuntimeError):
        litert_interpreter(content).allocate_tensors()
    with pytest.raises(UnsupportedOpError, match="L2_NORMALIZATION.*int16"):
        wb.Interpreter(model_content=content).allocate_tensors()


# -- empty batches (LiteRT accepts a 0-sized batch for these) ----------------------------------
@pytest.mark.parametrize("case", ["conv2d", "depthwise", "conv3d", "fc", "bilinear", "nearest",
                                  "avg_pool", "l2_normalization", "lrn"])
def test_empty_batch(tf, case):
    if case == "conv2d":
        w = tf.constant(seeded((3, 3, 3, 4), seed=1))
        content = convert(tf, ("empty", case), lambda x: tf.nn.conv2d(x, w, 2, "SAME"),
                          [(1, 7, 9, 3)])
    elif case == "depthwise":
        w = tf.constant(seeded((3, 3, 3, 2), seed=1))
        content = convert(tf, ("empty", case),
                          lambda x: tf.nn.depthwise_conv2d(x, w, (1, 1, 1, 1), "SAME"),
                          [(1, 7, 9, 3)])
    elif case == "conv3d":
        w = tf.constant(seeded((2, 2, 2, 3, 2), seed=1))
        content = convert(tf, ("empty", case), lambda x: tf.nn.conv3d(x, w, (1,) * 5, "SAME"),
                          [(1, 3, 4, 5, 3)])
    elif case == "fc":
        w = tf.constant(seeded((4, 3), seed=1))
        content = convert(tf, ("empty", case), lambda x: tf.matmul(x, w), [(2, 4)])
    elif case in ("bilinear", "nearest"):
        content = _resize(tf, case, (4, 5), (7, 9), "plain")
    elif case == "avg_pool":
        content = _pool(tf, "avg", *POOLS[0])
    elif case == "l2_normalization":
        content = convert(tf, ("l2n", (3, 5)), lambda x: tf.math.l2_normalize(x, axis=-1),
                          [(3, 5)])
    else:
        content = convert(tf, ("lrn", 2, 1.5, 0.3, 0.7),
                          lambda x: tf.nn.local_response_normalization(
                              x, depth_radius=2, bias=1.5, alpha=0.3, beta=0.7),
                          [(2, 3, 4, 9)])
    shape = wb.load(content).main.inputs[0].shape
    (out,) = compare(content, [np.zeros((0, *shape[1:]), np.float32)])
    assert out.shape[0] == 0


# --- NON_MAX_SUPPRESSION_V4 / V5 -----------------------------------------------------------------
# One-op models (tests/kernels/test_elementwise.py's helper) fed boxes with many equal scores
# (the heap order decides), degenerate boxes (no area: IoU 0), and every threshold regime.


def _nms_inputs(seed: int, n: int, ties: bool, degenerate: bool):
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 10, (n, 2))
    hw = rng.uniform(0.5, 4, (n, 2))
    boxes = np.concatenate([c - hw / 2, c + hw / 2], axis=1)
    boxes[::3] = boxes[::3][:, [2, 3, 0, 1]]  # corners in either order
    if degenerate:
        boxes[1::5, 2] = boxes[1::5, 0]  # zero height: IoU 0 with everything
    scores = rng.uniform(0, 1, n)
    if ties:
        scores = np.round(scores * 4) / 4  # only five distinct scores
    return boxes.astype(np.float32), scores.astype(np.float32)


def _check_nms(content, xs):
    expected = _lrt(content, xs)
    got = _ours(content, xs)
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got[0], expected[0], err_msg="selected indices")
    np.testing.assert_array_equal(got[-1], expected[-1], err_msg="count")
    if len(got) == 3:
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-6, atol=1e-7,
                                   err_msg="selected scores")
    return expected


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("degenerate", [False, True])
@pytest.mark.parametrize("iou_thr,score_thr", [(0.5, 0.0), (0.3, 0.4), (0.0, -1.0), (1.0, 0.2),
                                               (0.7, 1.5)])
def test_nms_v4_matches_litert(ties, degenerate, iou_thr, score_thr):
    for seed, n, max_out in ((0, 12, 5), (1, 40, 40), (2, 64, 100)):
        boxes, scores = _nms_inputs(seed, n, ties, degenerate)
        ins = [boxes, scores, Const(np.array(max_out, np.int32)),
               Const(np.array(iou_thr, np.float32)), Const(np.array(score_thr, np.float32))]
        content = one_op(Op.NON_MAX_SUPPRESSION_V4, ins, [((max_out,), np.int32),
                                                           ((), np.int32)])
        _check_nms(content, [boxes, scores])


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.5, 2.0])
@pytest.mark.parametrize("ties", [False, True])
def test_nms_v5_soft_matches_litert(sigma, ties):
    for seed, n, max_out, iou_thr, score_thr in ((3, 20, 8, 0.6, 0.1), (4, 50, 50, 1.0, 0.05),
                                                 (5, 30, 10, 0.4, 0.3)):
        boxes, scores = _nms_inputs(seed, n, ties, degenerate=seed == 4)
        ins = [boxes, scores, Const(np.array(max_out, np.int32)),
               Const(np.array(iou_thr, np.float32)), Const(np.array(score_thr, np.float32)),
               Const(np.array(sigma, np.float32))]
        content = one_op(Op.NON_MAX_SUPPRESSION_V5, ins, [((max_out,), np.int32),
                                                           ((max_out,), np.float32),
                                                           ((), np.int32)])
        _check_nms(content, [boxes, scores])


def test_nms_selects_a_box_without_area_repeatedly_like_litert():
    """LiteRT puts a selected candidate back into its heap (TensorFlow does not); popped again,
    a box with no area has IoU 0 with itself and is selected again, until the output (as many
    slots as there were candidates) is full."""
    boxes = np.array([[0, 0, 0, 4], [0, 0, 2, 2], [5, 5, 7, 7]], np.float32)  # box 0: no height
    scores = np.array([0.9, 0.8, 0.1], np.float32)
    ins = [boxes, scores, Const(np.array(4, np.int32)), Const(np.float32(0.5)),
           Const(np.float32(0.0))]
    content = one_op(Op.NON_MAX_SUPPRESSION_V4, ins, [((4,), np.int32), ((), np.int32)])
    idx, n = _check_nms(content, [boxes, scores])
    assert idx.tolist() == [0, 0, 0, 0] and int(n) == 3


def test_nms_run_time_max_output_size_and_thresholds():
    boxes, scores = _nms_inputs(6, 25, ties=True, degenerate=True)
    content = one_op(Op.NON_MAX_SUPPRESSION_V5,
                     [boxes, scores, np.array(7, np.int32), np.array(0.5, np.float32),
                      np.array(0.1, np.float32), np.array(0.3, np.float32)],
                     [((1,), np.int32), ((1,), np.float32), ((), np.int32)])
    for m in (7, 30, 0):
        xs = [boxes, scores, np.array(m, np.int32), np.array(0.5, np.float32),
              np.array(0.1, np.float32), np.array(0.3, np.float32)]
        if m == 0:  # LiteRT's Python API cannot return empty tensors ("Invalid tensor size")
            got = _ours(content, xs)
            assert got[0].shape == got[1].shape == (0,) and int(got[2]) == 0
            continue
        got = _check_nms(content, xs)
        assert got[0].shape == (m,)


def test_nms_bad_inputs_are_typed_errors():
    from workbench.errors import InputError
    from workbench.interpreter import Interpreter

    boxes, scores = _nms_inputs(7, 6, False, False)
    outs = [((3,), np.int32), ((), np.int32)]
    with pytest.raises(ModelError, match=r"boxes must be \[num_boxes, 4\]"):
        Interpreter(model_content=one_op(
            Op.NON_MAX_SUPPRESSION_V4, [boxes[:, :3], scores, Const(np.array(3, np.int32)),
                                        Const(np.float32(0.5)), Const(np.float32(0.0))], outs)
        ).allocate_tensors()
    with pytest.raises(ModelError, match="negative"):
        Interpreter(model_content=one_op(
            Op.NON_MAX_SUPPRESSION_V4, [boxes, scores, Const(np.array(-1, np.int32)),
                                        Const(np.float32(0.5)), Const(np.float32(0.0))], outs)
        ).allocate_tensors()
    content = one_op(Op.NON_MAX_SUPPRESSION_V5,
                     [boxes, scores, Const(np.array(3, np.int32)), Const(np.float32(0.5)),
                      Const(np.float32(0.0)), np.array(-0.5, np.float32)],
                     [((3,), np.int32), ((3,), np.float32), ((), np.int32)])
    with pytest.raises(InputError, match="sigma"):
        _ours(content, [boxes, scores, np.array(-0.5, np.float32)])


def test_nms_converted(tf):
    def f(boxes, scores):
        a = tf.image.non_max_suppression(boxes, scores, 6, 0.45, 0.05)
        b, s = tf.image.non_max_suppression_with_scores(boxes, scores, 6, 0.45, 0.05,
                                                        soft_nms_sigma=0.4)
        return tf.gather(boxes, a), b, s

    content = convert(tf, "nms", f, [((30, 4), tf.float32), ((30,), tf.float32)])
    names = [op.name for op in wb.load(content).main.operators]
    assert "NON_MAX_SUPPRESSION_V4" in names and "NON_MAX_SUPPRESSION_V5" in names, names
    for seed in range(3):
        boxes, scores = _nms_inputs(10 + seed, 30, ties=seed == 1, degenerate=seed == 2)
        expected = _lrt(content, [boxes, scores])
        got = _ours(content, [boxes, scores])
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)
            assert g.dtype == e.dtype and g.shape == e.shape


# -- inputs with an empty spatial or channel dimension (found by a wider mutation fuzz) --------
def _with_input_dim(name, mode, dim, value=0) -> bytes:
    from tests import corpus

    path = corpus.model_path(name, mode)
    if path is None:
        pytest.skip(f"{name} {mode} not built")
    m = wb.load(path.read_bytes())
    t = m.main.inputs[0]
    shape = list(t.shape)
    shape[dim] = value
    t.shape = tuple(shape)
    return m.to_bytes()


def _run_zeros(it):
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()


@pytest.mark.parametrize("mode", ["float32", "int8", "dynamic"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_transpose_conv_refuses_an_empty_input_as_litert(mode, dim):
    content = _with_input_dim("conv2d_transpose", mode, dim)
    if mode != "dynamic":  # (LiteRT's hybrid path is checked the same way in its Prepare)
        with pytest.raises(RuntimeError, match="SizeOfDimension"):
            _run_zeros(litert_interpreter(content))
    with pytest.raises(ModelError, match="TRANSPOSE_CONV.*(empty height|input channels 0)"):
        _run_zeros(wb.Interpreter(model_content=content))


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic"])
def test_resize_and_conv_refuse_inputs_with_nothing_to_read(mode):
    """An input of zero width cannot be resized to a non-empty output (LiteRT would read outside
    it); a conv input of zero channels has no groups (LiteRT divides by zero)."""
    with pytest.raises(ModelError, match="RESIZE_BILINEAR.*no pixels to resize from"):
        _run_zeros(wb.Interpreter(model_content=_with_input_dim("bilinear_upsampling", mode, 2)))
    with pytest.raises(ModelError, match="CONV_2D.*input channels 0"):
        _run_zeros(wb.Interpreter(model_content=_with_input_dim("bilinear_upsampling", mode, 3)))


def test_pooling_prepare_does_not_grow_with_the_input():
    """Window counts are per row and column at prepare: a 1.9 G-element input no longer makes
    allocate build a padded array of ones that size (~10 s)."""
    import time

    content = _with_input_dim("dilated_conv_pools", "float32", 1, 8_388_622)
    it = wb.Interpreter(model_content=content)
    t = time.perf_counter()
    with pytest.raises(ModelError):  # a RESHAPE further on cannot take the new size
        it.allocate_tensors()
    assert time.perf_counter() - t < 5.0


@pytest.mark.parametrize("quant", [None, QuantParams(scale=[0.05], zero_point=[0])],
                         ids=["float32", "int8"])
def test_depthwise_filter_must_have_one_leading_dimension(quant):
    """A filter [N > 1, KH, KW, C] (a fuzzed tensor index) is refused, as LiteRT refuses it,
    not a raw reshape error."""
    from workbench.ir.ops import DepthwiseConv2DOptions

    dt = np.float32 if quant is None else np.int8
    x = np.zeros((1, 6, 6, 8), dt)
    content = one_op(Op.DEPTHWISE_CONV_2D, [x, Const(np.ones((4, 1, 1, 8), dt)),
                                            Const(np.zeros(8, np.float32 if quant is None
                                                           else np.int32))],
                     [((1, 6, 6, 8), dt)],
                     DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1,
                                            depth_multiplier=1), quant=quant)
    with pytest.raises(RuntimeError, match="SizeOfDimension"):
        litert_interpreter(content).allocate_tensors()
    with pytest.raises(ModelError, match="must be \\[1, height, width, channels\\]"):
        wb.Interpreter(model_content=content).allocate_tensors()


def test_prepare_builds_nothing_proportional_to_a_huge_output_width():
    """A conv / depthwise / average pool with an output 2**21 wide (a fuzzed input width of
    2**30 spent ~15 s tiling a 16 GB bias row at prepare): the bias row and the depthwise
    weight tiling are skipped past their limits (broadcast add, strided einsum instead), and
    the results are still the plain definition's."""
    from workbench.ir.ops import Conv2DOptions, DepthwiseConv2DOptions, Pool2DOptions

    width, c = 1 << 21, 8
    x = np.random.default_rng(0).standard_normal((1, 1, width, c)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((1, 1, 3, c)).astype(np.float32)
    b = np.arange(c, dtype=np.float32)
    same = dict(padding=Padding.SAME, stride_w=1, stride_h=1)
    dw = one_op(Op.DEPTHWISE_CONV_2D, [x, Const(w), Const(b)], [((1, 1, width, c), np.float32)],
                DepthwiseConv2DOptions(depth_multiplier=1, **same))
    k = prepared_kernel(dw, "DEPTHWISE_CONV_2D")
    assert k.strategy == "einsum" and k.tiled is None and k.bias_row is None
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    expected = sum(xp[:, :, j:j + width] * w[0, 0, j] for j in range(3)) + b
    np.testing.assert_allclose(_ours(dw, [x])[0], expected, rtol=1e-5, atol=1e-5)
    cw = np.random.default_rng(2).standard_normal((c, 1, 1, c)).astype(np.float32)
    conv = one_op(Op.CONV_2D, [x, Const(cw), Const(b)], [((1, 1, width, c), np.float32)],
                  Conv2DOptions(**same))
    assert prepared_kernel(conv, "CONV_2D").bias_row is None
    np.testing.assert_allclose(_ours(conv, [x])[0], x @ cw[:, 0, 0, :].T + b, rtol=1e-4,
                               atol=1e-4)
    pool = one_op(Op.AVERAGE_POOL_2D, [x], [((1, 1, width, c), np.float32)],
                  Pool2DOptions(filter_width=3, filter_height=1, **same))
    got = _ours(pool, [x])[0]
    counts = np.full(width, 3.0)
    counts[[0, -1]] = 2
    np.testing.assert_allclose(got, (xp[:, :, :-2] + xp[:, :, 1:-1] + xp[:, :, 2:])
                               / counts[None, None, :, None], rtol=1e-5, atol=1e-5)
