"""Recurrent kernels against LiteRT: UNIDIRECTIONAL_SEQUENCE_LSTM, LSTM, UNIDIRECTIONAL_SEQUENCE_RNN
and RNN, float32 and hybrid (int8 weights), built by hand with our IR (TF 2.21 with Keras 3
lowers Keras LSTM/GRU/RNN layers to WHILE loops instead of these fused ops; that form is
checked too). State tensors are variables: both runtimes carry them across invokes, so every
case runs three invokes and compares each.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.interpreter import Interpreter
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph, Tensor
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import (
    LSTMOptions,
    Op,
    RNNOptions,
    SequenceRNNOptions,
    UnidirectionalSequenceLSTMOptions,
)

F32 = np.float32
#: Relative to each output's range. The float parts follow LiteRT's operation order but not its
#: BLAS summation order; observed differences are ~2e-7.
TOL = 1e-5
_CACHE: dict = {}


class _Builder:
    def __init__(self, seed, hybrid):
        self.rng = np.random.default_rng(seed)
        self.hybrid = hybrid
        self.m = Model()
        self.sg = Subgraph(name="main")
        self.m.subgraphs.append(self.sg)

    def weight(self, name, shape, quantize=None, scale=0.5):
        v = (self.rng.standard_normal(shape) * scale).astype(F32)
        quantize = self.hybrid if quantize is None else quantize
        if quantize:
            s = float(np.abs(v).max() / 127)
            q = np.clip(np.round(v / s), -127, 127).astype(np.int8)
            return self.sg.new_tensor(name, shape, np.int8, data=q,
                                      quantization=QuantParams(scale=[s], zero_point=[0]))
        return self.sg.new_tensor(name, shape, F32, data=v)

    def state(self, name, shape):
        return self.sg.add_tensor(Tensor(name=name, shape=tuple(shape), is_variable=True))

    def finish(self, op, ins, out_shape, options):
        out = self.sg.new_tensor("y", out_shape, F32)
        self.sg.outputs.append(out)
        self.sg.add_operator(Operator(self.m.opcode(op), ins, [out], options=options))
        return self.m.to_bytes()


def lstm_model(op=Op.UNIDIRECTIONAL_SEQUENCE_LSTM, T=5, B=2, I=3, C=4, P=None, cifg=False,
               peephole=False, layer_norm=False, proj_bias=False, time_major=True,
               cell_clip=0.0, proj_clip=0.0, hybrid=False, asym=False, act=Act.TANH, seed=0):
    bld = _Builder(seed, hybrid)
    n_out = P or C
    seq = op == Op.UNIDIRECTIONAL_SEQUENCE_LSTM
    xshape = ((T, B, I) if time_major else (B, T, I)) if seq else (B, I)
    x = bld.sg.new_tensor("x", xshape, F32)
    bld.sg.inputs.append(x)
    w, vec = bld.weight, lambda n, s: bld.weight(n, s, quantize=False)
    peep = lambda n: w(n, (C,)) if peephole else None  # hybrid peepholes are int8 too
    ins = [x,
           None if cifg else w("xi", (C, I)), w("xf", (C, I)), w("xc", (C, I)), w("xo", (C, I)),
           None if cifg else w("hi", (C, n_out)), w("hf", (C, n_out)), w("hc", (C, n_out)),
           w("ho", (C, n_out)),
           None if cifg else peep("pi"), peep("pf"), peep("po"),
           None if cifg else vec("bi", (C,)), vec("bf", (C,)), vec("bc", (C,)), vec("bo", (C,)),
           w("proj", (n_out, C)) if P else None,
           vec("pb", (n_out,)) if (P and proj_bias) else None,
           bld.state("h", (B, n_out)), bld.state("c", (B, C))]
    if layer_norm:
        ins += [None if cifg else vec("li", (C,)), vec("lf", (C,)), vec("lc", (C,)),
                vec("lo", (C,))]
    else:
        ins += [None] * 4
    if seq:
        opts = UnidirectionalSequenceLSTMOptions(
            fused_activation_function=act, cell_clip=cell_clip, proj_clip=proj_clip,
            time_major=time_major, asymmetric_quantize_inputs=asym)
        out_shape = (T, B, n_out) if time_major else (B, T, n_out)
    else:
        opts = LSTMOptions(fused_activation_function=act, cell_clip=cell_clip,
                           proj_clip=proj_clip, asymmetric_quantize_inputs=asym)
        out_shape = (B, n_out)
    return bld.finish(op, ins, out_shape, opts), xshape


def rnn_model(op=Op.UNIDIRECTIONAL_SEQUENCE_RNN, T=6, B=3, I=5, U=7, time_major=True,
              hybrid=False, asym=False, act=Act.TANH, seed=0):
    bld = _Builder(seed, hybrid)
    seq = op == Op.UNIDIRECTIONAL_SEQUENCE_RNN
    xshape = ((T, B, I) if time_major else (B, T, I)) if seq else (B, I)
    x = bld.sg.new_tensor("x", xshape, F32)
    bld.sg.inputs.append(x)
    ins = [x, bld.weight("w", (U, I)), bld.weight("r", (U, U), scale=0.3),
           bld.weight("b", (U,), quantize=False), bld.state("h", (B, U))]
    if seq:
        opts = SequenceRNNOptions(time_major=time_major, fused_activation_function=act,
                                  asymmetric_quantize_inputs=asym)
        out_shape = (T, B, U) if time_major else (B, T, U)
    else:
        opts = RNNOptions(fused_activation_function=act, asymmetric_quantize_inputs=asym)
        out_shape = (B, U)
    return bld.finish(op, ins, out_shape, opts), xshape


def compare_invokes(content: bytes, xshape, invokes=3, seed=1):
    rng = np.random.default_rng(seed)
    ours = Interpreter(model_content=content)
    ref = litert_interpreter(content)
    ours.allocate_tensors()
    ref.allocate_tensors()
    for _ in range(invokes):
        x = rng.standard_normal(xshape).astype(F32)
        outs = []
        for it in (ours, ref):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
        got, exp = outs
        assert got.shape == exp.shape and got.dtype == exp.dtype
        err = float(np.max(np.abs(got.astype(np.float64) - exp)))
        assert err <= TOL * max(float(np.ptp(exp)), 1e-6), f"max error {err:g}"


LSTM_CASES = {
    "basic": dict(),
    "cifg": dict(cifg=True),
    "peephole": dict(peephole=True),
    "projection": dict(P=3),
    "projection_bias_clip": dict(P=3, proj_bias=True, proj_clip=0.3),
    "layer_norm": dict(layer_norm=True),
    "layer_norm_cifg": dict(layer_norm=True, cifg=True),
    "batch_major": dict(time_major=False),
    "cell_clip": dict(cell_clip=0.5, peephole=True),
    "relu_cell": dict(act=Act.RELU),
}


@pytest.mark.parametrize("hybrid,asym", [(False, False), (True, False), (True, True)],
                         ids=["float", "hybrid", "hybrid_asym"])
@pytest.mark.parametrize("case", list(LSTM_CASES))
def test_unidirectional_sequence_lstm(case, hybrid, asym):
    compare_invokes(*lstm_model(hybrid=hybrid, asym=asym, **LSTM_CASES[case]))


@pytest.mark.parametrize("hybrid", [False, True])
@pytest.mark.parametrize("case", ["basic", "projection_bias_clip", "layer_norm", "cifg"])
def test_lstm_single_step(case, hybrid):
    kw = {k: v for k, v in LSTM_CASES[case].items() if k != "time_major"}
    compare_invokes(*lstm_model(op=Op.LSTM, hybrid=hybrid, **kw))


@pytest.mark.parametrize("op", [Op.UNIDIRECTIONAL_SEQUENCE_RNN, Op.RNN],
                         ids=["sequence", "single_step"])
@pytest.mark.parametrize("hybrid,asym", [(False, False), (True, False), (True, True)],
                         ids=["float", "hybrid", "hybrid_asym"])
@pytest.mark.parametrize("act", [Act.TANH, Act.RELU, Act.NONE])
def test_rnn(op, hybrid, asym, act):
    compare_invokes(*rnn_model(op=op, hybrid=hybrid, asym=asym, act=act))


def test_sequence_rnn_batch_major():
    compare_invokes(*rnn_model(time_major=False, hybrid=True))


def test_state_persists_until_reset():
    content, xshape = lstm_model()
    it = Interpreter(model_content=content)
    it.allocate_tensors()
    x = np.random.default_rng(3).standard_normal(xshape).astype(F32)
    runs = []
    for _ in range(2):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        runs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    assert not np.array_equal(runs[0], runs[1])  # the state carried over
    it.reset_all_variables()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), runs[0])


def test_state_must_be_a_variable():
    content, _ = lstm_model()
    m = wb.load(content)
    m.main.operators[0].inputs[19].is_variable = False
    with pytest.raises(wb.ModelError, match="variable"):
        Interpreter(m).allocate_tensors()


@pytest.mark.parametrize("mode", ["float", "dynamic"])
def test_keras_lstm_converts_to_a_while_loop_and_runs(mode):
    """What TF 2.21 + Keras 3 actually emit for an LSTM layer: a WHILE loop of FULLY_CONNECTED
    (hybrid in dynamic-range mode), SPLIT, LOGISTIC, TANH and MUL."""
    tf = pytest.importorskip("tensorflow")
    import keras

    if mode not in _CACHE:
        keras.utils.set_random_seed(0)
        inp = keras.Input((6, 32), batch_size=1)
        model = keras.Model(inp, keras.layers.LSTM(32, return_sequences=True)(inp))
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "dynamic":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        _CACHE[mode] = conv.convert()
    content = _CACHE[mode]
    names = {op.name for _, _, op in wb.load(content).iter_ops()}
    assert "WHILE" in names and "UNIDIRECTIONAL_SEQUENCE_LSTM" not in names
    x = np.random.default_rng(0).standard_normal((1, 6, 32)).astype(F32)
    outs = []
    for it in (Interpreter(model_content=content), litert_interpreter(content)):
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    # Hybrid: a float rounding difference upstream may flip one run-time quantization step.
    tol = (1e-4 if mode == "float" else 1e-3) * float(np.ptp(outs[1]))
    assert np.max(np.abs(outs[0] - outs[1])) <= tol


# -- bidirectional ---------------------------------------------------------------------------------

def _bidi_io(bld, T, B, I, time_major, aux):
    xshape = (T, B, I) if time_major else (B, T, I)
    x = bld.sg.new_tensor("x", xshape, F32)
    bld.sg.inputs.append(x)
    a = None
    if aux:
        a = bld.sg.new_tensor("aux", xshape[:2] + (aux,), F32)
        bld.sg.inputs.append(a)
    return x, a, xshape


def _bidi_finish(bld, op, ins, T, B, fo, bo, time_major, merge, options):
    def shape(n):
        return (T, B, n) if time_major else (B, T, n)
    outs = [bld.sg.new_tensor("y", shape(fo + bo), F32)] if merge else \
        [bld.sg.new_tensor("y_fw", shape(fo), F32), bld.sg.new_tensor("y_bw", shape(bo), F32)]
    bld.sg.outputs.extend(outs)
    bld.sg.add_operator(Operator(bld.m.opcode(op), ins, outs, options=options))
    return bld.m.to_bytes()


def bidi_lstm_model(T=4, B=2, I=3, C=4, merge=False, time_major=True, aux=0,
                    aux_weights=False, hybrid=False, seed=0):
    from workbench.ir.ops import BidirectionalSequenceLSTMOptions

    bld = _Builder(seed, hybrid)
    x, a, xshape = _bidi_io(bld, T, B, I, time_major, aux)
    w, vec = bld.weight, lambda n, s: bld.weight(n, s, quantize=False)
    ins = [x]
    for d in ("fw", "bw"):
        n_in = aux if (d == "bw" and aux and not aux_weights) else I
        ins += [w(f"{d}{g}", (C, n_in)) for g in "ifco"]
        ins += [w(f"{d}h{g}", (C, C)) for g in "ifco"]
        ins += [None] * 3
        ins += [vec(f"{d}b{g}", (C,)) for g in "ifco"]
        ins += [None, None]
    ins += [bld.state("fwh", (B, C)), bld.state("fwc", (B, C)), bld.state("bwh", (B, C)),
            bld.state("bwc", (B, C)), a]
    for d in ("fw", "bw"):
        ins += [w(f"{d}a{g}", (C, aux)) for g in "ifco"] if aux_weights else [None] * 4
    opts = BidirectionalSequenceLSTMOptions(fused_activation_function=Act.TANH,
                                            merge_outputs=merge, time_major=time_major)
    content = _bidi_finish(bld, Op.BIDIRECTIONAL_SEQUENCE_LSTM, ins, T, B, C, C, time_major,
                           merge, opts)
    return content, [xshape] + ([xshape[:2] + (aux,)] if aux else [])


def bidi_rnn_model(T=5, B=2, I=3, U=4, merge=False, time_major=True, aux=0,
                   aux_weights=False, hybrid=False, seed=0):
    from workbench.ir.ops import BidirectionalSequenceRNNOptions

    bld = _Builder(seed, hybrid)
    x, a, xshape = _bidi_io(bld, T, B, I, time_major, aux)
    ins = [x]
    for d in ("fw", "bw"):
        n_in = aux if (d == "bw" and aux and not aux_weights) else I
        ins += [bld.weight(f"{d}w", (U, n_in)), bld.weight(f"{d}r", (U, U), scale=0.3),
                bld.weight(f"{d}b", (U,), quantize=False), bld.state(f"{d}h", (B, U))]
    ins += [a, bld.weight("fwa", (U, aux)) if aux_weights else None,
            bld.weight("bwa", (U, aux)) if aux_weights else None]
    opts = BidirectionalSequenceRNNOptions(time_major=time_major, merge_outputs=merge,
                                           fused_activation_function=Act.TANH)
    content = _bidi_finish(bld, Op.BIDIRECTIONAL_SEQUENCE_RNN, ins, T, B, U, U, time_major,
                           merge, opts)
    return content, [xshape] + ([xshape[:2] + (aux,)] if aux else [])


def compare_multi(content: bytes, shapes, invokes=2, seed=2):
    rng = np.random.default_rng(seed)
    ours, ref = Interpreter(model_content=content), litert_interpreter(content)
    ours.allocate_tensors()
    ref.allocate_tensors()
    for _ in range(invokes):
        xs = [rng.standard_normal(s).astype(F32) for s in shapes]
        outs = []
        for it in (ours, ref):
            for d, x in zip(it.get_input_details(), xs):
                it.set_tensor(d["index"], x)
            it.invoke()
            outs.append([it.get_tensor(d["index"]).copy() for d in it.get_output_details()])
        for got, exp in zip(*outs):
            assert got.shape == exp.shape
            assert np.max(np.abs(got - exp)) <= TOL * max(float(np.ptp(exp)), 1e-6)


BIDI_CASES = {
    "separate": dict(),
    "merged": dict(merge=True),
    "batch_major": dict(time_major=False),
    "batch_major_merged": dict(time_major=False, merge=True),
    # LiteRT needs the aux input as wide as the input here (it steps the aux input with the
    # input's width, and checks the backward weights against the input's width).
    "aux_weights": dict(aux=3, aux_weights=True),
    "stacked_aux": dict(aux=3),
}


@pytest.mark.parametrize("hybrid", [False, True], ids=["float", "hybrid"])
@pytest.mark.parametrize("case", list(BIDI_CASES))
def test_bidirectional_sequence_lstm(case, hybrid):
    if case == "batch_major_merged":
        # Fresh LiteRT interpreters on the same input disagree with each other here: its
        # batch-major merged path reads memory it never initialized.
        pytest.skip("LiteRT defect: non-deterministic batch-major merged outputs")
    compare_multi(*bidi_lstm_model(hybrid=hybrid, **BIDI_CASES[case]))


@pytest.mark.parametrize("hybrid", [False, True], ids=["float", "hybrid"])
@pytest.mark.parametrize("case", list(BIDI_CASES))
def test_bidirectional_sequence_rnn(case, hybrid):
    kw = BIDI_CASES[case]
    if hybrid and kw.get("time_major", True):
        # LiteRT's hybrid time-major kernel wraps the sequence in an extra loop over time (it
        # runs the whole sequence T times, carrying the state) and may crash when merging;
        # we run it once, as the float kernel and the op's definition do.
        pytest.skip("LiteRT defect: hybrid time-major BIDIRECTIONAL_SEQUENCE_RNN")
    if kw.get("time_major") is False and kw.get("aux") and not kw.get("aux_weights"):
        pytest.skip("LiteRT defect: batch-major backward RNN ignores the aux input")
    compare_multi(*bidi_rnn_model(hybrid=hybrid, **kw))


@pytest.mark.parametrize("hybrid", [False, True])
def test_empty_sequence(hybrid):
    """A sequence resized to zero steps runs to an empty output, as in LiteRT (the input's
    gate parts, computed for all steps at once, must cope with none)."""
    content, xshape = lstm_model(T=4, B=2, hybrid=hybrid)
    shape = [0, *xshape[1:]]
    outs = []
    for it in (Interpreter(model_content=content), litert_interpreter(content)):
        it.resize_tensor_input(it.get_input_details()[0]["index"], shape)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], np.zeros(shape, F32))
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    assert outs[0].shape == outs[1].shape == (0, 2, 4)
