"""Full-integer CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with packed INT4 weights (int8
activations), bit for bit against LiteRT's built-in kernels.

LiteRT unpacks constant INT4 weights (two per byte, the low nibble first) to int8 in Prepare and
runs its int8 arithmetic; ``_qconv.int4_weights_as_int8`` does the same. One-op models are
written with our IR and writer: the converter does not emit these yet.
"""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels._hybrid import pack_int4

from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError, UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir.graph import Buffer, Model, Operator, QuantParams, Subgraph
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import (
    Conv2DOptions,
    DepthwiseConv2DOptions,
    FullyConnectedOptions,
    Op,
    Padding,
    TensorType,
)


def qp(scale, zero_point=0, axis=0) -> QuantParams:
    scale = np.atleast_1d(np.asarray(scale, np.float32))
    zp = np.broadcast_to(np.asarray(zero_point, np.int64), scale.shape).copy()
    return QuantParams(scale=scale, zero_point=zp, quantized_dimension=axis)


def build(op, x_shape, w, w_scales, w_axis, out_shape, options, bias=True, x_zp=3, out_zp=-5,
          packed=None, x_dtype=np.int8) -> bytes:
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    sx, so = 0.05, 0.2
    x = sg.new_tensor("x", x_shape, x_dtype, quantization=qp(sx, x_zp))
    sg.inputs.append(x)
    wt = sg.new_tensor("w", w.shape, np.int8, data=w, quantization=qp(w_scales, 0, w_axis))
    wt.dtype = TensorType.INT4
    wt.buffer = Buffer(pack_int4(w) if packed is None else packed)
    ins = [x, wt]
    if bias:
        units = w.shape[w_axis]
        b = np.random.default_rng(units).integers(-2000, 2000, units).astype(np.int32)
        ins.append(sg.new_tensor("b", b.shape, np.int32, data=b,
                                 quantization=qp(sx * np.asarray(w_scales, np.float32))))
    out = sg.new_tensor("out", out_shape, x_dtype, quantization=qp(so, out_zp))
    sg.outputs.append(out)
    sg.add_operator(Operator(m.opcode(op), ins, [out], options=options))
    return m.to_bytes()


def run(it, x):
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def check(content: bytes, x_shape, seed=0):
    rng = np.random.default_rng(seed)
    for x in (rng.integers(-128, 128, x_shape).astype(np.int8),
              np.full(x_shape, 127, np.int8), np.full(x_shape, -128, np.int8)):
        want = run(litert_interpreter(content), x)
        got = run(Interpreter(model_content=content), x)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def weights(shape, seed):
    return np.random.default_rng(seed).integers(-8, 8, shape).astype(np.int8)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("units,k", [(16, 32), (7, 9), (1, 5)])  # odd counts: a spare nibble
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU])
def test_fully_connected(per_channel, units, k, act):
    w = weights((units, k), units * k)
    scales = np.linspace(0.01, 0.05, units) if per_channel else 0.02
    content = build(Op.FULLY_CONNECTED, (3, k), w, scales, 0, (3, units),
                    FullyConnectedOptions(fused_activation_function=act))
    check(content, (3, k))


def test_fully_connected_keep_num_dims_without_bias():
    w = weights((6, 10), 1)
    content = build(Op.FULLY_CONNECTED, (2, 3, 10), w, np.full(6, 0.03), 0, (2, 3, 6),
                    FullyConnectedOptions(keep_num_dims=True), bias=False, x_zp=-128)
    check(content, (2, 3, 10))


@pytest.mark.parametrize("stride,padding", [(1, Padding.SAME), (2, Padding.SAME),
                                            (2, Padding.VALID)])
@pytest.mark.parametrize("act", [Act.NONE, Act.RELU6])
def test_conv_2d(stride, padding, act):
    w = weights((8, 3, 3, 5), stride)
    content = build(Op.CONV_2D, (1, 11, 10, 5), w, np.linspace(0.01, 0.06, 8), 0,
                    (1, *[(n + stride - 1) // stride if padding == Padding.SAME
                          else (n - 3) // stride + 1 for n in (11, 10)], 8),
                    Conv2DOptions(padding=padding, stride_w=stride, stride_h=stride,
                                  fused_activation_function=act))
    check(content, (1, 11, 10, 5))


def test_conv_2d_pointwise():
    w = weights((12, 1, 1, 7), 5)
    content = build(Op.CONV_2D, (2, 6, 6, 7), w, np.linspace(0.02, 0.03, 12), 0, (2, 6, 6, 12),
                    Conv2DOptions(padding=Padding.VALID, stride_w=1, stride_h=1))
    check(content, (2, 6, 6, 7))


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_2d(stride):
    w = weights((1, 3, 3, 8), 7)
    oh = (9 + stride - 1) // stride
    content = build(Op.DEPTHWISE_CONV_2D, (1, 9, 9, 8), w, np.linspace(0.01, 0.05, 8), 3,
                    (1, oh, oh, 8),
                    DepthwiseConv2DOptions(padding=Padding.SAME, stride_w=stride,
                                           stride_h=stride, depth_multiplier=1))
    check(content, (1, 9, 9, 8))


def test_truncated_int4_buffer_names_the_tensor():
    """Too few bytes for the INT4 shape: refused (by the writer's verifier here, the loader's
    for a file from elsewhere) with the tensor's path and name, not read past the buffer."""
    w = weights((16, 32), 0)
    with pytest.raises(ModelError, match=r"tensors\[1\] \('w'\).*INT4 needs 256"):
        build(Op.FULLY_CONNECTED, (3, 32), w, 0.02, 0, (3, 16), FullyConnectedOptions(),
              packed=pack_int4(w)[:100])


def test_int4_weights_with_uint8_input_are_refused_by_name():
    w = weights((4, 6), 0)
    content = build(Op.FULLY_CONNECTED, (2, 6), w, 0.02, 0, (2, 4), FullyConnectedOptions(),
                    x_dtype=np.uint8, x_zp=128, out_zp=128)
    with pytest.raises(UnsupportedOpError, match="INT4"):
        Interpreter(model_content=content).allocate_tensors()
