"""Tests of workbench.analysis.summary: MACs against analytic formulas from the Keras layer
configuration (an oracle independent of our code), parameter counts against Keras
``count_params()``, robustness on quantized / custom / dynamic / control-flow models, and HTML
escaping."""

from __future__ import annotations

import math
import os
from collections import Counter

import numpy as np
import pytest

import workbench as wb
from workbench.analysis.summary import (
    COLUMNS,
    human_bytes,
    human_count,
    summary,
    summary_html,
    totals,
)
from workbench.ir.graph import Model, Operator, Subgraph, Tensor
from workbench.ir.ops import Op

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def keras(tf):
    return pytest.importorskip("keras")


def _convert(tf, model, representative=None) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def _spatial(shape) -> int:
    """Product of the spatial dims of a channels-last Keras shape (batch and channels dropped)."""
    return math.prod(int(d) for d in shape[1:-1])


def _macs_by_op(df) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for op, macs in zip(df["op"], df["macs"]):
        out.setdefault(op, []).append(int(macs))
    return {k: sorted(v) for k, v in out.items()}


# --- MACs against the Keras layer configuration -----------------------------------------------

@pytest.fixture(scope="module")
def layers_model(tf, keras):
    """One multi-branch model holding every layer type with an exact MAC formula; returns
    (workbench model, {tflite op name: sorted analytic MACs})."""
    L = keras.layers
    rnd = "random_normal"  # non-zero biases so the converter keeps them
    img = keras.Input((12, 12, 4), batch_size=1)
    seq = keras.Input((20, 3), batch_size=1)
    a = keras.Input((2, 4, 5), batch_size=1)
    b = keras.Input((1, 5, 3), batch_size=1)
    c = keras.Input((4, 5), batch_size=1)
    d = keras.Input((3, 5), batch_size=1)
    vol = keras.Input((4, 6, 6, 2), batch_size=1)

    c1 = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6", bias_initializer=rnd)
    c2 = L.Conv2D(6, 3, groups=2, bias_initializer=rnd)
    dw = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", bias_initializer=rnd)
    ct = L.Conv2DTranspose(5, 3, strides=2, bias_initializer=rnd)
    dense = L.Dense(7, bias_initializer=rnd)  # on a 4-D input: FULLY_CONNECTED keep_num_dims
    c1d = L.Conv1D(4, 5, strides=2, bias_initializer=rnd)
    pool = L.AveragePooling2D(2)
    c3 = L.Conv3D(3, 2, bias_initializer=rnd)
    c3t = L.Conv3DTranspose(2, 2, strides=2, bias_initializer=rnd)

    x1 = c1(img)
    x2 = c2(x1)
    x3 = dw(x2)
    x4 = ct(x3)
    x5 = dense(x4)
    y_soft = L.Softmax()(x5)
    y_pool = pool(x1)
    y_1d = c1d(seq)
    y_bmm = keras.ops.matmul(a, b)  # broadcast batch dims
    y_adj = keras.ops.matmul(c, keras.ops.transpose(d, (0, 2, 1)))  # adj_y
    y_3d = c3t(c3(vol))
    model = keras.Model([img, seq, a, b, c, d, vol],
                        [y_soft, y_pool, y_1d, y_bmm, y_adj, y_3d])

    def conv_macs(layer, x_in, x_out):
        k = math.prod(layer.kernel_size)
        cin = int(x_in.shape[-1])
        return _spatial(x_out.shape) * k * (cin // layer.groups) * layer.filters

    def transpose_macs(layer, x_in):
        k = math.prod(layer.kernel_size)
        return _spatial(x_in.shape) * int(x_in.shape[-1]) * k * layer.filters

    oracle = {
        "CONV_2D": sorted([conv_macs(c1, img, x1), conv_macs(c2, x1, x2),
                           conv_macs(c1d, seq, y_1d)]),
        "DEPTHWISE_CONV_2D": [_spatial(x3.shape) * math.prod(dw.kernel_size)
                              * int(x2.shape[-1]) * dw.depth_multiplier],
        "TRANSPOSE_CONV": [transpose_macs(ct, x3)],
        "FULLY_CONNECTED": [_spatial(x4.shape) * int(x4.shape[-1]) * dense.units],
        "BATCH_MATMUL": sorted([2 * 4 * 5 * 3, 4 * 5 * 3]),
        "AVERAGE_POOL_2D": [math.prod(y_pool.shape) * math.prod(pool.pool_size)],
        "SOFTMAX": [math.prod(y_soft.shape)],
        "CONV_3D": [conv_macs(c3, vol, c3(vol))],
        "CONV_3D_TRANSPOSE": [transpose_macs(c3t, c3(vol))],
    }
    return wb.load(_convert(tf, model)), oracle


@pytest.mark.parametrize("op", [
    "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL",
    "AVERAGE_POOL_2D", "SOFTMAX", "CONV_3D", "CONV_3D_TRANSPOSE",
])
def test_macs_match_keras_formulas(layers_model, op):
    m, oracle = layers_model
    got = _macs_by_op(summary(m))
    assert got.get(op) == oracle[op]


def test_macs_zero_for_data_movement_and_totals_add_up(layers_model):
    m, _ = layers_model
    df = summary(m)
    moving = df[df["op"].isin(["RESHAPE", "TRANSPOSE", "CONCATENATION", "EXPAND_DIMS",
                               "SQUEEZE", "PAD", "STRIDED_SLICE"])]
    assert len(moving) > 0  # Conv1D is lowered through EXPAND_DIMS/RESHAPE
    assert (moving["macs"] == 0).all()
    assert totals(m)["macs"] == int(df["macs"].sum())


def test_columns_and_options(layers_model):
    m, _ = layers_model
    df = summary(m)
    assert list(df.columns) == COLUMNS
    assert list(df["index"]) == list(range(len(m.main.operators)))
    assert df["macs"].dtype.kind == "i" and df["params"].dtype.kind == "i"
    conv = df[df["op"] == "CONV_2D"]
    assert "SAME s2 relu6" in set(conv["options"])
    bmm = df[df["op"] == "BATCH_MATMUL"]
    assert "adj_y" in set(bmm["options"])
    fc = df[df["op"] == "FULLY_CONNECTED"].iloc[0]
    assert "keep_num_dims" in fc["options"]
    # shapes and dtypes are aligned lists over the non-omitted inputs
    for shapes, dtypes in zip(df["input_shapes"], df["input_dtypes"]):
        assert len(shapes) == len(dtypes)
    first = df.iloc[0]
    op0 = m.main.operators[0]
    assert first["name"] == op0.outputs[0].name
    assert first["output_shapes"] == [tuple(op0.outputs[0].shape)]


# --- parameters -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_keras(keras):
    L = keras.layers
    rnd = "random_normal"
    inp = keras.Input((10, 10, 3), batch_size=1)
    x = L.Conv2D(4, 3, activation="relu", bias_initializer=rnd)(inp)
    x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dense(6, activation="relu", bias_initializer=rnd)(x)
    x = L.Dense(2, bias_initializer=rnd)(x)
    return keras.Model(inp, x)


@pytest.fixture(scope="module")
def small_bytes(tf, small_keras):
    return _convert(tf, small_keras)


def test_params_equal_keras_count_params(small_keras, small_bytes):
    m = wb.load(small_bytes)
    t = totals(m)
    assert t["params"] == small_keras.count_params()
    assert int(summary(m)["params"].sum()) == small_keras.count_params()
    # the Flatten shape vector is a constant but not a parameter
    assert t["constant_elements"] > t["params"]
    assert t["weight_bytes"] == m.weight_bytes
    assert t["weight_dtypes"] == Counter({"FLOAT32": small_keras.count_params()})


def test_totals_fields(small_keras, small_bytes):
    m = wb.load(small_bytes)
    t = totals(m)
    assert t["file_size"] == len(small_bytes)
    assert t["num_ops"] == len(m.main.operators) == sum(t["ops_by_type"].values())
    assert t["ops_by_type"]["FULLY_CONNECTED"] == 2
    (inp,) = t["inputs"]
    assert inp["shape"] == (1, 10, 10, 3) and inp["dtype"] == "FLOAT32"
    assert inp["quantization"] is None
    assert t["outputs"][0]["shape"] == (1, 2)
    (key,) = t["signatures"]
    assert t["signatures"][key]["subgraph"] == 0
    assert t["signatures"][key]["inputs"] == [inp["signature_name"]]
    assert "min_runtime_version" in t["metadata"]
    assert t["description"] == m.description
    # in-memory size falls back to serializing
    m.file_size = 0
    assert totals(m)["file_size"] > 0


def test_int8_model(tf, small_keras, small_bytes):
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(4):
            yield [rng.standard_normal((1, 10, 10, 3)).astype(np.float32)]

    q = wb.load(_convert(tf, small_keras, representative=rep))
    f = wb.load(small_bytes)
    dq, df = summary(q), summary(f)
    assert set(dq["input_dtypes"].iloc[0]) >= {"INT8"}
    main_ops = ["CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"]
    assert _macs_by_op(dq[dq["op"].isin(main_ops)]) == _macs_by_op(df[df["op"].isin(main_ops)])
    t = totals(q)
    assert t["params"] == small_keras.count_params()  # int8 weights + int32 biases
    assert set(t["weight_dtypes"]) == {"INT8", "INT32"}
    qi = t["inputs"][0]["quantization"]
    assert isinstance(qi["scale"], float) and isinstance(qi["zero_point"], int)
    html = summary_html(q)
    assert "scale=" in html and "int8" in html


# --- robustness --------------------------------------------------------------------------------

def test_html_escapes_tensor_names(small_bytes):
    m = wb.load(small_bytes)
    evil = '<script>alert("x")</script>'
    m.main.operators[0].outputs[0].name = evil
    m.main.inputs[0].name = evil + "&in"
    m.description = "<b>desc</b>"
    h = summary_html(m)
    assert "<script" not in h.lower()
    assert "&lt;script&gt;" in h
    assert "<b>desc" not in h
    assert m._repr_html_() == h
    # self-contained: no scripts, no external resources
    for bad in ("src=", "href=", "http://", "https://", "@import"):
        assert bad not in h
    assert summary(m)["name"].iloc[0] == evil  # the DataFrame keeps the raw name


def test_custom_and_unknown_ops(small_bytes):
    m = wb.load(small_bytes)
    m.main.operators[0].opcode = m.opcode(custom_code="MyOp")
    m.main.operators[1].opcode = m.opcode(builtin_code=9999)  # not in this schema
    df = summary(m)
    assert df["op"].iloc[0] == "MyOp"
    assert df["macs"].iloc[0] == 0 and df["macs"].iloc[1] == 0
    assert df["params"].iloc[0] > 0  # its constant inputs still count
    t = totals(m)
    assert t["ops_by_type"]["MyOp"] == 1
    assert "MyOp" in summary_html(m)


def test_dynamic_batch(tf, keras):
    inp = keras.Input((8,))  # batch dimension unknown: shape_signature [-1, 8]
    m = wb.load(_convert(tf, keras.Model(inp, keras.layers.Dense(3)(inp))))
    df = summary(m)
    (fc,) = df.itertuples()
    assert fc.op == "FULLY_CONNECTED"
    assert fc.input_shapes[0] == (-1, 8)
    assert fc.macs == 8 * 3  # counted for the stored (batch 1) shape
    assert "[?,8]" in summary_html(m)


def test_control_flow_subgraphs(tf):
    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def f(x):
        i = tf.constant(0)
        _, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 2.0 + 1.0), [i, x])
        return y

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    m = wb.load(conv.convert())
    assert len(m.subgraphs) > 1
    main = summary(m)
    assert "WHILE" in set(main["op"]) and "subgraph" not in main.columns
    assert main.loc[main["op"] == "WHILE", "macs"].iloc[0] == 0
    every = summary(m, "all")
    assert list(every.columns) == ["subgraph", *COLUMNS]
    assert set(every["subgraph"]) == set(range(len(m.subgraphs)))
    body_mul = every[(every["op"] == "MUL") & (every["subgraph"] > 0)]
    assert list(body_mul["macs"]) == [4]
    t = totals(m)
    assert t["num_subgraphs"] == len(m.subgraphs)
    assert t["macs"] == int(every["macs"].sum()) == sum(t["macs_by_subgraph"])
    assert "body=sg" in " ".join(main["options"])
    with pytest.raises(IndexError):
        summary(m, 99)


def _ir_model() -> tuple[Model, Subgraph]:
    sg = Subgraph(name="main")
    return Model(subgraphs=[sg]), sg


def test_lstm_macs_ir():
    m, sg = _ir_model()
    T, n_in, n_cell = 7, 5, 6
    x = sg.new_tensor("x", (1, T, n_in))
    w_in = [sg.new_tensor(f"wi{g}", (n_cell, n_in), data=np.ones((n_cell, n_in)))
            for g in range(4)]
    w_rec = [sg.new_tensor(f"wr{g}", (n_cell, n_cell), data=np.ones((n_cell, n_cell)))
             for g in range(4)]
    bias = [sg.new_tensor(f"b{g}", (n_cell,), data=np.ones(n_cell)) for g in range(4)]
    state = [sg.new_tensor(s, (1, n_cell)) for s in ("h", "c")]
    for s in state:
        s.is_variable = True
    y = sg.new_tensor("y", (1, T, n_cell))
    inputs = [x, *w_in, *w_rec, None, None, None, *bias, None, None, *state,
              None, None, None, None]
    assert len(inputs) == 24
    op = Operator(m.opcode(Op.UNIDIRECTIONAL_SEQUENCE_LSTM), inputs=inputs, outputs=[y])
    sg.add_operator(op)
    sg.inputs, sg.outputs = [x], [y]
    row = summary(m).iloc[0]
    assert row["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    assert row["macs"] == T * 4 * (n_in + n_cell) * n_cell
    assert row["params"] == 4 * n_cell * (n_in + n_cell) + 4 * n_cell
    # CIFG (no input gate): three gates
    op.inputs[1] = op.inputs[5] = None
    assert summary(m).iloc[0]["macs"] == T * 3 * (n_in + n_cell) * n_cell


def test_empty_tensors_and_long_tables_ir():
    m, sg = _ir_model()
    x = sg.new_tensor("x", (0, 4))  # empty
    prev = x
    sg.inputs = [x]
    for i in range(250):
        y = sg.new_tensor(f"relu_{i}", (0, 4))
        sg.add_operator(Operator(m.opcode(Op.RELU), inputs=[prev], outputs=[y]))
        prev = y
    sg.outputs = [prev]
    df = summary(m)
    assert len(df) == 250 and (df["macs"] == 0).all()
    h = summary_html(m)
    assert "showing the first 200 of 250" in h
    assert h.count("<tr>") < 260  # truncated table
    # an op with no outputs and a shapeless tensor must not break anything
    sg.add_operator(Operator(m.opcode(Op.ADD), inputs=[Tensor(name="s"), None], outputs=[]))
    assert summary(m).iloc[-1]["name"] == ""
    assert totals(m)["num_ops"] == 251


def test_human_formats():
    assert human_count(300_812_345) == "300.8 M"
    assert human_count(999) == "999"
    assert human_count(1_500) == "1.5 K"
    assert human_bytes(3_400_000) == "3.4 MB"
    assert human_bytes(12) == "12 B"
