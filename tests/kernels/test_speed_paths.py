"""The float32 speed paths of the conv kernels and the interpreter loop give the same results as
the plain computations they replace.

- ``add_bias`` with the bias tiled along the width adds exactly what the broadcast add does;
- ``PadBuffer`` (a padded input buffer kept across invokes) equals ``np.pad`` on every call,
  whatever the previous call held, and the kernels using it stay correct over repeated invokes
  with different inputs (checked against LiteRT);
- the row-by-row ``sequential_sum`` equals an explicit float32 running sum;
- the RELU clamp with an infinite upper bound equals ``max(x, 0)``;
- ``blas_threads`` really limits numpy's BLAS and restores it (threadpoolctl as the oracle).
"""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels._common import PadBuffer, pad_nhwc
from workbench.kernels._conv import add_bias, bias_row, fused_activation
from workbench.kernels._elementwise import sequential_sum

import workbench as wb
from tests.kernels.test_nn_ops import assert_matches, convert, seeded
from tests.litert_oracle import litert_interpreter
from workbench.interpreter.threads import blas_threads
from workbench.ir.ops import ActivationFunctionType as Act


class _Info:  # the part of TensorInfo that bias_row reads
    def __init__(self, data):
        self.data = data


@pytest.mark.parametrize("shape", [(1, 5, 7, 3), (2, 4, 6, 33), (1, 1, 1, 1), (3, 0, 4, 2)])
def test_tiled_bias_matches_broadcast_add(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[-1]).astype(np.float32)
    row = bias_row(_Info(b), shape[-2])
    assert row.shape == (shape[-2] * shape[-1],)
    got = x.copy()
    add_bias(got, b, row)
    np.testing.assert_array_equal(got, x + b)
    # A block of rows of a larger array (the depthwise kernel's row blocks): still in place.
    big = rng.standard_normal((shape[0], 9, *shape[2:])).astype(np.float32)
    want = big.copy()
    want[:, 2:5] += b
    add_bias(big[:, 2:5], b, row)
    np.testing.assert_array_equal(big, want)


def test_tiled_bias_falls_back_when_width_is_not_contiguous():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 10, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    view = x[:, :, ::2]  # strided width: cannot be viewed as one row of W * C
    want = x.copy()
    want[:, :, ::2] += b
    add_bias(view, b, bias_row(_Info(b), 5))
    np.testing.assert_array_equal(x, want)
    assert bias_row(_Info(None), 5) is None  # run-time bias: plain broadcast add
    assert bias_row(_Info(b.astype(np.float64)), 5) is None
    assert bias_row(None, 5) is None


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 1), (0, 1)), ((2, 0), (0, 3)),
                                  ((0, 0), (0, 0))])
@pytest.mark.parametrize("value", [0, -5])
def test_pad_buffer_equals_np_pad_on_every_call(pads, value):
    rng = np.random.default_rng(2)
    pad = PadBuffer(*pads, value=value)
    for shape in [(1, 5, 6, 3), (1, 5, 6, 3), (2, 3, 4, 3), (1, 5, 6, 3)]:
        x = rng.integers(-100, 100, shape).astype(np.int32)
        got = pad(x)
        np.testing.assert_array_equal(got, pad_nhwc(x, *pads, value=value))
        if pads != ((0, 0), (0, 0)):
            with pytest.raises(ValueError):  # read-only: the border cannot be corrupted
                got[0, 0, 0, 0] = 77
    x = rng.standard_normal((1, 5, 6, 3)).astype(np.float32)  # dtype change: new buffer
    np.testing.assert_array_equal(pad(x), pad_nhwc(x, *pads, value=value))


def _litert(content, x):
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    return ref.get_tensor(ref.get_output_details()[0]["index"])


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.mark.parametrize("kind,stride", [("conv", 1), ("conv", 2), ("dw", 1), ("dw", 2)])
def test_repeated_invokes_with_reused_buffers_match_litert(tf, kind, stride):
    # 40x40 is large enough for the depthwise "taps" evaluation at stride 1.
    shape = (1, 40, 40, 8)
    if kind == "conv":
        w = tf.constant(seeded((3, 3, 8, 6), seed=11))
        b = tf.constant(seeded((6,), seed=12))

        def fn(x):
            return tf.nn.relu6(tf.nn.conv2d(x, w, stride, "SAME") + b)
    else:
        w = tf.constant(seeded((3, 3, 8, 1), seed=13))
        b = tf.constant(seeded((8,), seed=14))

        def fn(x):
            return tf.nn.relu(tf.nn.depthwise_conv2d(x, w, (1, stride, stride, 1), "SAME") + b)
    content = convert(tf, ("speed_paths", kind, stride), fn, [shape])
    ours = wb.Interpreter(model_content=content)
    first = None
    for seed in range(3):
        # Large values on the border in one run: stale data in a reused buffer would show.
        x = seeded(shape, seed=seed) * (100.0 if seed == 1 else 1.0)
        got = ours.run([x])[0]
        assert_matches(got, _litert(content, x), f"{kind} stride {stride} run {seed}")
        if first is None:
            first = (x, got.copy(), got)
    np.testing.assert_array_equal(first[2], first[1])  # an earlier result is not overwritten


@pytest.mark.parametrize("shape,axes", [((1, 7, 7, 1280), (1, 2)), ((3, 200), (0,)),
                                        ((5, 4, 130), (0, 1)), ((1, 9, 9, 3), (1, 2)),
                                        ((1, 56, 56, 144), (1, 2)), ((2048, 1), (0,)),
                                        ((300, 2), (0,)), ((6, 300, 2), (1,)),
                                        ((40, 3, 50), (0, 2))])
@pytest.mark.parametrize("strided", [False, True])
def test_sequential_sum_row_by_row_is_the_running_sum(shape, axes, strided):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3, shape)).astype(np.float32)
    if strided:  # every other element of a wider array: no contiguous axis
        wide = np.zeros((*shape[:-1], 2 * shape[-1]), np.float32)
        wide[..., ::2] = x
        x = wide[..., ::2]
    keep = [i for i in range(x.ndim) if i not in axes]
    rows = np.transpose(x, list(axes) + keep).reshape(-1, int(np.prod([shape[i]
                                                                          for i in keep])))
    want = np.zeros(rows.shape[1], np.float32)
    for r in rows:  # float32 running sum, one element at a time, in row-major order
        want = (want + r).astype(np.float32)
    got = sequential_sum(x, axes)
    np.testing.assert_array_equal(got.reshape(-1), want)
    assert got.dtype == np.float32


def test_relu_clamp_equals_max_with_zero():
    x = np.array([-0.5, 0.0, 3.0, np.inf, -np.inf, np.nan, 3e38, -1e-45], np.float32)
    got = fused_activation(x.copy(), Act.RELU)
    want = np.where(np.isnan(x), np.nan, np.maximum(x, 0)).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def test_blas_threads_limits_numpy_blas_and_restores():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_counts():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    before = blas_counts()
    if not before:
        pytest.skip("no BLAS found by threadpoolctl")
    with blas_threads(1):
        assert 1 in blas_counts()
        np.ones((64, 64)) @ np.ones((64, 64))
    assert blas_counts() == before


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_float_bias_of_the_wrong_size_is_a_model_error(tf, op):
    from workbench.errors import ModelError

    if op == "CONV_2D":
        w = tf.constant(seeded((3, 3, 4, 6), seed=15))
        b = tf.constant(seeded((6,), seed=16))

        def fn(x):
            return tf.nn.conv2d(x, w, 1, "SAME") + b
    else:
        w = tf.constant(seeded((3, 3, 4, 1), seed=17))
        b = tf.constant(seeded((4,), seed=18))

        def fn(x):
            return tf.nn.depthwise_conv2d(x, w, (1, 1, 1, 1), "SAME") + b
    content = convert(tf, ("speed_paths_bias", op), fn, [(1, 6, 6, 4)])
    m = wb.load(content)
    (node,) = [o for o in m.main.operators if o.name == op]
    assert len(node.inputs) > 2 and node.inputs[2] is not None, "converter fused no bias"
    bias = node.inputs[2]
    longer = m.main.new_tensor("long_bias", (bias.shape[0] + 1,),
                               data=np.concatenate([bias.data, bias.data[:1]]))
    node.inputs[2] = longer  # one element more than output channels
    with pytest.raises(ModelError, match="bias"):
        wb.Interpreter(m).allocate_tensors()
