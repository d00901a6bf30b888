"""The fully integer (8x8_16) LSTM against LiteRT, bit for bit: UNIDIRECTIONAL_SEQUENCE_LSTM and
LSTM with int8 input and output state, int16 cell state, built by hand with our IR in every
variant LiteRT's kernel has (CIFG, peephole, projection with bias and clipping, layer
normalization, cell clipping, batch-major, cell-state scales on both sides of the integer tanh's
range), and a tf_keras LSTM model quantized by TF's converter. Every case runs several invokes,
so the int8/int16 state carried between them is compared too.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import LSTMOptions, Op, UnidirectionalSequenceLSTMOptions


class _Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.m = Model()
        self.sg = Subgraph(name="main")
        self.m.subgraphs.append(self.sg)

    def q(self, name, shape, dtype, scale, zp=0, data=None, variable=False):
        t = self.sg.new_tensor(name, shape, dtype, data=data,
                               quantization=QuantParams(scale=[scale], zero_point=[zp]))
        t.is_variable = variable
        return t

    def int8_weight(self, name, shape):
        v = self.rng.integers(-127, 128, shape)
        return self.q(name, shape, np.int8, float(self.rng.uniform(0.002, 0.02)), data=v)

    def int32_bias(self, name, n, spread=4000):
        return self.q(name, (n,), np.int32, 1e-5, data=self.rng.integers(-spread, spread, n))

    def int16_vector(self, name, n, lo=-20000, hi=20000):
        return self.q(name, (n,), np.int16, float(self.rng.uniform(1e-5, 1e-4)),
                      data=self.rng.integers(lo, hi, n))


def integer_lstm_model(op=Op.UNIDIRECTIONAL_SEQUENCE_LSTM, T=6, B=2, I=5, C=8, P=None,  # noqa: E741
                       cifg=False, peephole=False, layer_norm=False, proj_bias=False,
                       time_major=True, cell_clip=0.0, proj_clip=0.0, cell_scale_log2=-11,
                       in_zp=7, h_zp=-3, hidden_zp=5, seed=0):
    """An integer LSTM node with random int8 weights: (model bytes, input shape)."""
    bld = _Builder(seed)
    sg = bld.sg
    n_out = P or C
    seq = op == Op.UNIDIRECTIONAL_SEQUENCE_LSTM
    xshape = ((T, B, I) if time_major else (B, T, I)) if seq else (B, I)
    x = bld.q("x", xshape, np.int8, 0.03, in_zp)
    sg.inputs.append(x)
    w = bld.int8_weight
    peep = (lambda n: bld.int16_vector(n, C)) if peephole else (lambda n: None)
    # With layer normalization the gate biases are the normalization's (in 2**-10 units of the
    # normalized value times the coefficients).
    bias = bld.int32_bias
    ins = [x,
           None if cifg else w("xi", (C, I)), w("xf", (C, I)), w("xc", (C, I)), w("xo", (C, I)),
           None if cifg else w("hi", (C, n_out)), w("hf", (C, n_out)), w("hc", (C, n_out)),
           w("ho", (C, n_out)),
           None if cifg else peep("pi"), peep("pf"), peep("po"),
           None if cifg else bias("bi", C), bias("bf", C), bias("bc", C), bias("bo", C),
           w("proj", (n_out, C)) if P else None,
           bias("pb", n_out) if (P and proj_bias) else None,
           bld.q("h", (B, n_out), np.int8, 0.01, h_zp, variable=True),
           bld.q("c", (B, C), np.int16, 2.0 ** cell_scale_log2, variable=True)]
    if layer_norm:
        ins += [None if cifg else bld.int16_vector("li", C, 1000, 30000),
                bld.int16_vector("lf", C, 1000, 30000), bld.int16_vector("lc", C, 1000, 30000),
                bld.int16_vector("lo", C, 1000, 30000)]
    else:
        ins += [None] * 4
    inter = []
    for k in range(4):
        if layer_norm:
            inter.append(bld.q(f"inter{k}", (), np.int16, float(bld.rng.uniform(1e-4, 5e-4))))
        else:  # as TF's converter writes them: unquantized placeholders
            inter.append(sg.new_tensor(f"inter{k}", (), np.float32))
    inter.append(bld.q("hidden", (), np.int8, 0.008, hidden_zp))
    if seq:
        opts = UnidirectionalSequenceLSTMOptions(
            fused_activation_function=Act.TANH, cell_clip=cell_clip, proj_clip=proj_clip,
            time_major=time_major)
        out_shape = (T, B, n_out) if time_major else (B, T, n_out)
    else:
        opts = LSTMOptions(fused_activation_function=Act.TANH, cell_clip=cell_clip,
                           proj_clip=proj_clip)
        out_shape = (B, n_out)
    out = bld.q("y", out_shape, np.int8, 0.01, h_zp)
    sg.outputs.append(out)
    sg.add_operator(Operator(bld.m.opcode(op), ins, [out], options=opts, intermediates=inter))
    return bld.m.to_bytes(), xshape


def compare_integer_invokes(content: bytes, xshape, invokes=3, seed=1, reset_after=None):
    """Random int8 inputs through both interpreters, several invokes (the states carry over);
    every output and both state tensors must be bit-identical."""
    rng = np.random.default_rng(seed)
    ours = Interpreter(model_content=content)
    ref = litert_interpreter(content)
    ours.allocate_tensors()
    ref.allocate_tensors()
    states = [d["index"] for d in ref.get_tensor_details() if d["name"] in ("h", "c")]
    for k in range(invokes):
        x = rng.integers(-128, 128, xshape).astype(np.int8)
        for it in (ours, ref):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        out = ref.get_output_details()[0]["index"]
        for i in (out, *states):
            np.testing.assert_array_equal(ours.get_tensor(i), ref.get_tensor(i),
                                          err_msg=f"invoke {k}, tensor {i}")
        if reset_after == k:
            ours.reset_all_variables()
            ref.reset_all_variables()
            for i in states:
                np.testing.assert_array_equal(ours.get_tensor(i), ref.get_tensor(i))


CASES = {
    "basic": dict(),
    "cifg": dict(cifg=True),
    "peephole": dict(peephole=True),
    "peephole_cifg": dict(peephole=True, cifg=True),
    "projection": dict(P=5),
    "projection_bias_clip": dict(P=5, proj_bias=True, proj_clip=0.2),
    # LiteRT applies a peephole over n_output (< n_cell) values of the flattened rows
    "projection_peephole_batch3": dict(P=5, peephole=True, B=3),
    "layer_norm": dict(layer_norm=True),
    "layer_norm_cifg_peephole": dict(layer_norm=True, cifg=True, peephole=True),
    "layer_norm_projection": dict(layer_norm=True, P=4, proj_bias=True),
    "batch_major": dict(time_major=False, B=3),
    "cell_clip": dict(cell_clip=0.3),
    # 15 + log2(cell scale) integer bits for the integer tanh: 0 and 6 are its ends...
    "cell_scale_2e-15": dict(cell_scale_log2=-15),
    "cell_scale_2e-9": dict(cell_scale_log2=-9),
    # ... and outside them LiteRT's tanh writes nothing (the input gate stands in for it)
    "cell_scale_2e-16": dict(cell_scale_log2=-16),
    "zero_points_at_extremes": dict(in_zp=-128, h_zp=127, hidden_zp=-128),
}


@pytest.mark.parametrize("case", list(CASES))
def test_integer_sequence_lstm(case):
    compare_integer_invokes(*integer_lstm_model(**CASES[case]))


@pytest.mark.parametrize("case", ["basic", "cifg", "projection_bias_clip", "layer_norm"])
def test_integer_lstm_single_step(case):
    kw = {k: v for k, v in CASES[case].items()}
    compare_integer_invokes(*integer_lstm_model(op=Op.LSTM, **kw), invokes=4)


def test_int8_state_starts_and_resets_at_its_zero_point():
    """LiteRT sets an int8 variable tensor's bytes to its zero point on allocation and on
    reset_all_variables (the quantized 0), int16 ones to 0."""
    content, xshape = integer_lstm_model(h_zp=-3)
    ours = Interpreter(model_content=content)
    ours.allocate_tensors()
    h = next(d["index"] for d in ours.get_tensor_details() if d["name"] == "h")
    np.testing.assert_array_equal(ours.get_tensor(h), np.full((2, 8), -3, np.int8))
    compare_integer_invokes(content, xshape, invokes=3, reset_after=1)


def test_cifg_with_an_out_of_range_cell_scale_is_refused():
    """With CIFG there is no input gate in the buffer LiteRT's tanh leaves unwritten: LiteRT
    reads uninitialized memory there, so we refuse the model rather than guess."""
    content, _ = integer_lstm_model(cifg=True, cell_scale_log2=-16)
    ours = Interpreter(model_content=content)
    with pytest.raises(UnsupportedOpError, match="cell state scale"):
        ours.allocate_tensors()


@pytest.mark.parametrize("mode", ["float32", "dynamic", "float16", "int8"])
def test_tf_keras_lstm_converted_by_tf(mode):
    """TF's converter fuses a Keras 2 (tf_keras) LSTM layer into UNIDIRECTIONAL_SEQUENCE_LSTM:
    float32; hybrid (dynamic range); float16, whose states are DEQUANTIZE outputs of constant
    zeros marked variable (LiteRT updates them in place, so they must read back as the
    states); and int8 with a representative dataset, the integer kernel. Every tensor, three
    invokes (the states carry over), integer ones bit for bit."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("tf_keras")
    from tests.litert_oracle import assert_within_range, litert_values

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 5), batch_size=1)
    h = keras.layers.LSTM(6, return_sequences=True)(inp)
    h = keras.layers.LSTM(4)(h)
    model = keras.Model(inp, keras.layers.Dense(3)(h))
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 8, 5)).astype(np.float32) for _ in range(16)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        conv.representative_dataset = lambda: ([c] for c in calib)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    content = conv.convert()
    ops = [o["op_name"] for o in litert_interpreter(content)._get_ops_details()]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    ours = Interpreter(model_content=content)
    ref = litert_interpreter(content, preserve_all=True)
    for it in (ours, ref):
        it.allocate_tensors()
    compared = 0
    n_tensors = len(wb.load(content).main.tensors)
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((1, 8, 5)).astype(np.float32) * 2
        for it in (ours, ref):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        for i, v in litert_values(ref, content).items():
            if i < n_tensors:  # not LiteRT's own scratch tensors
                assert_within_range(ours.get_tensor(i), v, f"invoke {seed}, tensor {i}")
                compared += 1
    assert compared > 20


@pytest.mark.parametrize("bits", range(7))
def test_integer_tanh_on_every_int16_value(bits):
    """gemmlowp's 16-bit tanh with 0-6 integer bits (the LSTM output's, from the cell scale):
    within 4e-4 of tanh on every input, including the saturated ends (exp's clamp below -32)."""
    from workbench.kernels import _qelementwise as q

    a = np.arange(-32768, 32768)
    got = q.gemmlowp_tanh16(a, bits) / 32768
    assert np.abs(got - np.tanh(a / 2.0 ** (15 - bits))).max() < 4e-4


def test_malformed_integer_lstms_fail_with_one_typed_error():
    """Found by a mutation fuzz of integer LSTM files: an LSTM with no inputs and a layer-norm
    scale of 3.4e38 (an infinite variance guard, cast to int as C does) run or fail with a
    WorkbenchError naming the op, never another exception. (Zero or non-finite scales do not
    load at all.)"""
    from workbench.errors import OpError, WorkbenchError
    from workbench.ir.graph import QuantParams as QP

    for mutate in ("no_inputs", "huge_ln_scale"):
        m = wb.load(integer_lstm_model(layer_norm=True, P=4, proj_clip=0.5)[0])
        op = m.main.operators[0]
        if mutate == "no_inputs":
            op.inputs = []
        else:
            op.inputs[23].quantization = QP(scale=[3.4e38], zero_point=[0])
        ours = Interpreter(model_content=m.to_bytes())
        try:
            ours.allocate_tensors()
            ours.set_tensor(0, np.zeros(ours.get_input_details()[0]["shape"], np.int8))
            ours.invoke()
        except OpError as e:  # an unexpected exception inside a kernel, wrapped
            raise AssertionError(f"{mutate}: {e}") from e
        except WorkbenchError as e:
            assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in str(e), (mutate, e)
