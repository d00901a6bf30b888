"""The interpreter against LiteRT: every output and intermediate tensor on the float32 corpus
(within 1e-4 of each tensor's dynamic range), and the tf.lite.Interpreter API surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import workbench.kernels  # noqa: F401  (wb.kernels.Kernel)

import workbench as wb
from tests import corpus
from tests.litert_oracle import (
    assert_within_range,
    check_every_op_in_isolation,
    litert_interpreter,
    litert_values,
    random_inputs,
)
from workbench.errors import InputError, OpError, UnsupportedOpError
from workbench.interpreter import CaptureHook, Interpreter, TimingHook
from workbench.ir.graph import Operator
from workbench.ir.ops import Op

ROOT = Path(__file__).resolve().parents[1]
FLOAT = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"


def _structured(details, seed):
    """Non-random inputs: ramps and constants that hit edges (zeros, large values)."""
    out = []
    for d in details:
        shape, dt = d["shape"], np.dtype(d["dtype"])
        n = int(np.prod(shape))
        if seed == 1:
            x = np.linspace(-4, 4, n).reshape(shape)
        else:
            x = np.zeros(shape)
        out.append(x.astype(dt) if dt.kind == "f" else np.zeros(shape, dt))
    return out


def compare_with_litert(content: bytes, inputs_for) -> int:
    """Run both; assert every tensor LiteRT preserved matches ours. Returns tensors compared."""
    ref = litert_interpreter(content, preserve_all=True)
    ref.allocate_tensors()
    ours = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    ours.allocate_tensors()
    xs = inputs_for(ref.get_input_details())
    for d, x in zip(ref.get_input_details(), xs):
        ref.set_tensor(d["index"], x)
    for d, x in zip(ours.get_input_details(), xs):
        ours.set_tensor(d["index"], x)
    ref.invoke()
    ours.invoke()
    values = litert_values(ref, content)
    compared = 0
    for d in ours.get_tensor_details():
        if d["index"] not in values:
            continue
        assert_within_range(ours.get_tensor(d["index"]), values[d["index"]], d["name"])
        compared += 1
    return compared


FLOAT_MODELS = corpus.models_with_mode("float32")
FLOAT_CASES = [pytest.param(n, marks=[pytest.mark.slow] if s.big else [], id=n)
               for n, s in FLOAT_MODELS.items()]


# End to end, float32 rounding differences (LiteRT's and ours) accumulate. In EfficientNetB0
# with random weights, activations reach +-900 before sigmoids whose outputs span only ~1, so
# the sigmoid outputs of blocks 6-7 and the top activation exceed the 1e-4-of-range tolerance
# even with float64 accumulation on our side (LiteRT's own rounding dominates). LiteRT fails
# the same contract against itself: its reference kernels (BUILTIN_REF) deviate from its
# optimized ones by up to 7.3x the tolerance on those tensors (ours: up to 14x; random input,
# measured 2026-11-22 by comparing all three on every preserved tensor). Every op matches in
# isolation (test below), so the end-to-end deviation is a known, measured one.
_E2E_KNOWN = {"efficientnet_b0": "float32 error amplification through sigmoids (see above)"}


def _e2e_param(n, s):
    marks = [pytest.mark.slow] if s.big else []
    if n in _E2E_KNOWN:
        marks.append(pytest.mark.xfail(reason=_E2E_KNOWN[n], strict=True, raises=AssertionError))
    return pytest.param(n, marks=marks, id=n)


@pytest.mark.parametrize("name", [_e2e_param(n, s) for n, s in FLOAT_MODELS.items()])
@pytest.mark.parametrize("inputs", ["random", "ramp", "zeros"])
def test_float32_corpus_matches_litert(name, inputs):
    path = corpus.model_path(name, "float32")
    content = path.read_bytes()
    try:
        Interpreter(model_content=content).allocate_tensors()
    except UnsupportedOpError as e:
        pytest.skip(f"not all ops have kernels yet: {e}")
    make = {"random": lambda d: random_inputs(d, 0), "ramp": lambda d: _structured(d, 1),
            "zeros": lambda d: _structured(d, 2)}[inputs]
    assert compare_with_litert(content, make) > 0


@pytest.mark.parametrize("name", FLOAT_CASES)
def test_float32_corpus_every_op_in_isolation(name):
    """Each of our kernels, fed LiteRT's own values of its inputs, reproduces LiteRT's output
    within 1e-4 of that output's dynamic range: the kernel contract, free of accumulation."""
    content = corpus.model_path(name, "float32").read_bytes()
    assert check_every_op_in_isolation(content, 0)


def test_quickstart_model_matches_litert():
    assert compare_with_litert(FLOAT.read_bytes(), lambda d: random_inputs(d, 3)) >= 10


def _detail_types(d: dict) -> dict:
    return {k: (type(v).__name__, sorted(v) if isinstance(v, dict) else None) for k, v in
            d.items()}


def test_details_have_litert_keys_and_types():
    content = FLOAT.read_bytes()
    ref = litert_interpreter(content)
    ours = Interpreter(model_content=content)
    ref.allocate_tensors()
    ours.allocate_tensors()
    for a, b in [(ours.get_input_details(), ref.get_input_details()),
                 (ours.get_output_details(), ref.get_output_details())]:
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert _detail_types(x) == _detail_types(y)
            assert x["name"] == y["name"] and x["index"] == y["index"]
            assert x["dtype"] is y["dtype"]
            np.testing.assert_array_equal(x["shape"], y["shape"])
            assert x["shape"].dtype == y["shape"].dtype
    assert ours.get_signature_list() == ref.get_signature_list()


def test_signature_runner_and_run_agree_with_litert():
    content = FLOAT.read_bytes()
    ref = litert_interpreter(content)
    ours = Interpreter(wb.load(content))
    (key,) = ref.get_signature_list()
    (in_name,) = ref.get_signature_list()[key]["inputs"]
    x = random_inputs(ref.get_input_details(), 5)[0]
    expected = ref.get_signature_runner(key)(**{in_name: x})
    got = ours.get_signature_runner(key)(**{in_name: x})
    assert expected.keys() == got.keys()
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-5, atol=1e-6)
    (out,) = ours.run(x)
    np.testing.assert_allclose(out, next(iter(expected.values())), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError):
        ours.get_signature_runner(key)(wrong=x)


def test_resize_input_propagates_shapes():
    content = FLOAT.read_bytes()
    ours = Interpreter(model_content=content)
    ref = litert_interpreter(content)
    for it in (ours, ref):
        i = it.get_input_details()[0]["index"]
        it.resize_tensor_input(i, [3, 32, 32, 3])
        it.allocate_tensors()
    x = np.random.default_rng(1).standard_normal((3, 32, 32, 3)).astype(np.float32)
    for it in (ours, ref):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
    a = ours.get_tensor(ours.get_output_details()[0]["index"])
    b = ref.get_tensor(ref.get_output_details()[0]["index"])
    assert a.shape == b.shape == (3, 10)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.get_output_details()[0]["shape"], [3, 10])


def test_bad_inputs_raise_typed_errors():
    it = Interpreter(model_path=str(FLOAT))
    it.allocate_tensors()
    i = it.get_input_details()[0]["index"]
    with pytest.raises(InputError, match="type"):
        it.set_tensor(i, np.zeros((1, 32, 32, 3), np.float64))
    with pytest.raises(InputError, match="dimension mismatch"):
        it.set_tensor(i, np.zeros((1, 31, 32, 3), np.float32))
    with pytest.raises(InputError):
        it.get_tensor(10_000)
    with pytest.raises(InputError, match="inputs"):
        it.run([np.zeros((1, 32, 32, 3), np.float32)] * 2)
    with pytest.raises(InputError, match="not a list of integers"):
        it.resize_tensor_input(i, ["a", 3])
    with pytest.raises(InputError, match="negative"):
        it.resize_tensor_input(i, [-1, 32, 32, 3])


def test_allocate_again_keeps_inputs_as_litert():
    """Once allocated, allocate_tensors changes nothing until an input is resized: tensors set
    before it stay set (user code written for tf.lite.Interpreter calls it twice)."""
    x = np.random.default_rng(3).standard_normal((1, 32, 32, 3)).astype(np.float32)
    outs = []
    for it in (Interpreter(model_path=str(FLOAT)), litert_interpreter(FLOAT.read_bytes())):
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.allocate_tensors()
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)


def test_unknown_custom_op_is_named():
    m = wb.load(FLOAT)
    op = m.main.operators[3]
    m.main.replace_operator(op, Operator(m.opcode(custom_code="MyFancyOp"), op.inputs,
                                         op.outputs))
    with pytest.raises(UnsupportedOpError, match="MyFancyOp.*register_custom_op"):
        Interpreter(m).allocate_tensors()


def test_flex_op_is_named_with_its_cause():
    """A model converted with SELECT_TF_OPS carries TensorFlow ops as Flex* custom ops."""
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec((3, 3), tf.float32)], autograph=False)
    def f(x):
        return tf.linalg.inv(x) * 2.0

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                      tf.lite.OpsSet.SELECT_TF_OPS]
    with pytest.raises(UnsupportedOpError, match="FlexMatrixInverse.*'MatrixInverse'.*"
                                                 "SELECT_TF_OPS") as e:
        Interpreter(model_content=conv.convert()).allocate_tensors()
    assert e.value.op_name == "FlexMatrixInverse" and "operators[0]" in str(e.value)


def test_unforeseen_kernel_failure_is_one_op_error_naming_the_op():
    """A kernel exception that is not a WorkbenchError (a missing check) surfaces as one
    ``OpError`` naming the subgraph and op, with the original chained, from prepare or eval."""
    m = wb.load(FLOAT)
    op = m.main.operators[-1]
    m.main.replace_operator(op, Operator(m.opcode(custom_code="BrokenTest"), op.inputs,
                                         op.outputs))
    index = len(m.main.operators) - 1

    class Broken(wb.kernels.Kernel):
        fail_in = "eval"

        def prepare(self):
            if self.fail_in == "prepare":
                raise MemoryError("Unable to allocate 2.00 TiB")
            return [self.node.inputs[0].shape]

        def eval(self, inputs):
            return [inputs[0][(0,) * 9]]  # IndexError: too many indices

    wb.register_custom_op("BrokenTest", Broken)
    with pytest.raises(OpError, match=rf"subgraphs\[0\]\.operators\[{index}\] \(BrokenTest\): "
                       "eval failed: IndexError") as info:
        Interpreter(m).run(np.ones((1, 32, 32, 3), np.float32))
    assert isinstance(info.value.__cause__, IndexError)
    assert info.value.path == f"subgraphs[0].operators[{index}] (BrokenTest)"
    Broken.fail_in = "prepare"
    with pytest.raises(OpError, match="prepare failed: out of memory: Unable to allocate"):
        Interpreter(m).allocate_tensors()


def test_empty_recorded_shape_does_not_fold_a_stale_value():
    """A produced tensor recorded with a zero dimension looks like a known (empty) value until
    its kernel computes the real shape; ops downstream must not fold that stale value."""
    m = wb.load(FLOAT)
    sg = m.main
    fc = next(o for o in sg.operators if o.name == "FULLY_CONNECTED")
    logits = fc.outputs[0]
    n = logits.shape[-1]
    # FULLY_CONNECTED -> RESHAPE [1, n] -> [n, 1] -> RESHAPE back -> SOFTMAX; RESHAPE folds
    # constant (or known-empty) inputs at prepare.
    mid = sg.new_tensor("mid", (n, 1))
    back = sg.new_tensor("back", (1, n))
    for k, (src, dst, shape) in enumerate(((logits, mid, (n, 1)), (mid, back, (1, n)))):
        target = sg.new_tensor(f"target{k}", (2,), np.int32, data=np.array(shape, np.int32))
        sg.add_operator(Operator(m.opcode(Op.RESHAPE), [src, target], [dst]),
                        sg.index_of(fc) + 1 + k)
    softmax = sg.operators[-1]
    softmax.inputs[0] = back
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
    (want,) = Interpreter(m).run(x)
    assert [o.name for o in sg.operators][-4:] == ["FULLY_CONNECTED", "RESHAPE", "RESHAPE",
                                                   "SOFTMAX"]
    logits.shape = (1, 0)
    mid.shape = (0, 1)
    (got,) = Interpreter(m).run(x)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["float32", "dynamic", "int8"])
def test_empty_batch_gives_empty_outputs_through_every_op(mode):
    """Every op of a model fed an empty batch yields its empty output without running (as
    TFLite's kernels return early); the hybrid convolutions used to fail reshaping empties.
    (LiteRT agrees for float32 and int8; its hybrid depthwise refuses batch 0.)"""
    path = corpus.model_path("separable_conv", mode)
    it = Interpreter(model_path=str(path))
    d = it.get_input_details()[0]
    shape = (0, *d["shape"][1:])
    it.resize_tensor_input(d["index"], shape)
    (out,) = it.run(np.zeros(shape, d["dtype"]))
    want = it.get_output_details()[0]
    assert out.shape == (0, *want["shape"][1:]) and out.dtype == want["dtype"]
    if mode != "dynamic":
        ref = litert_interpreter(path.read_bytes())
        ref.resize_tensor_input(d["index"], shape)
        ref.allocate_tensors()
        ref.set_tensor(d["index"], np.zeros(shape, d["dtype"]))
        ref.invoke()
        assert ref.get_tensor(want["index"]).shape == out.shape


def test_hooks_time_and_capture_every_op():
    it = Interpreter(model_path=str(FLOAT))
    timing, capture = TimingHook(), CaptureHook()
    it.hooks += [timing, capture]
    x = np.ones((1, 32, 32, 3), np.float32)
    (out,) = it.run(x)
    n_ops = len(it.model.main.operators)
    assert len(timing.times) == n_ops and all(t >= 0 for t in timing.times.values())
    assert len(capture.tensors) == n_ops
    np.testing.assert_array_equal(capture.tensors[it.model.main.outputs[0].name], out)


def test_register_custom_op_runs_user_kernel():
    m = wb.load(FLOAT)
    sg = m.main
    op = sg.operators[-1]  # SOFTMAX -> a custom op computing 2 * x
    sg.replace_operator(op, Operator(m.opcode(custom_code="TimesTwoTest"), op.inputs,
                                     op.outputs))

    class TimesTwo(wb.kernels.Kernel):
        def prepare(self):
            return [self.node.inputs[0].shape]

        def eval(self, inputs):
            return [inputs[0] * np.float32(2)]

    wb.register_custom_op("TimesTwoTest", TimesTwo)
    x = np.ones((1, 32, 32, 3), np.float32)
    capture = CaptureHook()
    it = Interpreter(m)
    it.hooks.append(capture)
    (out,) = it.run(x)
    np.testing.assert_allclose(out, 2 * capture.tensors[op.inputs[0].name])


def test_oracle_tells_tensors_of_one_name_apart():
    """TF's 16x8 converter can give several tensors one name; the LiteRT comparisons key
    tensors by index, so a same-named tensor is never compared with another's value."""
    m = wb.load(FLOAT)
    sg = m.main
    clash = sg.operators[0].outputs[0].name
    sg.operators[1].outputs[0].name = clash
    content = m.to_bytes()
    assert [t.name for t in wb.load(content).main.tensors].count(clash) == 2
    assert check_every_op_in_isolation(content)
    assert compare_with_litert(content, lambda d: random_inputs(d, 0)) > 2
