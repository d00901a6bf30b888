"""SVDF against LiteRT, float32 and hybrid (int8 weights), built by hand with our IR (TF 2.21's
converter does not emit SVDF for Keras layers; keyword-spotting models carry it). The state is a
variable both runtimes carry across invokes, so each case runs several invokes (one with an
all-zero input) and compares every output."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kernels.test_recurrent import F32, _Builder
from tests.litert_oracle import litert_interpreter
from workbench.errors import UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import Op, SVDFOptions


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


def test_integer_svdf_is_reported_unsupported():
    from workbench import load

    m = load(svdf_model())
    x = m.main.inputs[0]
    x.dtype = 9  # INT8
    with pytest.raises(UnsupportedOpError, match="SVDF.*integer SVDF"):
        Interpreter(m).allocate_tensors()
