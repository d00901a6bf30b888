"""wb.quantize against LiteRT and TensorFlow's converter.

Oracles: LiteRT's built-in kernels run every file we write (and every integer tensor of our
interpreter's run must equal LiteRT's); TF 2.21's converter output for the same float model
(tests/corpus.py) is the baseline for accuracy (SQNR against the float model), op versions and
file size. Structure checks read the written file back."""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import tempfile
from importlib import metadata

import numpy as np
import pytest

import workbench as wb
from tests import corpus
from tests.litert_oracle import litert_interpreter
from workbench.errors import InputError
from workbench.interpreter import Interpreter
from workbench.ir.ops import BuiltinOperator as B
from workbench.ir.ops import TensorType as T

SMALL = ("mixed", "conv1d", "separable_conv", "conv2d_transpose", "attention_layernorm",
         "embedding", "prelu", "bilinear_upsampling")
MODES = ("int8", "int16x8", "dynamic", "weight_only", "float16")
#: The corpus's op-coverage models: more op families.
COVERAGE = corpus.COVERAGE_MODELS
CALIBRATION = corpus.CALIBRATION_SAMPLES  # the samples TF's converter calibrated with

_KNOWN: dict[tuple[str, str], str] = {}


def _float_path(name: str):
    p = corpus.model_path(name, "float32")
    if p is None:
        pytest.skip(corpus.unsupported_reason(name, "float32") or "not built")
    return p


@functools.cache
def _quantized(name: str, mode: str, **kw) -> bytes:
    data = corpus.sample_inputs(name, CALIBRATION)
    q = wb.quantize(_float_path(name), mode, data, progress=False, **kw)
    return q.to_bytes()


def _cases(models, modes, known=True):
    out = []
    for n in models:
        for m in modes:
            marks = [pytest.mark.slow] if corpus.MODELS[n].big else []
            if known and (n, m) in _KNOWN:
                marks.append(pytest.mark.xfail(reason=_KNOWN[n, m], strict=True,
                                               raises=AssertionError))
            out.append(pytest.param(n, m, marks=marks, id=f"{n}-{m}"))
    return out


def _feed(it, xs):
    """Set float samples on an interpreter, quantizing them for integer inputs."""
    for d, x in zip(it.get_input_details(), xs):
        x = np.asarray(x)
        if np.dtype(d["dtype"]) != x.dtype and x.dtype == np.float32:
            s, z = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / s) + z, info.min, info.max).astype(d["dtype"])
        it.set_tensor(d["index"], x)


def _outputs_float(it) -> list[np.ndarray]:
    out = []
    for d in it.get_output_details():
        y = it.get_tensor(d["index"]).astype(np.float64)
        if np.dtype(d["dtype"]).kind in "iu" and d["quantization"] != (0.0, 0):
            s, z = d["quantization"]
            y = (y - z) * s
        out.append(y)
    return out


def _sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    noise = np.sum((got - ref) ** 2)
    return float(10 * np.log10(np.sum(ref ** 2) / max(noise, 1e-30)))


def _litert_outputs(content: bytes, xs) -> list[np.ndarray]:
    it = litert_interpreter(content)
    it.allocate_tensors()
    _feed(it, xs)
    it.invoke()
    return _outputs_float(it)


def _float_outputs(name: str, xs) -> list[np.ndarray]:
    return [y.astype(np.float64) for y in Interpreter(model_path=str(_float_path(name))).run(xs)]


# ------------------------------------------------------------------------------------------
# Every model, every mode: LiteRT runs it, and our interpreter agrees with LiteRT
# ------------------------------------------------------------------------------------------
def _compare_with_litert(content: bytes, xs, mode: str, float_ops: bool | None = None) -> int:
    """Run ``content`` in LiteRT and ours on ``xs``; integer tensors must be identical.

    ``float_ops``: the model keeps float ops between integer ones (denylist). Float kernels
    agree with LiteRT only to ~1e-6 (summation order), so a value on a rounding boundary may
    QUANTIZE one step apart, and that step travels on: then integer tensors may differ by at
    most 2 steps on at most 1% of their elements. None: decided from the model (an integer
    mode whose file keeps float ops other than QUANTIZE/DEQUANTIZE).

    Outputs of WHILE ops are not compared: LiteRT does not keep the final values of loop
    variables that pass through unchanged (its preserved tensors hold stale data there)."""
    model = wb.load(content)
    if float_ops is None:
        float_ops = mode in ("int8", "int16x8") and any(
            op.code not in (B.QUANTIZE, B.DEQUANTIZE) and op.outputs and
            op.outputs[0] is not None and op.outputs[0].dtype == T.FLOAT32
            for op in model.main.operators)
    loop_outputs = {k for k, t in enumerate(model.main.tensors) for op in model.main.operators
                    if op.code == B.WHILE and any(o is t for o in op.outputs)}
    ref = litert_interpreter(content, preserve_all=True)
    ref.allocate_tensors()
    ours = Interpreter(model_content=content)
    ours.allocate_tensors()
    _feed(ref, xs)
    _feed(ours, xs)
    ref.invoke()
    ours.invoke()
    outputs = {d["index"] for d in ref.get_output_details()}
    n = 0
    compared = set()
    for d in ours.get_tensor_details():
        try:
            expected = ref.get_tensor(d["index"])
        except ValueError:  # LiteRT keeps no data for some tensors (WHILE plumbing)
            continue
        if d["index"] in loop_outputs and d["index"] not in outputs:
            continue
        got = ours.get_tensor(d["index"])
        compared.add(d["index"])
        assert got.shape == expected.shape and got.dtype == expected.dtype, d["name"]
        if expected.dtype.kind in "iub" and float_ops:
            diff = np.abs(got.astype(np.int64) - expected)
            assert diff.max(initial=0) <= 2 and np.mean(diff > 0) <= 0.01, d["name"]
            n += 1
        elif expected.dtype.kind in "iub":
            np.testing.assert_array_equal(got, expected, err_msg=d["name"])
            n += 1
        elif mode == "dynamic":
            # Hybrid kernels quantize activations at run time, so a last-bit float difference
            # upstream can move one step, which then travels: whole-model outputs are compared
            # by SQNR, and each hybrid op fed LiteRT's inputs is exact (_hybrid_ops_alone).
            if d["index"] in outputs:
                assert _sqnr(expected.astype(np.float64), got.astype(np.float64)) > 25, \
                    d["name"]
        else:
            rng = float(np.ptp(expected)) if expected.size else 0.0
            assert np.max(np.abs(got.astype(np.float64) - expected), initial=0) <= \
                1e-4 * max(rng, 1e-6) + 1e-6, d["name"]
    assert outputs <= compared
    return n


@pytest.mark.parametrize("name,mode", _cases(SMALL + COVERAGE +
                                              ("mobilenet_v2", "mobilenet_v3_small"), MODES))
def test_litert_runs_it_and_integer_tensors_are_bit_identical(name, mode):
    content = _quantized(name, mode)
    xs = corpus.sample_inputs(name, 1, seed=1)[0]
    n_int = _compare_with_litert(content, xs, mode)
    if mode in ("int8", "int16x8"):
        assert n_int > 0
    if mode == "dynamic":
        _hybrid_ops_alone(content, xs)


def _hybrid_ops_alone(content: bytes, xs) -> None:
    """Every hybrid op (float activation, int8 constant weights), run alone in our interpreter
    on LiteRT's own inputs for it, gives LiteRT's output (TRANSPOSE_CONV within 1e-6 of range:
    its float accumulation order differs)."""
    from workbench.ir.graph import Model, Operator, Subgraph

    ref = litert_interpreter(content, preserve_all=True)
    ref.allocate_tensors()
    _feed(ref, xs)
    ref.invoke()
    model = wb.load(content)
    index = {id(t): i for i, t in enumerate(model.main.tensors)}
    for op in model.main.operators:
        ins = [t for t in op.inputs if t is not None]
        if not (any(t.dtype == T.INT8 and t.is_constant for t in ins) and
                any(t.dtype == T.FLOAT32 and not t.is_constant for t in ins)):
            continue
        m = Model()
        sg = Subgraph(name="main")
        m.subgraphs.append(sg)
        sg.inputs = [t for t in ins if not t.is_constant]
        sg.outputs = list(op.outputs)
        sg.add_operator(Operator(m.opcode(op.code), list(op.inputs), list(op.outputs),
                                 options=op.options))
        got = Interpreter(m).run([ref.get_tensor(index[id(t)]) for t in sg.inputs])[0]
        exp = ref.get_tensor(index[id(op.outputs[0])])
        if op.code == B.TRANSPOSE_CONV:
            assert np.max(np.abs(got - exp)) <= 1e-6 * np.ptp(exp), op.outputs[0].name
        else:
            np.testing.assert_array_equal(got, exp, err_msg=f"{op.name} {op.outputs[0].name}")


# ------------------------------------------------------------------------------------------
# Accuracy and size against TensorFlow's converter
# ------------------------------------------------------------------------------------------
_TF_MODE = {"int8": "int8_float_io", "int16x8": "int16x8", "dynamic": "dynamic",
            "float16": "float16"}


@pytest.mark.parametrize("name,mode", _cases(SMALL + ("mobilenet_v2",), tuple(_TF_MODE),
                                              known=False))
def test_accuracy_at_least_tf_converter(name, mode):
    """SQNR of the quantized outputs against the float model, on data not used to calibrate,
    is within 1 dB of (or better than) TF's converter's file for the same model and mode."""
    tf_path = corpus.model_path(name, _TF_MODE[mode])
    if tf_path is None:
        pytest.skip(corpus.unsupported_reason(name, _TF_MODE[mode]) or "TF cannot convert")
    ref, ours, theirs = [], [], []
    for xs in corpus.sample_inputs(name, 2 if corpus.MODELS[name].big else 4, seed=2):
        ref.append(_float_outputs(name, xs))
        ours.append(_litert_outputs(_quantized(name, mode), xs))
        try:
            theirs.append(_litert_outputs(tf_path.read_bytes(), xs))
        except RuntimeError as e:  # some of TF's 16x8 files do not run in LiteRT
            assert mode == "int16x8", e
    for k in range(len(ref[0])):
        r = np.concatenate([y[k].ravel() for y in ref])
        mine = _sqnr(r, np.concatenate([y[k].ravel() for y in ours]))
        if theirs:
            tf = _sqnr(r, np.concatenate([y[k].ravel() for y in theirs]))
            assert mine >= tf - 1.0, (k, mine, tf)
        else:
            assert mine > 20.0, (k, mine)


@pytest.mark.parametrize("name,mode", _cases(SMALL + ("mobilenet_v2",), tuple(_TF_MODE),
                                              known=False))
def test_size_within_2_percent_of_tf(name, mode):
    """Files no more than 2% larger than TF's converter's (equal constants share a buffer, as
    in TF's files); smaller is fine (TF's 16x8 files carry more than they need)."""
    tf_path = corpus.model_path(name, _TF_MODE[mode])
    if tf_path is None:
        pytest.skip("TF cannot convert")
    ours, theirs = len(_quantized(name, mode)), tf_path.stat().st_size
    assert ours <= 1.02 * theirs, (ours, theirs)
    if mode == "int8" and corpus.MODELS[name].big:
        assert abs(ours - theirs) <= 0.005 * theirs, (ours, theirs)


@pytest.mark.parametrize("name,mode", _cases(SMALL, ("int8", "dynamic", "float16"), False) +
                         _cases(("mobilenet_v2",), ("int8",), False))
def test_op_versions_equal_tf_converter(name, mode):
    """Op versions follow op_version.cc as TF's converter applies it: for every op type both
    files contain, the same version."""
    tf_path = corpus.model_path(name, _TF_MODE[mode])
    if tf_path is None:
        pytest.skip("TF cannot convert")
    mine = {o.name: o.version for o in wb.load(_quantized(name, mode)).operator_codes}
    theirs = {o.name: o.version for o in wb.load(tf_path).operator_codes}
    common = set(mine) & set(theirs)
    assert common
    assert {k: mine[k] for k in common} == {k: theirs[k] for k in common}


@pytest.mark.parametrize("name", SMALL)
def test_weights_equal_tf_converter(name):
    """Same float weights -> the same int8 weights, bit for bit, as TF's converter (per-channel
    scales, std::round in float32): every conv/FC weight tensor the files share by name.
    (Other constants, e.g. PReLU alphas, we quantize asymmetrically over their own range,
    twice TF's resolution for a one-signed alpha.)"""
    tf_path = corpus.model_path(name, "int8_float_io")
    if tf_path is None:
        pytest.skip("TF cannot convert")
    theirs = {t.name: t for t in wb.load(tf_path).main.tensors}
    n = 0
    model = wb.load(_quantized(name, "int8"))
    weights = [op.inputs[_WEIGHT_AXIS[op.code][0]] for op in model.main.operators
               if op.code in _WEIGHT_AXIS]
    for t in weights:
        u = theirs.get(t.name)
        if t.dtype == T.INT8 and u is not None and u.dtype == T.INT8:
            np.testing.assert_array_equal(t.data, u.data, err_msg=t.name)
            np.testing.assert_allclose(t.quantization.scale, u.quantization.scale, rtol=1e-6)
            n += 1
    assert n > 0


def test_quickstart_model_identical_to_tf_converter():
    """The quickstart CNN, calibrated on the data datasets/make_models.py gave TF's converter:
    every op, version, tensor type, scale, zero point, weight and bias as in TF's file."""
    rng = np.random.default_rng(0)  # datasets/make_models.py's representative dataset
    data = [[rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)] for _ in range(16)]
    root = corpus.REPO / "datasets" / "models"
    q = wb.quantize(root / "quickstart_cnn_float32.tflite", "int8", data, progress=False,
                    inference_input_type=np.int8, inference_output_type=np.int8)
    tf = wb.load(root / "quickstart_cnn_int8.tflite")
    assert [(o.name, o.version) for o in q.main.operators] == \
        [(o.name, o.version) for o in tf.main.operators]
    for a, b in zip(q.main.operators, tf.main.operators):
        for x, y in zip([*a.inputs, *a.outputs], [*b.inputs, *b.outputs]):
            assert (x is None) == (y is None)
            if x is None:
                continue
            assert x.dtype == y.dtype, x.name
            np.testing.assert_allclose(x.quantization.scale, y.quantization.scale, rtol=1e-6)
            np.testing.assert_array_equal(x.quantization.zero_point, y.quantization.zero_point)
            if x.is_constant:
                np.testing.assert_array_equal(x.data, y.data, err_msg=x.name)


# ------------------------------------------------------------------------------------------
# Structure of the written file: the rules LiteRT's integer kernels require
# ------------------------------------------------------------------------------------------
_WEIGHT_AXIS = {B.CONV_2D: (1, 0, 2), B.FULLY_CONNECTED: (1, 0, 2),
                B.DEPTHWISE_CONV_2D: (1, 3, 2), B.TRANSPOSE_CONV: (1, 0, 3)}
_FIXED = {(B.SOFTMAX, T.INT8): (1 / 256, -128), (B.LOGISTIC, T.INT8): (1 / 256, -128),
          (B.TANH, T.INT8): (1 / 128, 0), (B.SOFTMAX, T.INT16): (1 / 32768, 0),
          (B.LOGISTIC, T.INT16): (1 / 32768, 0), (B.TANH, T.INT16): (1 / 32768, 0)}
_SAME = {B.MAX_POOL_2D, B.AVERAGE_POOL_2D, B.RESHAPE, B.SQUEEZE, B.TRANSPOSE, B.GATHER,
         B.PAD, B.RESIZE_BILINEAR, B.RESIZE_NEAREST_NEIGHBOR, B.STRIDED_SLICE, B.TILE}


def _qp(t):
    return float(t.quantization.scale[0]), int(t.quantization.zero_point[0])


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("name,mode", _cases(SMALL, ("int8", "int16x8"), known=False))
def test_written_file_follows_the_quantization_spec(name, mode, per_channel):
    act = T.INT8 if mode == "int8" else T.INT16
    m = wb.load(_quantized(name, mode, per_channel=per_channel))
    checked = 0
    for op in m.main.operators:
        x = op.inputs[0] if op.inputs else None
        if op.code in _WEIGHT_AXIS and op.outputs[0].dtype == act:
            wi, axis, bi = _WEIGHT_AXIS[op.code]
            a = op.inputs[2] if op.code == B.TRANSPOSE_CONV else x
            w = op.inputs[wi]
            assert w.dtype == T.INT8 and not np.any(w.quantization.zero_point)
            assert w.data.min() >= -127
            n = w.quantization.scale.size
            if per_channel:
                assert n == w.shape[axis] and w.quantization.quantized_dimension == axis
            else:
                assert n == 1
            b = op.inputs[bi] if bi < len(op.inputs) else None
            if b is not None:
                assert b.dtype == (T.INT32 if act == T.INT8 else T.INT64)
                assert not np.any(b.quantization.zero_point)
                want = np.float32(a.quantization.scale[0]) * w.quantization.scale
                np.testing.assert_allclose(b.quantization.scale, np.broadcast_to(
                    want, b.quantization.scale.shape), rtol=1e-6)
            checked += 1
        for t in op.outputs:
            if t is not None and t.dtype == act and act == T.INT16:
                assert _qp(t)[1] == 0, t.name
        if (op.code, act) in _FIXED and op.outputs[0].dtype == act:
            s, z = _FIXED[op.code, act]
            assert _qp(op.outputs[0]) == pytest.approx((s, z))
            checked += 1
        if op.code in _SAME and x is not None and x.dtype == act:
            assert _qp(op.outputs[0]) == _qp(x), op
            checked += 1
        if op.code == B.CONCATENATION and op.outputs[0].dtype == act:
            assert all(_qp(t) == _qp(op.outputs[0]) for t in op.inputs)
            checked += 1
    assert checked > 0
    # float I/O by default: QUANTIZE at the inputs, DEQUANTIZE at the outputs
    assert all(t.dtype != act for t in m.main.inputs)
    assert all(t.dtype != act for t in m.main.outputs)


def test_report_lists_what_the_file_holds():
    m = wb.quantize(_float_path("mixed"), "int8", corpus.sample_inputs("mixed", 2),
                    progress=False)
    df = m.quantization_report.df
    assert set(df.role) >= {"activation", "weight", "bias"}
    scales = dict(zip(df.tensor, df.scale))
    n = 0
    for t in m.main.tensors:
        if t.quantization is not None and t.quantization.scale.size and t.name in scales:
            assert scales[t.name] == pytest.approx(float(t.quantization.scale[0]), rel=1e-6)
            n += 1
    assert n >= len(m.main.operators)
    assert "<table" in m.quantization_report._repr_html_()


# ------------------------------------------------------------------------------------------
# Integer I/O, calibration choices, denylist
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mixed", "separable_conv", "conv2d_transpose", "conv1d"])
@pytest.mark.parametrize("mode", ["int8", "int16x8", "dynamic", "weight_only"])
def test_per_tensor_weights_run_in_litert(name, mode):
    content = _quantized(name, mode, per_channel=False)
    _compare_with_litert(content, corpus.sample_inputs(name, 1, seed=1)[0], mode)
    if mode == "dynamic":
        _hybrid_ops_alone(content, corpus.sample_inputs(name, 1, seed=1)[0])


@pytest.mark.parametrize("io", [np.int8, np.uint8])
def test_integer_io_runs_in_litert_and_agrees_with_float_io(io):
    content = _quantized("mixed", "int8", inference_input_type=io, inference_output_type=io)
    m = wb.load(content)
    assert m.main.inputs[0].numpy_dtype == np.dtype(io)
    assert m.main.outputs[0].numpy_dtype == np.dtype(io)
    xs = corpus.sample_inputs("mixed", 1, seed=3)[0]
    _compare_with_litert(content, xs, "int8")
    # Same internal arithmetic as the float-I/O file: the same quantized outputs
    ours = _litert_outputs(content, xs)[0]
    float_io = _litert_outputs(_quantized("mixed", "int8"), xs)[0]
    np.testing.assert_allclose(ours, float_io, atol=1e-7)


def test_int16_io():
    content = _quantized("conv1d", "int16x8", inference_input_type=np.int16,
                         inference_output_type=np.int16)
    m = wb.load(content)
    assert m.main.inputs[0].dtype == T.INT16 and m.main.outputs[0].dtype == T.INT16
    _compare_with_litert(content, corpus.sample_inputs("conv1d", 1, seed=3)[0], "int16x8")


def test_precomputed_stats_and_calibration_methods():
    from workbench.quantize.calibrate import collect

    path = _float_path("mixed")
    data = corpus.sample_inputs("mixed", CALIBRATION)
    stats = collect(path, data, progress=False)
    a = wb.quantize(path, "int8", stats=stats, progress=False)
    b = wb.quantize(path, "int8", data, progress=False)
    assert a.to_bytes() == b.to_bytes()
    # A method changes the chosen scales; a per-tensor dict changes only its tensor.
    name = "mixed_1/dense_1/MatMul2"
    p = wb.quantize(path, "int8", stats=stats, calibration="percentile",
                    calibration_options={"percentile": 90.0}, progress=False)
    one = wb.quantize(path, "int8", stats=stats, calibration={name: "percentile"},
                      calibration_options={"percentile": 90.0}, progress=False)

    def scales(m):
        return {t.name: _qp(t) for t in m.main.tensors if t.dtype == T.INT8 and
                t.quantization.scale.size == 1}

    sa, sp, s1 = scales(a), scales(p), scales(one)
    assert sp[name][0] < sa[name][0]
    assert s1[name] == sp[name]
    assert {k: v for k, v in s1.items() if k != name} == {k: v for k, v in sa.items()
                                                          if k != name}
    rep = one.quantization_report.df.set_index("tensor")
    assert rep.loc[name, "method"] == "percentile"
    _compare_with_litert(p.to_bytes(), corpus.sample_inputs("mixed", 1, seed=1)[0], "int8")


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_denylist_keeps_ops_float(mode):
    path = _float_path("mixed")
    float_model = wb.load(path)
    ops = float_model.main.operators
    conv_out = ops[2].outputs[0].name  # by output tensor name
    data = corpus.sample_inputs("mixed", 2)
    q = wb.quantize(path, mode, data, denylist=["SOFTMAX", 3, conv_out], progress=False)
    act = T.INT8 if mode == "int8" else T.INT16
    kept = {(op.name, op.outputs[0].name.removesuffix("_float32")) for op in q.main.operators
            if all(t is None or t.dtype in (T.FLOAT32, T.INT32)
                   for t in [*op.inputs, *op.outputs])}
    assert ("SOFTMAX", ops[9].outputs[0].name) in kept
    assert (ops[3].name, ops[3].outputs[0].name) in kept
    assert ("CONV_2D", conv_out) in kept
    producers = q.main.producers()
    for op in q.main.operators:
        if op.name in ("SOFTMAX", "MAX_POOL_2D") or op.outputs[0].name == conv_out:
            # float inputs come from a DEQUANTIZE of an integer tensor
            src = producers.get(id(op.inputs[0]))
            assert src is not None and src.name == "DEQUANTIZE"
            assert src.inputs[0].dtype == act
    assert set(q.quantization_report.float_ops.op_index) == {2, 3, 9}
    assert set(q.quantization_report.float_ops.reason) == {"denylisted"}
    _compare_with_litert(q.to_bytes(), corpus.sample_inputs("mixed", 1, seed=1)[0], mode,
                         float_ops=True)


def test_denylist_in_weight_modes():
    path = _float_path("mixed")
    for mode in ("dynamic", "float16"):
        q = wb.quantize(path, mode, denylist=["CONV_2D"], progress=False)
        for op in q.main.operators:
            if op.name == "CONV_2D":
                assert op.inputs[1].dtype == T.FLOAT32 and op.inputs[1].is_constant


# ------------------------------------------------------------------------------------------
# Inputs: never mutated; bad data and options are clear errors
# ------------------------------------------------------------------------------------------
def test_input_model_is_not_modified_and_any_source_works():
    path = _float_path("conv1d")
    raw = path.read_bytes()
    model = wb.load(path)
    data = corpus.sample_inputs("conv1d", 2)
    results = [wb.quantize(src, "int8", data, progress=False).to_bytes()
               for src in (model, raw, path, str(path))]
    assert all(r == results[0] for r in results)
    assert model.to_bytes() == wb.load(raw).to_bytes()
    assert path.read_bytes() == raw


def test_bad_calibration_data_names_the_input():
    path = _float_path("mixed")
    with pytest.raises(InputError, match="input"):
        wb.quantize(path, "int8", [[np.zeros((1, 5, 5, 3), np.float32)]], progress=False)
    with pytest.raises(InputError):
        wb.quantize(path, "int8", [[np.zeros((1, 32, 32, 3), np.float32)] * 2],
                    progress=False)
    with pytest.raises(InputError, match="representative_dataset"):
        wb.quantize(path, "int8", progress=False)


def test_bad_options():
    path = _float_path("mixed")
    data = corpus.sample_inputs("mixed", 1)
    with pytest.raises(InputError, match="mode"):
        wb.quantize(path, "int4", data)
    with pytest.raises(InputError, match="inference_input_type"):
        wb.quantize(path, "int16x8", data, inference_input_type=np.uint8, progress=False)
    with pytest.raises(InputError, match="denylist"):
        wb.quantize(path, "int8", data, denylist=["NO_SUCH_OP"], progress=False)
    with pytest.raises(InputError, match="denylist"):
        wb.quantize(path, "int8", data, denylist=[99], progress=False)
    with pytest.raises(InputError, match="quantized already"):
        wb.quantize(corpus.REPO / "datasets/models/quickstart_cnn_int8.tflite", "int8", data)


# ------------------------------------------------------------------------------------------
# An "op zoo": one float model with the ops the corpus lacks, converted by TF (cached)
# ------------------------------------------------------------------------------------------
def _build_zoo():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(11)  # the same weights on every machine
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(8, 8, 4), batch_size=1, name="x")
    bias = tf.keras.Input(shape=(10,), batch_size=1, name="y")
    a = L.Conv2D(8, 3, padding="same")(inp)
    e = L.Maximum()([L.LeakyReLU(0.2)(a), L.Activation("tanh")(a)])
    f = L.Minimum()([e, L.Activation("sigmoid")(a)])
    g = L.Activation("gelu")(f)
    h = L.Lambda(lambda t: tf.nn.depth_to_space(tf.nn.space_to_depth(t, 2), 2))(g)
    i = L.Lambda(lambda t: tf.reduce_max(t, axis=[1, 2], keepdims=True))(h)
    j = L.Lambda(lambda t: tf.reduce_sum(t, axis=3, keepdims=True))(h)
    k = L.Lambda(lambda t: t[:, 1:7:2, :, :])(h)
    k = L.Lambda(lambda t: tf.image.resize(t, (6, 6), method="nearest"))(k)
    p = L.Lambda(lambda t: tf.stack(tf.split(t, 2, axis=3), axis=1))(k)
    w = np.random.default_rng(0).standard_normal((16, 5)).astype("float32")
    m = L.Lambda(lambda t: tf.matmul(tf.reshape(t, (1, 18, 16)), tf.constant(w)))(p)
    u = L.Lambda(lambda t: tf.math.log(tf.exp(t * 0.3) + 2.0))(L.ELU()(j))
    v = L.Lambda(lambda t: tf.reduce_prod(tf.abs(t) * 0.1 + 1.0, axis=-1))(i)
    w4 = np.random.default_rng(1).standard_normal((1, 8, 8, 3)).astype("float32")
    bm = L.Lambda(lambda t: tf.matmul(t, tf.constant(w4)))(h)  # BATCH_MATMUL, constant rhs
    q = L.Concatenate()([L.Flatten()(m), L.Flatten()(v), L.Flatten()(u), L.Flatten()(bm)])
    out = L.Lambda(lambda t: tf.nn.log_softmax(t))(L.Add()([L.Dense(10)(q), bias]))
    model = tf.keras.Model([inp, bias], [out, L.Flatten()(i)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@functools.cache
def _tf_model(builder) -> str:
    """Path of the float .tflite ``builder`` returns, cached under .cache/quantizer/ by the
    builder's source and TF's version (built once, atomically)."""
    tf_version = next((metadata.version(d) for d in ("tensorflow-cpu", "tensorflow")
                       if _has(d)), "")
    key = hashlib.sha256((inspect.getsource(builder) + tf_version).encode()).hexdigest()[:12]
    path = corpus.REPO / ".cache" / "quantizer" / f"{builder.__name__[7:]}_{key}.tflite"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        content = builder()
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    return str(path)


def _zoo_path() -> str:
    return _tf_model(_build_zoo)


def _has(dist: str) -> bool:
    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.parametrize("mode", MODES)
def test_op_zoo_every_mode(mode):
    """Two inputs and two outputs; BATCH_MATMUL with a constant; MAXIMUM/MINIMUM (shared
    scales), PACK, SPLIT,
    STRIDED_SLICE, SPACE_TO_DEPTH/DEPTH_TO_SPACE, REDUCE_MAX, SUM, REDUCE_PROD, RESIZE_NEAREST,
    GELU, ELU, EXP, LOG, ABS, LEAKY_RELU, TANH, LOGISTIC, LOG_SOFTMAX: LiteRT runs the result,
    integer tensors equal ours, outputs close to float."""
    path = _zoo_path()
    m = wb.load(path)
    rng = np.random.default_rng(0)

    def sample():
        return [rng.standard_normal(t.shape).astype(np.float32) for t in m.main.inputs]

    data = [sample() for _ in range(64)]  # enough samples that outputs are rarely clipped
    xs = sample()
    q = wb.quantize(path, mode, data, progress=False)
    content = q.to_bytes()
    n = _compare_with_litert(content, xs, mode)
    refs = Interpreter(model_path=path).run(xs)
    outs = _litert_outputs(content, xs)
    assert len(outs) == len(refs) == 2
    for ref, out in zip(refs, outs):
        # int8 LOG_SOFTMAX has a fixed step of 1/16: about 25 dB on log-probabilities
        assert _sqnr(ref.astype(np.float64), out) > (20 if mode == "int8" else 35)
    if mode in ("int8", "int16x8"):
        act = T.INT8 if mode == "int8" else T.INT16
        assert n > 20
        ops = {op.name: op for op in q.main.operators}
        if mode == "int8":  # every op of the zoo has an int8 kernel
            assert q.quantization_report.float_ops.empty
            assert _qp(ops["LOG_SOFTMAX"].outputs[0]) == pytest.approx((16 / 256, 127))
        for name in ("MAXIMUM", "MINIMUM", "PACK", "CONCATENATION"):
            op = ops[name]
            assert all(_qp(t) == _qp(op.outputs[0]) for t in op.inputs if t.dtype == act)


def test_a_wrong_rule_falls_back_to_float(monkeypatch):
    """Safety net: the result is prepared in our interpreter, whose kernels make LiteRT's
    Prepare checks; an op refused in its quantized form is redone in float. Proved with a rule
    claiming a 16x8 SQUARED_DIFFERENCE, which LiteRT lacks."""
    import dataclasses

    from workbench.quantize import rules

    rule = rules.RULES[B.SQUARED_DIFFERENCE]
    monkeypatch.setitem(rules.RULES, B.SQUARED_DIFFERENCE,
                        dataclasses.replace(rule, int16=True))
    path = _float_path("attention_layernorm")
    q = wb.quantize(path, "int16x8", corpus.sample_inputs("attention_layernorm", 2),
                    progress=False)
    fl = q.quantization_report.float_ops
    refused = fl[fl.op == "SQUARED_DIFFERENCE"]
    assert len(refused) == 2 and all(refused.reason.str.contains("refused"))
    for op in q.main.operators:
        if op.name == "SQUARED_DIFFERENCE":
            assert op.outputs[0].dtype == T.FLOAT32
    _compare_with_litert(q.to_bytes(), corpus.sample_inputs("attention_layernorm", 1,
                                                            seed=1)[0], "int16x8")


def test_ops_without_integer_kernel_stay_float_with_a_reason():
    """attention_layernorm's NEG has no int8 kernel in LiteRT (TF's converter keeps it float
    too): it runs in float between DEQUANTIZE and QUANTIZE, and the report says why."""
    q = wb.load(_quantized("attention_layernorm", "int8"))
    negs = [op for op in q.main.operators if op.name == "NEG"]
    assert negs and all(op.inputs[0].dtype == T.FLOAT32 for op in negs)
    producers = q.main.producers()
    assert all(producers[id(op.inputs[0])].name == "DEQUANTIZE" for op in negs)
    r = wb.quantize(_float_path("attention_layernorm"), "int8",
                    corpus.sample_inputs("attention_layernorm", 2), progress=False)
    fl = r.quantization_report.float_ops
    assert set(fl.op) == {"NEG"} and all(fl.reason.str.contains("no integer kernel"))


def _build_rnn():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(12)  # the same weights on every machine
    L = tf.keras.layers
    inp = tf.keras.Input(shape=(10, 16), batch_size=1, name="x")
    x = L.LSTM(32, return_sequences=True)(inp)
    x = L.SimpleRNN(32)(x)
    model = tf.keras.Model(inp, L.Dense(4)(x))
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.mark.parametrize("mode", MODES)
def test_rnn_layers_in_while_loops(mode):
    """Keras LSTM/SimpleRNN convert to WHILE loops whose bodies hold the FULLY_CONNECTED
    weights: the weight modes quantize them there too (as TF's converter does); the integer
    modes quantize the main graph and keep the loops float. LiteRT runs every result."""
    path = _tf_model(_build_rnn)
    rng = np.random.default_rng(0)
    data = [[rng.standard_normal((1, 10, 16)).astype(np.float32)] for _ in range(64)]  # few clips
    xs = [rng.standard_normal((1, 10, 16)).astype(np.float32)]
    q = wb.quantize(path, mode, data, progress=False)
    content = q.to_bytes()
    ref = Interpreter(model_path=path).run(xs)[0].astype(np.float64)
    theirs = _litert_outputs(content, xs)[0]
    ours = Interpreter(model_content=content).run(xs)[0].astype(np.float64)
    assert _sqnr(ref, theirs) > (25 if mode in ("int8", "dynamic") else 35)
    assert _sqnr(theirs, ours) > (25 if mode in ("int8", "int16x8", "dynamic") else 80)
    body_weights = [(op.inputs[1], sg.producers().get(id(op.inputs[1])))
                    for sg in q.subgraphs[1:] for op in sg.operators
                    if op.code == B.FULLY_CONNECTED]
    assert body_weights
    for w, producer in body_weights:
        if mode == "dynamic":
            assert w.dtype == T.INT8 and w.is_constant
        elif mode in ("weight_only", "float16"):  # constants dequantized once at load
            assert producer is not None and producer.code == B.DEQUANTIZE
            assert producer.inputs[0].dtype == (T.INT8 if mode == "weight_only" else
                                                T.FLOAT16)
        else:
            assert w.dtype == T.FLOAT32 and w.is_constant


_PREPARE_IN_LITERT = """
import sys
from ai_edge_litert.interpreter import Interpreter, OpResolverType
it = Interpreter(model_content=open(sys.argv[1], "rb").read(),
                 experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
it.allocate_tensors()
"""


@pytest.mark.parametrize("code,dtype,scales", [
    (B.ADD, T.INT16, (1.0, 1e-4, 3e-4)), (B.ADD, T.INT16, (1e-4, 1e-4, 3e-4)),
    (B.ADD, T.INT16, (1.0, 1e-4, 3e-5)), (B.SUB, T.INT8, (1.0, 0.01, 1e-7)),
    (B.SUB, T.INT16, (1.0, 1e-4, 3e-5)), (B.SUB, T.INT16, (1.0, 1e-4, 1e-6)),
    (B.ADD, T.INT8, (1.0, 0.01, 1e-7)),
    (B.ADD, T.INT8, (1.0, 0.01, 0.02)), (B.HARD_SWISH, T.INT8, (1.0, 1e-3)),
    (B.SQUARED_DIFFERENCE, T.INT8, (100.0, 1e-3, 1.0)),
    (B.SQUARED_DIFFERENCE, T.INT8, (1.0, 1e-3, 1e-3)),
    (B.HARD_SWISH, T.INT8, (0.05, 0.04)),
])
def test_multiplier_limits_are_litert_aborts(code, dtype, scales, tmp_path):
    """rules.multiplier_limit refuses exactly the parameters on which LiteRT's Prepare aborts
    the process (run in a child process); the quantizer keeps such ops float."""
    import subprocess
    import sys

    from workbench.ir.graph import Model, Operator, QuantParams, Subgraph
    from workbench.ir.ops import options_from_dict
    from workbench.quantize import rules

    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    zp = 0 if dtype == T.INT16 else -1
    ts = [sg.new_tensor(f"t{k}", (1, 4), dtype, quantization=QuantParams(scale=[s],
                                                                        zero_point=[zp]))
          for k, s in enumerate(scales)]
    sg.inputs, sg.outputs = ts[:-1], ts[-1:]
    options = None
    if code in (B.ADD, B.SUB):
        name = "AddOptions" if code == B.ADD else "SubOptions"
        options = options_from_dict(name, {"pot_scale_int16": False})
    if code == B.SQUARED_DIFFERENCE:
        options = options_from_dict("SquaredDifferenceOptions", {})
    op = sg.add_operator(Operator(m.opcode(code), ts[:-1], ts[-1:], options=options))
    refused = rules.multiplier_limit(op) is not None
    path = tmp_path / "one_op.tflite"
    path.write_bytes(m.to_bytes())
    rc = subprocess.run([sys.executable, "-c", _PREPARE_IN_LITERT, str(path)],
                        capture_output=True, check=False).returncode
    assert (rc != 0) == refused, (rc, refused)


def test_float16_keeps_constants_float16_cannot_hold():
    """A float32 constant beyond float16's range (a clip bound such as 3e38) would turn to inf:
    it stays float32, every other float constant becomes float16."""
    name = "keras_activations_norms"
    if name not in corpus.MODELS:
        pytest.skip("corpus model not present")
    float_model = wb.load(_float_path(name))
    big = {t.name for t in float_model.main.tensors if t.is_constant and
           t.dtype == T.FLOAT32 and np.max(np.abs(t.data), initial=0) > 65504}
    assert big
    q = wb.load(_quantized(name, "float16"))
    for t in q.main.tensors:
        if t.is_constant and t.dtype in (T.FLOAT32, T.FLOAT16):
            assert (t.dtype == T.FLOAT32) == (t.name in big), t.name


@pytest.mark.parametrize("mode", ["int8", "int16x8"])
def test_near_dead_relu6_output_gets_a_scale_litert_accepts(mode):
    """A conv whose RELU6 output is ~1e-12 everywhere (a near-dead channel): TF's converter
    gives it a scale at which 6.0 quantizes beyond int32 and LiteRT refuses the file. Ours
    floors activation scales at MIN_ACTIVATION_SCALE: LiteRT runs it and agrees bit for bit."""
    from tests.kernels.test_elementwise import Const, one_op
    from workbench.ir.ops import ActivationFunctionType, Conv2DOptions, Padding
    from workbench.quantize.quantizer import MIN_ACTIVATION_SCALE

    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 6, 6, 3)).astype(np.float32)
    w = (rng.standard_normal((4, 3, 3, 3)) * 1e-13).astype(np.float32)
    content = one_op(B.CONV_2D, [x, Const(w), Const(np.zeros(4, np.float32))],
                     [((1, 6, 6, 4), np.float32)],
                     Conv2DOptions(padding=Padding.SAME, stride_w=1, stride_h=1,
                                   fused_activation_function=ActivationFunctionType.RELU6))
    data = [rng.standard_normal((1, 6, 6, 3)).astype(np.float32) for _ in range(8)]
    q = wb.quantize(wb.load(content), mode, data)
    conv = [op for op in q.main.operators if op.name == "CONV_2D"][0]
    assert float(conv.outputs[0].quantization.scale[0]) >= MIN_ACTIVATION_SCALE
    b = q.to_bytes()
    ref = litert_interpreter(b)
    ref.allocate_tensors()
    ours = Interpreter(model_content=b)
    ours.allocate_tensors()
    for it in (ref, ours):
        it.set_tensor(it.get_input_details()[0]["index"], data[0])
        it.invoke()
    out = ref.get_output_details()[0]["index"]
    np.testing.assert_array_equal(ours.get_tensor(out), ref.get_tensor(out))
