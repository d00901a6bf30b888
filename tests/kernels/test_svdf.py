"""SVDF against LiteRT, float32, hybrid (int8 weights) and integer (int8 input, int16 state),
built by hand with our IR (TF 2.21's converter does not emit SVDF for Keras layers;
keyword-spotting models carry it). The state is a variable both runtimes carry across invokes,
so each case runs several invokes (one with an all-zero input) and compares every output."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kernels.test_recurrent import F32, _Builder
from tests.litert_oracle import litert_interpreter
from workbench.errors import UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph, Tensor
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import Op, SVDFOptions, TensorType


def svdf_model(batch=2, n_in=3, filters=4, memory=5, rank=2, bias=True, hybrid=False,
               asym=False, act=Act.RELU, seed=0):
    bld = _Builder(seed, hybrid)
    x = bld.sg.new_tensor("x", (batch, n_in), F32)
    bld.sg.inputs.append(x)
    ins = [x, bld.weight("feature", (filters, n_in)), bld.weight("time", (filters, memory)),
           bld.weight("bias", (filters // rank,), quantize=False) if bias else None,
           bld.state("state", (batch, filters * memory))]
    return bld.finish(Op.SVDF, ins, (batch, filters // rank),
                      SVDFOptions(rank=rank, fused_activation_function=act,
                                  asymmetric_quantize_inputs=asym))


CASES = {
    "float": {}, "float_rank1": dict(rank=1), "float_no_bias": dict(bias=False, act=Act.NONE),
    "float_batch1": dict(batch=1, filters=6, rank=3, memory=2),
    "hybrid": dict(hybrid=True), "hybrid_asym": dict(hybrid=True, asym=True),
    "hybrid_tanh": dict(hybrid=True, act=Act.TANH, memory=7, n_in=9, filters=8, rank=4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_svdf_matches_litert_across_invokes(case):
    kw = CASES[case]
    content = svdf_model(**kw)
    ref, ours = litert_interpreter(content), Interpreter(model_content=content)
    for it in (ref, ours):
        it.allocate_tensors()
    rng = np.random.default_rng(4)
    shape = tuple(ref.get_input_details()[0]["shape"])
    # More invokes than the memory is long, so values cross from one filter's row into the
    # previous one's in the flat shift; one all-zero input.
    feeds = [rng.standard_normal(shape).astype(F32) for _ in range(9)]
    feeds.insert(2, np.zeros(shape, F32))
    feeds.append(rng.standard_normal(shape).astype(F32) * 4)
    for k, x in enumerate(feeds):
        outs = []
        for it in (ref, ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
        want, got = outs
        # The same products (exact int8 ones for hybrid); float sums in another order.
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * (float(np.ptp(want)) or 1.0)
                                   + 1e-6, err_msg=f"invoke {k}")
    ours.reset_all_variables()
    ref.reset_all_variables()
    for it in (ref, ours):
        it.set_tensor(it.get_input_details()[0]["index"], feeds[0])
        it.invoke()
    np.testing.assert_allclose(ours.get_tensor(ours.get_output_details()[0]["index"]),
                               ref.get_tensor(ref.get_output_details()[0]["index"]),
                               rtol=0, atol=1e-5)


def integer_svdf_model(batch=2, n_in=3, filters=4, memory=5, rank=2, bias=True, seed=0,
                       zx=3, zo=-5, state_scale=0.004, act=Act.RELU):
    rng = np.random.default_rng(seed)
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)

    def q(s, z=0):
        return QuantParams(scale=[s], zero_point=[z])

    x = sg.new_tensor("x", (batch, n_in), np.int8, quantization=q(0.05, zx))
    sg.inputs.append(x)
    wf = sg.new_tensor("wf", (filters, n_in), np.int8, quantization=q(0.01),
                       data=rng.integers(-127, 128, (filters, n_in)).astype(np.int8))
    wt = sg.new_tensor("wt", (filters, memory), np.int16, quantization=q(0.0002),
                       data=rng.integers(-3000, 3000, (filters, memory)).astype(np.int16))
    b = sg.new_tensor("b", (filters // rank,), np.int32, quantization=q(0.0005),
                      data=rng.integers(-2000, 2000, filters // rank).astype(np.int32)) \
        if bias else None
    st = sg.add_tensor(Tensor(name="state", shape=(batch, filters * memory), is_variable=True,
                              dtype=TensorType.INT16, quantization=q(state_scale)))
    y = sg.new_tensor("y", (batch, filters // rank), np.int8, quantization=q(0.02, zo))
    sg.outputs.append(y)
    sg.add_operator(Operator(m.opcode(Op.SVDF), [x, wf, wt, b, st], [y],
                             options=SVDFOptions(rank=rank, fused_activation_function=act)))
    return m.to_bytes()


INTEGER_CASES = {
    "int8": {}, "no_bias": dict(bias=False), "rank3": dict(batch=1, filters=6, rank=3, memory=2),
    "wide": dict(n_in=17, filters=8, memory=10, rank=1),
    "zero_points": dict(zx=-128, zo=127, seed=2),
    "saturating_state": dict(state_scale=1e-5, seed=3),  # the int16 state clamps
}


@pytest.mark.parametrize("case", list(INTEGER_CASES))
def test_integer_svdf_bit_exact_across_invokes(case):
    """Integer SVDF (int8 input, int16 state) against LiteRT, every invoke bit-identical,
    including a reset of the state."""
    content = integer_svdf_model(**INTEGER_CASES[case])
    ref, ours = litert_interpreter(content), Interpreter(model_content=content)
    for it in (ref, ours):
        it.allocate_tensors()
    rng = np.random.default_rng(1)
    shape = tuple(ref.get_input_details()[0]["shape"])
    feeds = [rng.integers(-128, 128, shape).astype(np.int8) for _ in range(12)]
    for k, x in enumerate(feeds):
        if k == 8:
            ref.reset_all_variables()
            ours.reset_all_variables()
        outs = []
        for it in (ref, ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
        np.testing.assert_array_equal(outs[1], outs[0], err_msg=f"invoke {k}")


def test_integer_svdf_needs_relu_as_in_litert():
    content = integer_svdf_model(act=Act.NONE)
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], np.zeros((2, 3), np.int8))
    with pytest.raises(RuntimeError, match="kTfLiteActRelu"):
        ref.invoke()
    with pytest.raises(UnsupportedOpError, match="SVDF.*RELU"):
        Interpreter(model_content=content).allocate_tensors()


def test_uint8_svdf_is_reported_unsupported():
    from workbench import load

    m = load(svdf_model())
    m.main.inputs[0].dtype = TensorType.UINT8
    with pytest.raises(UnsupportedOpError, match="SVDF.*UINT8 input"):
        Interpreter(m).allocate_tensors()
