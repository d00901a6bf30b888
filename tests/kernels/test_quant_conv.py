"""Quantized convolution family, QUANTIZE and DEQUANTIZE against LiteRT: every integer tensor
bit-identical (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``, all tensors preserved).

Models come from TF's converter in full-integer modes (int8 with int8 or float I/O, 16x8), then
IR edits reach what the converter never emits: uint8 (legacy) tensors with weight zero points,
zero points at the ends of the range, each fused activation, int32 biases on 16x8, runtime
biases. Inputs cover the whole integer range so saturation is exercised.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError
from workbench.ir.graph import Buffer, QuantParams
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import TensorType
from workbench.quantize import fixed_point as fp

_CACHE: dict = {}


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def quantized(tf, key, fn, shapes, mode="int8", per_channel=True, scale=2.0):
    """Convert ``fn`` (float32 inputs of ``shapes``) in a full-integer ``mode``: ``int8`` (int8
    I/O), ``int8_float_io`` or ``int16x8``; cached per key."""
    key = (key, mode, per_channel)
    if key not in _CACHE:
        sigs = [tf.TensorSpec(s, tf.float32) for s in shapes]
        cf = tf.function(fn, input_signature=sigs).get_concrete_function()
        conv = tf.lite.TFLiteConverter.from_concrete_functions([cf])
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        rng = np.random.default_rng(0)

        def gen():
            for _ in range(16):
                yield [(rng.standard_normal(s) * scale).astype(np.float32) for s in shapes]

        conv.representative_dataset = gen
        if mode == "int16x8":
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if mode == "int8":
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        if not per_channel:
            conv._experimental_disable_per_channel = True
        _CACHE[key] = conv.convert()
    return _CACHE[key]


def edit(content: bytes, fn) -> bytes:
    m = wb.load(content)
    fn(m)
    return m.to_bytes()


def ops_of(content: bytes) -> list[str]:
    return [op.name for op in wb.load(content).main.operators]


def the_op(m, name):
    (op,) = [op for op in m.main.operators if op.name == name]
    return op


def full_range_inputs(details, seed):
    """Integer inputs over the whole range (saturation), floats normal * 3."""
    rng = np.random.default_rng(seed)
    out = []
    for d in details:
        dt = np.dtype(d["dtype"])
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            x = rng.integers(info.min, info.max, d["shape"], endpoint=True).astype(dt)
            flat = x.reshape(-1)
            if flat.size >= 4:  # make sure both ends are present
                flat[0], flat[1] = info.min, info.max
            out.append(x)
        else:
            out.append((rng.standard_normal(d["shape"]) * 3).astype(dt))
    return out


def compare_all(content: bytes, seeds=(0, 1), inputs=None) -> int:
    """Every tensor LiteRT preserves vs ours: integers bit-exact, floats within 1e-5 of range.
    Returns the number of integer tensors compared."""
    n_int = 0
    for seed in seeds:
        ref = litert_interpreter(content, preserve_all=True)
        ref.allocate_tensors()
        ours = wb.Interpreter(model_content=content)
        ours.allocate_tensors()
        xs = inputs if inputs is not None else full_range_inputs(ref.get_input_details(), seed)
        for d, x in zip(ref.get_input_details(), xs):
            ref.set_tensor(d["index"], x)
        for d, x in zip(ours.get_input_details(), xs):
            ours.set_tensor(d["index"], x)
        ref.invoke()
        ours.invoke()
        names = {d["name"]: d["index"] for d in ref.get_tensor_details()}
        for d in ours.get_tensor_details():
            if d["name"] not in names:
                continue
            got, exp = ours.get_tensor(d["index"]), ref.get_tensor(names[d["name"]])
            assert got.shape == exp.shape and got.dtype == exp.dtype, \
                (d["name"], got.dtype, got.shape, exp.dtype, exp.shape)
            if exp.dtype.kind in "iu":
                if not np.array_equal(got, exp):
                    diff = np.argwhere(got != exp)
                    i = tuple(diff[0])
                    raise AssertionError(
                        f"{d['name']}: {len(diff)}/{exp.size} differ, first at {i}: "
                        f"ours {got[i]} LiteRT {exp[i]}")
                n_int += 1
            elif exp.dtype.kind == "f":
                rng = float(np.ptp(exp)) if exp.size else 0.0
                err = float(np.max(np.abs(got.astype(np.float64) - exp), initial=0))
                assert err <= 1e-5 * max(rng, 1e-6) + 1e-6, (d["name"], err)
        if inputs is not None:
            break
    return n_int


# -- IR edits ----------------------------------------------------------------------------------
def requantize_tensor(t, scale=None, zero_point=None):
    """Give a non-constant tensor new per-tensor quantization."""
    qp = t.quantization
    s = qp.scale if scale is None else np.asarray([scale], np.float32)
    z = qp.zero_point if zero_point is None else np.asarray([zero_point])
    t.quantization = QuantParams(scale=s, zero_point=z)


def set_activation(m, name, act):
    op = the_op(m, name)
    op.options = dataclasses.replace(op.options, fused_activation_function=act)


def to_uint8(m, weight_zero_point=None):
    """Turn an int8 (per-tensor) model into a legacy uint8 one: activations and weights get
    zero point + 128 with the same real values; optionally move the weights to another zero
    point (re-deriving their raw values from the int8 ones)."""
    for t in m.main.tensors:
        if t.dtype != TensorType.INT8:
            continue
        qp = t.quantization
        if qp is None or qp.scale.size != 1:
            raise ValueError(f"{t.name}: uint8 needs per-tensor quantization")
        zp = int(qp.zero_point[0]) + 128
        data = t.data
        if data is not None and weight_zero_point is not None:
            zp = weight_zero_point
            raw = data.astype(np.int64) - int(qp.zero_point[0]) + zp
            t.buffer = Buffer(np.clip(raw, 0, 255).astype(np.uint8).tobytes())
        elif data is not None:
            t.buffer = Buffer((data.astype(np.int16) + 128).astype(np.uint8).tobytes())
        t.dtype = TensorType.UINT8
        t.quantization = QuantParams(scale=qp.scale, zero_point=[zp])


# -- fixed point: the in-place requantizer equals the reference helpers -------------------------
@pytest.mark.parametrize("fast", [False, True])
def test_requantizer_matches_fixed_point_helpers(fast):
    """Both implementations (int64, and float64 when a bound allows) equal the step-by-step
    reference helpers, per channel and per tensor, with offsets, zero points and clamps."""
    from workbench.kernels._qconv import GEMMLOWP, INT64, SINGLE, UPWARD, Requantizer

    rng = np.random.default_rng(0)
    small = 2**20 if fast else 2**31  # the float path needs |acc * q| < 2**52
    acc = np.concatenate([rng.integers(-small, small, 20000),
                          rng.integers(-5000, 5000, 20000),
                          np.arange(-1024, 1024)]).reshape(-1, 8)
    offset = rng.integers(-300, 300, 8)
    a = acc + offset
    if not fast:
        a = np.clip(a, -2**31, 2**31 - 1)
        acc = a - offset
    mults = np.array([2.0**-9, 0.5, 1 / 3, 0.0123, 2.5e-5, 0.75, 1.5, 3.0])
    if fast:
        mults[6:] = [0.9, 0.001]  # no left shift with large accumulators
    qm, sh = fp.quantize_multipliers(mults)
    upward = np.array([True, False] * 4)
    refs = {GEMMLOWP: fp.multiply_by_quantized_multiplier,
            UPWARD: fp.multiply_by_quantized_multiplier_upward,
            INT64: fp.multiply_by_quantized_multiplier_int64,
            SINGLE: fp.multiply_by_quantized_multiplier_single}
    bound = int(np.abs(acc).max()) if fast else None
    for rounding, ref in refs.items():
        r = Requantizer(mults, rounding, 0, -2**31, 2**31 - 1, np.int64, offset=offset,
                        bound=bound)
        assert r.fast == fast or rounding == SINGLE
        expected = ref(a, qm, sh)
        np.testing.assert_array_equal(r(acc.copy()), expected, err_msg=rounding)
        for c in range(8):  # the per-tensor (scalar) form too, with a zero point and clamp
            r1 = Requantizer([mults[c]], rounding, -3, -128, 127, np.int8,
                             offset=[offset[c]], bound=bound)
            np.testing.assert_array_equal(
                r1(acc[:, c].copy()), np.clip(expected[:, c] - 3, -128, 127).astype(np.int8))
    # GEMMLOWP with some channels rounding upward (LiteRT's channel-block output stages)
    r = Requantizer(mults, GEMMLOWP, 5, -2**31, 2**31 - 1, np.int64, upward=upward,
                    offset=offset, bound=bound)
    up, away = refs[UPWARD](a, qm, sh), refs[GEMMLOWP](a, qm, sh)
    np.testing.assert_array_equal(r(acc.copy()), np.where(upward, up, away) + 5)
    # float32 input (an exact GEMM's output) takes the same path
    if fast:
        small_acc = acc[20000 // 8:].astype(np.float32)
        r = Requantizer(mults, UPWARD, 0, -2**31, 2**31 - 1, np.int64, offset=offset,
                        bound=bound)
        np.testing.assert_array_equal(r(small_acc), up[20000 // 8:])


def test_upward_differs_only_on_negative_ties():
    q, s = fp.quantize_multiplier(0.125)  # 2**30 * 2**-33: an exact high multiply, then >> 2
    y = np.array([-2, -6, 2, 6, -3, -5, 3, 5])  # y / 4: -.5 -1.5 .5 1.5 -.75 -1.25 .75 1.25
    np.testing.assert_array_equal(fp.multiply_by_quantized_multiplier_upward(2 * y, q, s),
                                  [0, -1, 1, 2, -1, -1, 1, 1])
    np.testing.assert_array_equal(fp.multiply_by_quantized_multiplier(2 * y, q, s),
                                  [-1, -2, 1, 2, -1, -1, 1, 1])


# -- CONV_2D -----------------------------------------------------------------------------------
CONV2D = [
    # (input NHWC, filter HWIO, strides, padding, dilations)
    ((1, 9, 11, 5), (3, 3, 5, 8), (1, 1), "SAME", (1, 1)),
    ((2, 8, 7, 3), (3, 2, 3, 6), (2, 2), "SAME", (1, 1)),
    ((1, 10, 11, 4), (3, 3, 4, 5), (2, 3), "VALID", (1, 1)),
    ((1, 11, 10, 3), (3, 3, 3, 4), (1, 1), "SAME", (2, 3)),   # dilation
    ((1, 6, 7, 16), (1, 1, 16, 12), (1, 1), "VALID", (1, 1)),  # pointwise
    ((1, 4, 4, 2), (5, 5, 2, 3), (1, 1), "SAME", (1, 1)),      # kernel larger than input
]


def _conv_fn(tf, w_shape, strides, padding, dil, seed=1):
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.standard_normal(w_shape).astype(np.float32))
    b = tf.constant(rng.standard_normal(w_shape[-1:]).astype(np.float32))
    return lambda x: tf.nn.conv2d(x, w, strides, padding, dilations=dil) + b


@pytest.mark.parametrize("mode", ["int8", "int8_float_io", "int16x8"])
@pytest.mark.parametrize("x_shape,w_shape,strides,padding,dil", CONV2D)
def test_conv_2d(tf, mode, x_shape, w_shape, strides, padding, dil):
    content = quantized(tf, ("conv", x_shape, w_shape, strides, padding, dil),
                        _conv_fn(tf, w_shape, strides, padding, dil), [x_shape], mode)
    assert "CONV_2D" in ops_of(content)
    assert compare_all(content) >= 1


# -- QUANTIZE / DEQUANTIZE (hand-built one-op models) ------------------------------------------
def _one_op(op, x_shape, x_dtype, x_q, y_dtype, y_q) -> bytes:
    from workbench.ir.graph import Model, Operator, Subgraph

    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    x = sg.new_tensor("x", x_shape, x_dtype, quantization=x_q)
    y = sg.new_tensor("y", x_shape, y_dtype, quantization=y_q)
    sg.inputs.append(x)
    sg.outputs.append(y)
    sg.add_operator(Operator(m.opcode(op), [x], [y]))
    return m.to_bytes()


def _ties(scale, n, lo, hi, seed):
    """float32 values whose float32 product with 1/scale is exactly k + 0.5 while the double
    quotient is not a tie: they tell the two rounding paths of LiteRT's QUANTIZE apart."""
    inv = np.float32(1) / np.float32(scale)
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        k = rng.integers(lo, hi) + 0.5
        x = np.float32(k / np.float64(inv))
        for c in (x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))):
            if np.float32(c * inv) == np.float32(k) and np.float64(c) / np.float64(
                    np.float32(scale)) != k:
                out.append(c)
                break
    return np.array(out, np.float32)


def _run_one(content, x):
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    exp = ref.get_tensor(ref.get_output_details()[0]["index"])
    (got,) = wb.Interpreter(model_content=content).run([x])
    return got, exp


@pytest.mark.parametrize("dtype,zp", [(np.int8, 3), (np.int8, -128), (np.int8, 127),
                                      (np.uint8, 0), (np.uint8, 128), (np.uint8, 255),
                                      (np.int16, 0)])
@pytest.mark.parametrize("n", [5, 8, 77, 1003])
def test_quantize_float(dtype, zp, n):
    scale = np.float32(0.0123456)
    content = _one_op(wb.Op.QUANTIZE, (n,), np.float32, None, dtype,
                      QuantParams(scale=[scale], zero_point=[zp]))
    info = np.iinfo(dtype)
    span = (info.max - info.min) // 2
    for seed in range(3):
        x = _ties(scale, n, -span, span, seed)  # ties exercise both rounding paths
        rng = np.random.default_rng(seed)
        mask = rng.random(n) < 0.3  # and ordinary values, some saturating
        x[mask] = (rng.standard_normal(int(mask.sum())) * span * scale * 1.5).astype(np.float32)
        x[: min(n, 5)] = np.array([np.nan, 1e10, -1e12, np.inf, 0.0], np.float32)[: min(n, 5)]
        got, exp = _run_one(content, x)
        assert got.dtype == exp.dtype
        np.testing.assert_array_equal(got, exp)


REQUANT = [(np.int8, np.int8), (np.int8, np.uint8), (np.uint8, np.int8), (np.uint8, np.uint8),
           (np.int16, np.int16), (np.int16, np.int8)]


@pytest.mark.parametrize("src,dst", REQUANT)
@pytest.mark.parametrize("ratio", [0.37, 1.0, 2.9, 2.0**-3, 1 / 3])
def test_quantize_requantize(src, dst, ratio):
    rng = np.random.default_rng(int(ratio * 1000))
    s_in = np.float32(0.02)
    zx = 0 if src == np.int16 else int(rng.integers(np.iinfo(src).min, np.iinfo(src).max))
    zy = 0 if dst == np.int16 else int(rng.integers(np.iinfo(dst).min, np.iinfo(dst).max))
    content = _one_op(wb.Op.QUANTIZE, (3, 257), src, QuantParams(scale=[s_in], zero_point=[zx]),
                      dst, QuantParams(scale=[s_in / np.float32(ratio)], zero_point=[zy]))
    info = np.iinfo(src)
    x = rng.integers(info.min, info.max, (3, 257), endpoint=True).astype(src)
    x.reshape(-1)[:2] = info.min, info.max
    got, exp = _run_one(content, x)
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("dtype,zp", [(np.int8, -5), (np.int8, 127), (np.uint8, 131),
                                      (np.uint8, 0), (np.int16, 0), (np.int16, 9)])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 3, 41)])
def test_dequantize(dtype, zp, per_channel, shape):
    if per_channel and dtype == np.int16:
        pytest.skip("LiteRT: 'Type 7 not supported for per-channel' (ours refuses it too)")
    if per_channel:
        qp = QuantParams(scale=[0.013, 0.2, 1e-3], zero_point=[zp] * 3, quantized_dimension=1)
    else:
        qp = QuantParams(scale=[0.0173], zero_point=[zp])
    content = _one_op(wb.Op.DEQUANTIZE, shape, dtype, qp, np.float32, None)
    if dtype == np.int16 and zp:  # LiteRT requires zero point 0 for int16; so do we
        with pytest.raises(RuntimeError, match="zero_point"):
            litert_interpreter(content).allocate_tensors()
        with pytest.raises(ModelError, match="zero point 0"):
            wb.Interpreter(model_content=content).allocate_tensors()
        return
    info = np.iinfo(dtype)
    x = np.random.default_rng(0).integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    got, exp = _run_one(content, x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, exp)


# -- CONV_2D edits: activations, zero points, per-tensor, uint8, int32 bias, groups ------------
def _conv_base(tf, mode="int8", per_channel=True):
    shape, w_shape = (1, 9, 11, 5), (3, 3, 5, 8)
    return quantized(tf, ("conv_base",), _conv_fn(tf, w_shape, (1, 1), "SAME", (1, 1)),
                     [shape], mode, per_channel=per_channel)


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("act", [Act.RELU, Act.RELU6, Act.RELU_N1_TO_1, Act.TANH])
def test_conv_2d_fused_activation(tf, mode, act):
    def fix(m):
        set_activation(m, "CONV_2D", act)
        out = the_op(m, "CONV_2D").outputs[0]
        # a scale whose clamp bounds fall inside the range, so the clamp bites
        requantize_tensor(out, scale=0.031)
    compare_all(edit(_conv_base(tf, mode), fix))


@pytest.mark.parametrize("zx,zo", [(-128, 127), (127, -128), (0, 0), (-128, -128)])
def test_conv_2d_zero_points(tf, zx, zo):
    def fix(m):
        op = the_op(m, "CONV_2D")
        requantize_tensor(op.inputs[0], zero_point=zx)
        requantize_tensor(op.outputs[0], zero_point=zo)
    compare_all(edit(_conv_base(tf), fix))


def test_conv_2d_per_tensor_weights(tf):
    content = _conv_base(tf, per_channel=False)
    assert wb.load(content).main.operators[0].inputs[1].quantization.scale.size == 1
    compare_all(content)


@pytest.mark.parametrize("wzp", [None, 0, 97, 255])
def test_conv_2d_uint8(tf, wzp):
    content = edit(_conv_base(tf, per_channel=False), lambda m: to_uint8(m, wzp))
    assert wb.load(content).main.operators[0].inputs[0].dtype == TensorType.UINT8
    compare_all(content)


def _bias_to_int32(m, name):
    op = the_op(m, name)
    b = op.inputs[2 if name != "TRANSPOSE_CONV" else 3]
    assert b.dtype == TensorType.INT64
    b.buffer = Buffer(b.data.astype(np.int32).tobytes())
    b.dtype = TensorType.INT32
    if hasattr(op.options, "quantized_bias_type"):
        op.options = dataclasses.replace(op.options, quantized_bias_type=TensorType.INT32)


def test_conv_2d_int16_with_int32_bias(tf):
    compare_all(edit(_conv_base(tf, "int16x8"), lambda m: _bias_to_int32(m, "CONV_2D")))


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_conv_2d_groups(tf, mode):
    layer = tf.keras.layers.Conv2D(6, 3, padding="same", groups=3)
    layer.build((1, 5, 7, 6))
    rng = np.random.default_rng(3)
    layer.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    content = quantized(tf, ("conv_groups",), lambda x: layer(x), [(1, 5, 7, 6)], mode)
    if "CONV_2D" not in ops_of(content):
        pytest.skip(f"converter lowered grouped conv to {ops_of(content)}")
    compare_all(content)


def test_conv_2d_multiplier_above_one(tf):
    """A tiny output scale makes s_x * s_w / s_o > 1: the left-shift path."""
    def fix(m):
        requantize_tensor(the_op(m, "CONV_2D").outputs[0], scale=1e-4)
    compare_all(edit(_conv_base(tf), fix))


# -- DEPTHWISE_CONV_2D -------------------------------------------------------------------------
DEPTHWISE = [
    # (input, kernel hw, multiplier, strides, padding, dilations)
    ((1, 9, 11, 6), (3, 3), 1, (1, 1), "SAME", (1, 1)),
    ((2, 8, 7, 4), (3, 3), 2, (2, 2), "SAME", (1, 1)),
    ((1, 9, 10, 3), (2, 3), 3, (3, 3), "VALID", (1, 1)),
    ((1, 11, 9, 5), (3, 3), 1, (1, 1), "SAME", (2, 2)),
    ((1, 11, 9, 2), (3, 2), 2, (1, 1), "VALID", (3, 2)),
    ((1, 12, 12, 16), (5, 5), 1, (2, 2), "SAME", (1, 1)),
]


def _dw_fn(tf, x_shape, k, mult, strides, padding, dil, seed=5):
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.standard_normal((*k, x_shape[-1], mult)).astype(np.float32))
    b = tf.constant(rng.standard_normal((x_shape[-1] * mult,)).astype(np.float32))
    st = (1, *strides, 1)
    return lambda x: tf.nn.depthwise_conv2d(x, w, st, padding, dilations=dil) + b


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("x_shape,k,mult,strides,padding,dil", DEPTHWISE)
def test_depthwise_conv_2d(tf, mode, x_shape, k, mult, strides, padding, dil):
    content = quantized(tf, ("dw", x_shape, k, mult, strides, padding, dil),
                        _dw_fn(tf, x_shape, k, mult, strides, padding, dil), [x_shape], mode)
    assert "DEPTHWISE_CONV_2D" in ops_of(content)
    assert compare_all(content) >= 1


def _dw_base(tf, mode="int8", per_channel=True):
    args = ((1, 9, 11, 6), (3, 3), 2, (1, 1), "SAME", (1, 1))
    return quantized(tf, ("dw_base",), _dw_fn(tf, *args), [args[0]], mode,
                     per_channel=per_channel)


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("act", [Act.RELU, Act.RELU6, Act.RELU_N1_TO_1])
def test_depthwise_fused_activation(tf, mode, act):
    def fix(m):
        set_activation(m, "DEPTHWISE_CONV_2D", act)
        requantize_tensor(the_op(m, "DEPTHWISE_CONV_2D").outputs[0], scale=0.029)
    compare_all(edit(_dw_base(tf, mode), fix))


@pytest.mark.parametrize("zx,zo", [(-128, 127), (127, -128), (0, 0)])
def test_depthwise_zero_points(tf, zx, zo):
    def fix(m):
        op = the_op(m, "DEPTHWISE_CONV_2D")
        requantize_tensor(op.inputs[0], zero_point=zx)
        requantize_tensor(op.outputs[0], zero_point=zo)
    compare_all(edit(_dw_base(tf), fix))


@pytest.mark.parametrize("wzp", [None, 0, 201])
def test_depthwise_uint8(tf, wzp):
    content = edit(_dw_base(tf, per_channel=False), lambda m: to_uint8(m, wzp))
    compare_all(content)


def test_depthwise_per_tensor_weights(tf):
    compare_all(_dw_base(tf, per_channel=False))


# -- huge dilations: taps reading padding alone dropped (tests/kernels/test_nn_ops.py) ---------
def _dilated(content, name, dil, stride) -> bytes:
    """``content`` with ``name``'s dilations and strides set (SAME: outputs shrink)."""
    def fix(m):
        op = the_op(m, name)
        op.options = dataclasses.replace(op.options, dilation_h_factor=dil[0],
                                         dilation_w_factor=dil[1], stride_h=stride,
                                         stride_w=stride)
        old = op.outputs[0].shape
        n, h, w, c = old
        for t in m.main.tensors:  # the output and its DEQUANTIZE
            if t.buffer is None and t.shape == old:
                t.shape = (n, -(-h // stride), -(-w // stride), c)
                t.shape_signature = None
    return edit(content, fix)


def _zero_points(m, name, zx):
    requantize_tensor(the_op(m, name).inputs[0], zero_point=zx)


@pytest.mark.parametrize("k,stride,dil", [
    ((3, 3), 1, (1, 2**24)),
    ((3, 3), 2, (2**24, 2**24)),
    ((3, 3), 3, (2**15 - 1, 2**15 - 1)),  # the input cropped to the rows read
    ((4, 2), 1, (20000, 2**15 - 1)),  # no tap reaches the input: bias only
])
@pytest.mark.parametrize("mode", ["int8", "int16x8", "uint8"])
@pytest.mark.parametrize("name", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_huge_dilation_bit_exact(tf, name, mode, k, stride, dil):
    """Integer CONV_2D / DEPTHWISE_CONV_2D (int8 per-channel with input zero point 77, 16x8,
    uint8 with filter zero point 97) with dilations up to 2**24: the padding holds the zero
    point, so the dropped taps' weights leave the zero-point correction too; bit-exact with
    LiteRT (at dilation INT16_MAX beyond its limit, same geometry asserted), the padded input
    at most three input sizes where TFLite's padding is >= 10**8 positions."""
    from tests.kernels.test_nn_ops import huge_dilation_pair

    conv = name == "CONV_2D"
    x_shape = (1, 9, 11, 5) if conv else (1, 9, 11, 6)
    fn = (_conv_fn(tf, (*k, 5, 8), (1, 1), "SAME", (1, 1)) if conv else
          _dw_fn(tf, x_shape, k, 2, (1, 1), "SAME", (1, 1)))
    qmode = "int16x8" if mode == "int16x8" else "int8"
    base = quantized(tf, ("huge_dilation", name, k), fn, [x_shape], qmode,
                     per_channel=mode != "uint8")
    if mode == "uint8":
        base = edit(base, lambda m: to_uint8(m, 97))
    elif mode == "int8":
        base = edit(base, lambda m: _zero_points(m, name, 77))
    ours, oracle = huge_dilation_pair(lambda d: _dilated(base, name, d, stride), name, x_shape,
                                      k, (stride, stride), dil)
    for seed in (0, 1):
        xs = full_range_inputs(litert_interpreter(oracle).get_input_details(), seed)
        ref = litert_interpreter(oracle)
        ref.allocate_tensors()
        ref.set_tensor(ref.get_input_details()[0]["index"], xs[0])
        ref.invoke()
        exp = ref.get_tensor(ref.get_output_details()[0]["index"])
        (got,) = wb.Interpreter(model_content=ours).run(xs)
        assert got.dtype == exp.dtype and got.shape == exp.shape
        np.testing.assert_array_equal(got, exp)
    if oracle is ours:  # every tensor LiteRT keeps
        assert compare_all(ours) >= 1


# -- FULLY_CONNECTED ---------------------------------------------------------------------------
def _dense(tf, k, units, seed=7, bias=True):
    layer = tf.keras.layers.Dense(units, use_bias=bias)
    layer.build((2, k))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    return layer


def _fc_model(tf, mode, k=37, units=13, rows=3, per_channel=True, bias=True):
    layer = _dense(tf, k, units, bias=bias)
    content = quantized(tf, ("fc", k, units, rows, bias), lambda x: layer(x), [(rows, k)],
                        mode, per_channel=per_channel)
    assert "FULLY_CONNECTED" in ops_of(content)
    return content


@pytest.mark.parametrize("mode", ["int8", "int8_float_io", "int16x8"])
@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_fully_connected(tf, mode, per_channel, bias):
    compare_all(_fc_model(tf, mode, per_channel=per_channel, bias=bias))


def test_fully_connected_int16_per_tensor_multiplier(tf):
    """16x8 FULLY_CONNECTED with per-tensor weights takes its multiplier as the double product
    ``s_x * s_w / s_o`` (like per-channel weights), not the float32 product ``s_x * s_w`` that
    the 8-bit per-tensor paths use. Output scales are chosen where the two differ after
    quantization to a 31-bit multiplier, so a wrong choice shows up as one-step errors."""
    from workbench.kernels import _qconv as q

    content = _fc_model(tf, "int16x8", k=61, units=29, rows=64, per_channel=False)
    fc = the_op(wb.load(content), "FULLY_CONNECTED")
    sx = fc.inputs[0].quantization.scale[0]
    sw = fc.inputs[1].quantization.scale[:1]
    so0 = float(fc.outputs[0].quantization.scale[0])
    differing = []
    for f in np.linspace(0.9, 1.1, 41):
        so = np.float32(so0 * f)
        legacy = fp.quantize_multipliers(np.array([q.legacy_multiplier(sx, sw[0], so)]))[0]
        double = fp.quantize_multipliers(q.per_channel_multipliers(sx, sw, so))[0]
        if legacy[0] != double[0]:
            differing.append(so)
    assert len(differing) >= 3
    for so in differing[:3]:
        def rescale(m, so=so):
            requantize_tensor(the_op(m, "FULLY_CONNECTED").outputs[0], scale=so)

        compare_all(edit(content, rescale), seeds=range(6))


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("keep", [True, False])
def test_fully_connected_keep_num_dims(tf, mode, keep):
    layer = _dense(tf, 9, 5)
    content = quantized(tf, ("fc3d",), lambda x: layer(x), [(2, 3, 9)], mode)

    def fix(m):  # the converter emits keep_num_dims=True; the flattened form by IR edit
        op = the_op(m, "FULLY_CONNECTED")
        op.options = dataclasses.replace(op.options, keep_num_dims=keep)
        op.outputs[0].shape = (2, 3, 5) if keep else (6, 5)
        op.outputs[0].shape_signature = None
    got = compare_all(edit(content, fix))
    assert got >= 1


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("act", [Act.RELU, Act.RELU6, Act.RELU_N1_TO_1])
def test_fully_connected_fused_activation(tf, mode, act):
    def fix(m):
        set_activation(m, "FULLY_CONNECTED", act)
        requantize_tensor(the_op(m, "FULLY_CONNECTED").outputs[0], scale=0.033)
    compare_all(edit(_fc_model(tf, mode), fix))


@pytest.mark.parametrize("zx,zo", [(-128, 127), (127, -128), (0, 0)])
@pytest.mark.parametrize("per_channel", [True, False])
def test_fully_connected_zero_points(tf, zx, zo, per_channel):
    def fix(m):
        op = the_op(m, "FULLY_CONNECTED")
        requantize_tensor(op.inputs[0], zero_point=zx)
        requantize_tensor(op.outputs[0], zero_point=zo)
    compare_all(edit(_fc_model(tf, "int8", per_channel=per_channel), fix))


@pytest.mark.parametrize("wzp", [None, 0, 77, 255])
def test_fully_connected_uint8(tf, wzp):
    compare_all(edit(_fc_model(tf, "int8", per_channel=False), lambda m: to_uint8(m, wzp)))


def test_fully_connected_uint8_int16_output(tf):
    def fix(m):
        to_uint8(m, 120)
        out = the_op(m, "FULLY_CONNECTED").outputs[0]
        out.dtype = TensorType.INT16
        out.quantization = QuantParams(scale=[out.quantization.scale[0] / 256], zero_point=[0])
        m.main.outputs = [out]
    content = edit(_fc_model(tf, "int8", per_channel=False), fix)
    compare_all(content)


def test_fully_connected_int16_with_int32_bias(tf):
    compare_all(edit(_fc_model(tf, "int16x8"), lambda m: _bias_to_int32(m, "FULLY_CONNECTED")))


def test_fully_connected_big_k(tf):
    """K = 2000: the float32 GEMM bound fails, float64 runs; still bit-exact."""
    compare_all(_fc_model(tf, "int8", k=2000, units=7, rows=2), seeds=(0,))


# -- TRANSPOSE_CONV ----------------------------------------------------------------------------
TCONV = [
    # (input NHWC, kernel hw, out channels, strides, padding)
    ((1, 5, 6, 4), (3, 3), 6, (2, 2), "SAME"),
    ((2, 4, 5, 3), (2, 3), 9, (1, 2), "VALID"),
    ((1, 4, 4, 8), (4, 4), 16, (2, 2), "SAME"),
    ((1, 3, 5, 2), (3, 2), 3, (3, 1), "VALID"),
]


def _tconv_fn(tf, x_shape, k, oc, strides, padding, seed=11):
    rng = np.random.default_rng(seed)
    w = tf.constant(rng.standard_normal((*k, oc, x_shape[-1])).astype(np.float32))
    b = tf.constant(rng.standard_normal((oc,)).astype(np.float32))
    n, h, wd, _ = x_shape
    if padding == "SAME":
        oh, ow = h * strides[0], wd * strides[1]
    else:
        oh, ow = (h - 1) * strides[0] + k[0], (wd - 1) * strides[1] + k[1]
    return lambda x: tf.nn.conv2d_transpose(x, w, (n, oh, ow, oc), strides, padding) + b


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("x_shape,k,oc,strides,padding", TCONV)
def test_transpose_conv(tf, mode, x_shape, k, oc, strides, padding):
    content = quantized(tf, ("tconv", x_shape, k, oc, strides, padding),
                        _tconv_fn(tf, x_shape, k, oc, strides, padding), [x_shape], mode)
    assert "TRANSPOSE_CONV" in ops_of(content)
    compare_all(content)


def _tconv_base(tf, mode="int8", per_channel=True):
    args = ((1, 5, 6, 4), (3, 3), 12, (2, 2), "SAME")
    return quantized(tf, ("tconv_base",), _tconv_fn(tf, *args), [args[0]], mode,
                     per_channel=per_channel)


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("act", [Act.RELU, Act.RELU6])
def test_transpose_conv_fused_activation(tf, mode, act):
    def fix(m):
        set_activation(m, "TRANSPOSE_CONV", act)
        requantize_tensor(the_op(m, "TRANSPOSE_CONV").outputs[0], scale=0.035)
    compare_all(edit(_tconv_base(tf, mode), fix))


@pytest.mark.parametrize("zx,zo", [(-128, 127), (127, -128)])
def test_transpose_conv_zero_points(tf, zx, zo):
    def fix(m):
        op = the_op(m, "TRANSPOSE_CONV")
        requantize_tensor(op.inputs[2], zero_point=zx)
        requantize_tensor(op.outputs[0], zero_point=zo)
    compare_all(edit(_tconv_base(tf), fix))


@pytest.mark.parametrize("wzp", [None, 140])
@pytest.mark.parametrize("x_shape,k,oc,strides,padding", TCONV)
def test_transpose_conv_uint8(tf, wzp, x_shape, k, oc, strides, padding):
    content = quantized(tf, ("tconv", x_shape, k, oc, strides, padding),
                        _tconv_fn(tf, x_shape, k, oc, strides, padding), [x_shape], "int8",
                        per_channel=False)
    compare_all(edit(content, lambda m: to_uint8(m, wzp)))


def test_transpose_conv_int16_with_int32_bias(tf):
    compare_all(edit(_tconv_base(tf, "int16x8"), lambda m: _bias_to_int32(m, "TRANSPOSE_CONV")))


def test_transpose_conv_huge_stride_builds_no_huge_canvas(tf):
    """int8 TRANSPOSE_CONV with a stride of 2**24 (an output_shape LiteRT would refuse for this
    input): the scatter canvas used to span ``(H-1) * stride`` (petabytes); only input pixel
    (0, 0) lands inside the 10x12 output, so LiteRT's output for that pixel alone at stride 12
    (a shape it accepts) is ours, bit for bit, in a few KB of numpy memory."""
    import tracemalloc

    def fix(m, stride, x_shape=None):
        op = the_op(m, "TRANSPOSE_CONV")
        op.options = dataclasses.replace(op.options, stride_h=stride, stride_w=stride)
        if x_shape is not None:
            op.inputs[2].shape = x_shape
            op.inputs[2].shape_signature = None

    base = _tconv_base(tf)
    ours = edit(base, lambda m: fix(m, 2**24))
    oracle = edit(base, lambda m: fix(m, 12, (1, 1, 1, 4)))
    (x,) = full_range_inputs(litert_interpreter(base).get_input_details(), 0)
    it = wb.Interpreter(model_content=ours)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    tracemalloc.start()
    try:
        it.invoke()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    got = it.get_tensor(it.get_output_details()[0]["index"])
    ref = litert_interpreter(oracle)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x[:, :1, :1])
    ref.invoke()
    exp = ref.get_tensor(ref.get_output_details()[0]["index"])
    assert got.shape == exp.shape == (1, 10, 12, 12) and len(np.unique(exp)) > 20
    np.testing.assert_array_equal(got, exp)


# -- BATCH_MATMUL ------------------------------------------------------------------------------
BMM = [
    # (lhs, rhs, adj_x, adj_y)
    ((2, 3, 4), (2, 4, 5), False, False),
    ((3, 7, 5), (3, 6, 5), False, True),
    ((2, 1, 4, 3), (3, 4, 6), True, False),   # broadcast batch
    ((5, 9), (9, 4), False, False),
]


def _bmm(tf, a_shape, b_shape, adj_x, adj_y, mode, const_rhs=False):
    if const_rhs:
        w = tf.constant(np.random.default_rng(2).standard_normal(b_shape).astype(np.float32))
        return quantized(tf, ("bmmc", a_shape, b_shape, adj_x, adj_y),
                         lambda a: tf.linalg.matmul(a, w, adjoint_a=adj_x, adjoint_b=adj_y),
                         [a_shape], mode)
    return quantized(tf, ("bmm", a_shape, b_shape, adj_x, adj_y),
                     lambda a, b: tf.linalg.matmul(a, b, adjoint_a=adj_x, adjoint_b=adj_y),
                     [a_shape, b_shape], mode)


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
@pytest.mark.parametrize("a_shape,b_shape,adj_x,adj_y", BMM)
def test_batch_matmul(tf, mode, a_shape, b_shape, adj_x, adj_y):
    content = _bmm(tf, a_shape, b_shape, adj_x, adj_y, mode)
    if "BATCH_MATMUL" not in ops_of(content):
        pytest.skip(f"converter emitted {ops_of(content)}")
    compare_all(content)


@pytest.mark.parametrize("za,zb,zo", [(-128, 127, 5), (127, -128, -128), (0, 0, 0)])
def test_batch_matmul_zero_points(tf, za, zb, zo):
    def fix(m):
        op = the_op(m, "BATCH_MATMUL")
        requantize_tensor(op.inputs[0], zero_point=za)
        requantize_tensor(op.inputs[1], zero_point=zb)
        requantize_tensor(op.outputs[0], zero_point=zo)
    compare_all(edit(_bmm(tf, (2, 3, 4), (2, 4, 5), False, False, "int8"), fix))


def test_fully_connected_runtime_weights_and_bias(tf):
    """Weights and bias fed at run time: the prepare-time precomputation happens per invoke."""
    def fix(m):
        op = the_op(m, "FULLY_CONNECTED")
        for t in op.inputs[1:3]:
            t.buffer = None
            m.main.inputs.append(t)
    content = edit(_fc_model(tf, "int8", per_channel=False), fix)
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    xs = full_range_inputs(ref.get_input_details(), 3)
    xs[2] = (xs[2] // 1000).astype(np.int32)  # a bias of plausible size
    compare_all(content, inputs=xs)


def _retype_bias(m, name, dtype, tensor_type):
    op = the_op(m, name)
    b = op.inputs[2 if name != "TRANSPOSE_CONV" else 3]
    b.buffer = Buffer(b.data.astype(dtype).tobytes())
    b.dtype = tensor_type
    if getattr(op.options, "quantized_bias_type", 0):
        op.options = dataclasses.replace(op.options, quantized_bias_type=0)


@pytest.mark.parametrize("name, mode, dtype, tensor_type, allowed", [
    ("CONV_2D", "int8", np.int64, TensorType.INT64, "int32"),
    ("CONV_2D", "int16x8", np.int16, TensorType.INT16, "int64 or int32"),
    ("DEPTHWISE_CONV_2D", "int8", np.int64, TensorType.INT64, "int32"),
    ("DEPTHWISE_CONV_2D", "int16x8", np.int32, TensorType.INT32, "int64"),  # no int32 here
])
def test_bias_of_the_wrong_type_is_a_model_error(tf, name, mode, dtype, tensor_type, allowed):
    base = _conv_base(tf, mode) if name == "CONV_2D" else _dw_base(tf, mode)
    content = edit(base, lambda m: _retype_bias(m, name, dtype, tensor_type))
    with pytest.raises(ModelError, match=f"bias must be {allowed} for int"):
        wb.Interpreter(model_content=content).allocate_tensors()


def test_filter_of_the_wrong_type_is_unsupported(tf):
    def to_int16_filter(m):
        w = the_op(m, "CONV_2D").inputs[1]
        w.buffer = Buffer(w.data.astype(np.int16).tobytes())
        w.dtype = TensorType.INT16

    content = edit(_conv_base(tf, "int8"), to_int16_filter)
    with pytest.raises(wb.UnsupportedOpError, match="int8 input with int16 filter"):
        wb.Interpreter(model_content=content).allocate_tensors()


# -- FULLY_CONNECTED with int16 weights (16x8 matmul of two activations) ----------------------
def test_int16x8_matmul_of_two_activations(tf):
    """TF's 16x8 converter turns a product of two activations (an outer product here) into a
    FULLY_CONNECTED whose weights are an int16 activation; LiteRT runs it with int64
    accumulators and the reduced 16-bit multiplier."""
    content = quantized(tf, "outer16", lambda a, b: tf.einsum("i,j->ij", a[0], b[0]),
                        [(1, 8), (1, 8)], mode="int16x8")
    fc = the_op(wb.load(content), "FULLY_CONNECTED")
    assert fc.inputs[0].type_name == fc.inputs[1].type_name == "INT16"
    assert compare_all(content, seeds=range(6)) > 0


@pytest.mark.parametrize("bias", [None, "int64", "int32"])
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU])
def test_fully_connected_int16_weights_constant(bias, act):
    """Constant int16 weights; an int64 bias is refused (LiteRT reads it as int32 values)."""
    from workbench.errors import UnsupportedOpError
    from workbench.ir.graph import Model, Operator, Subgraph
    from workbench.ir.ops import FullyConnectedOptions, Op

    rng = np.random.default_rng(len(str(bias)) + int(act))
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)

    def qp(s):
        return QuantParams(scale=np.array([s], np.float32), zero_point=np.array([0]))

    x = sg.new_tensor("x", (3, 6), np.int16, quantization=qp(0.01))
    w = sg.new_tensor("w", (4, 6), np.int16, data=rng.integers(-32768, 32767, (4, 6)),
                      quantization=qp(0.002))
    ins = [x, w]
    if bias is not None:
        dt = np.int64 if bias == "int64" else np.int32
        ins.append(sg.new_tensor("b", (4,), dt, data=rng.integers(-2**30, 2**30, 4),
                                 quantization=qp(0.01 * 0.002)))
    y = sg.new_tensor("y", (3, 4), np.int16, quantization=qp(40.0))
    sg.inputs.append(x)
    sg.outputs.append(y)
    sg.add_operator(Operator(m.opcode(Op.FULLY_CONNECTED), ins, [y],
                             options=FullyConnectedOptions(fused_activation_function=act)))
    if bias == "int64":
        with pytest.raises(UnsupportedOpError, match="int64 bias"):
            wb.Interpreter(model_content=m.to_bytes()).allocate_tensors()
        return
    assert compare_all(m.to_bytes(), seeds=range(4)) > 0


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_activation_bound_overflowing_int32_is_refused_like_litert(tf, mode):
    """A RELU6 whose bound 6.0 quantizes beyond int32 with the output's scale (an untrained
    channel's tiny scale, as a tf_keras MobileNetV2 gets in 16x8): LiteRT refuses the op at
    prepare (``no_integer_overflow_from_quantization``), and so do we, naming it."""
    content = quantized(tf, ("conv", (1, 5, 5, 3), (3, 3, 3, 4), 1, "SAME", 1),
                        _conv_fn(tf, (3, 3, 3, 4), 1, "SAME", 1), [(1, 5, 5, 3)], mode)

    def tiny(m):
        set_activation(m, "CONV_2D", Act.RELU6)
        requantize_tensor(the_op(m, "CONV_2D").outputs[0], scale=2e-9)

    bad = edit(content, tiny)
    with pytest.raises(RuntimeError, match="no_integer_overflow_from_quantization"):
        litert_interpreter(bad).allocate_tensors()
    ours = wb.Interpreter(model_content=bad)
    with pytest.raises(ModelError, match="CONV_2D.*overflows int32"):
        ours.allocate_tensors()
    # at a scale that fits, both run
    ok = edit(content, lambda m: set_activation(m, "CONV_2D", Act.RELU6))
    assert compare_all(ok) >= 1
