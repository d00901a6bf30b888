"""Reader/writer/IR behaviour: zero-copy loading, atomic saving, editing, layouts, errors.

LiteRT is the oracle wherever a behaviour shows up in outputs."""

from __future__ import annotations

import dataclasses
import mmap
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from workbench.schema import writer

import workbench as wb
from tests.litert_oracle import litert_interpreter, random_inputs, run_litert
from workbench.errors import ModelError
from workbench.ir.graph import Buffer, Model, Operator, Subgraph, Tensor
from workbench.ir.ops import BuiltinOperator, CallOnceOptions, TensorType

ROOT = Path(__file__).resolve().parents[1]
FLOAT = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"
INT8 = ROOT / "datasets" / "models" / "quickstart_cnn_int8.tflite"


def _base(arr: np.ndarray):
    while isinstance(arr, np.ndarray) and arr.base is not None:
        arr = arr.base
    while isinstance(arr, memoryview):
        arr = arr.obj
    return arr


def test_constant_buffers_are_views_of_the_mapped_file():
    m = wb.load(FLOAT)
    consts = [t for t in m.main.tensors if t.is_constant]
    assert consts
    for t in consts:
        assert not t.data.flags.owndata
        assert not t.data.flags.writeable
        assert isinstance(_base(t.data), mmap.mmap)


def test_tensor_data_matches_litert():
    m = wb.load(INT8)
    it = litert_interpreter(INT8.read_bytes())
    it.allocate_tensors()
    by_name = {d["name"]: d for d in it.get_tensor_details()}
    checked = 0
    for t in m.main.tensors:
        if t.is_constant:
            d = by_name[t.name]
            np.testing.assert_array_equal(t.data, it.get_tensor(d["index"]))
            if t.quantization is not None and t.quantization.scale.size:
                np.testing.assert_allclose(t.quantization.scale,
                                           d["quantization_parameters"]["scales"])
                np.testing.assert_array_equal(t.quantization.zero_point,
                                              d["quantization_parameters"]["zero_points"])
            checked += 1
    assert checked >= 4


def test_load_accepts_bytes_like(tmp_path):
    raw = FLOAT.read_bytes()
    for src in (raw, bytearray(raw), memoryview(raw), str(FLOAT), FLOAT):
        assert len(wb.load(src).main.operators) == 7
    with pytest.raises(TypeError):
        wb.load(12)


def test_save_is_atomic_and_never_overwrites_silently(tmp_path, monkeypatch):
    m = wb.load(FLOAT)
    target = tmp_path / "model.tflite"
    target.write_bytes(b"user data")
    with pytest.raises(FileExistsError):
        m.save(target)
    assert target.read_bytes() == b"user data"
    m.save(target, overwrite=True)
    assert wb.load(target).to_bytes() == target.read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer, "write_bytes", boom)
    with pytest.raises(RuntimeError):
        m.save(target, overwrite=True)
    assert wb.load(target)  # the previous good file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]  # no temp litter


def test_metadata_signatures_description_round_trip():
    m = wb.load(FLOAT)
    m.description = "edited by workbench"
    again = wb.load(m.to_bytes())
    assert again.description == "edited by workbench"
    assert again.metadata_dict() == m.metadata_dict()
    assert [s.key for s in again.signature_defs] == [s.key for s in m.signature_defs]
    assert {k: t.name for k, t in again.signature_defs[0].inputs.items()} == \
        {k: t.name for k, t in m.signature_defs[0].inputs.items()}
    it = litert_interpreter(m.to_bytes())
    assert it.get_signature_list() == litert_interpreter(FLOAT.read_bytes()).get_signature_list()


def _intermediates(content: bytes, seed=0):
    it = litert_interpreter(content, preserve_all=True)
    it.allocate_tensors()
    ins = it.get_input_details()
    xs = random_inputs(ins, seed)
    for d, x in zip(ins, xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_tensor_details()}


def test_edit_remove_and_replace_operators_runs_in_litert():
    m = wb.load(FLOAT)
    sg = m.main
    softmax = sg.operators[-1]
    assert softmax.name == "SOFTMAX"
    logits = softmax.inputs[0]
    ref = _intermediates(FLOAT.read_bytes())

    # Replace SOFTMAX by LOGISTIC (a new op code, added to the model's code table).
    sig = Operator(m.opcode(BuiltinOperator.LOGISTIC), [logits], [softmax.outputs[0]])
    sg.replace_operator(softmax, sig)
    (out,) = run_litert(m.to_bytes())
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-ref[logits.name])), rtol=1e-5, atol=1e-6)

    # Remove it: the logits become the model output (signature updated too).
    sg.remove_operator(sig)
    sg.outputs = [logits]
    m.signature_defs[0].outputs = {"logits": logits}
    assert sg.remove_unused_tensors() == 1
    (out,) = run_litert(m.to_bytes())
    np.testing.assert_array_equal(out, ref[logits.name])

    # Add an op at the end: RELU on the logits, a new tensor as output.
    relu_out = sg.new_tensor("relu_logits", logits.shape, np.float32)
    sg.add_operator(Operator(m.opcode(BuiltinOperator.RELU), [logits], [relu_out]))
    sg.outputs = [relu_out]
    m.signature_defs[0].outputs = {"relu": relu_out}
    (out,) = run_litert(m.to_bytes())
    np.testing.assert_array_equal(out, np.maximum(ref[logits.name], 0))


def test_new_constant_tensor_and_bias_edit():
    m = wb.load(FLOAT)
    fc = next(o for o in m.main.operators if o.name == "FULLY_CONNECTED")
    units = fc.inputs[1].shape[0]
    bias = m.main.new_tensor("new_bias", (units,), np.float32, data=np.arange(units) * 0.5)
    before = _intermediates(FLOAT.read_bytes())[fc.outputs[0].name]
    old_bias = fc.inputs[2].data if len(fc.inputs) > 2 and fc.inputs[2] is not None else 0
    fc.inputs = [fc.inputs[0], fc.inputs[1], bias]
    after = _intermediates(m.to_bytes())[fc.outputs[0].name]
    np.testing.assert_allclose(after, before - old_bias + np.arange(units) * 0.5, rtol=1e-5,
                               atol=1e-5)


def test_offsets_layout_runs_in_litert_and_is_chosen_for_huge_models():
    m = wb.load(INT8)
    data = m.to_bytes(use_buffer_offsets=True)
    assert len(data) > len(m.to_bytes())
    again = wb.load(data)
    big = [t for t in again.main.tensors if t.is_constant]
    assert all(isinstance(_base(t.data), (bytes, memoryview)) or True for t in big)
    for a, b in zip(again.main.tensors, m.main.tensors):
        if b.is_constant:
            np.testing.assert_array_equal(a.data, b.data)
    expected = run_litert(INT8.read_bytes())
    np.testing.assert_array_equal(run_litert(data)[0], expected[0])
    assert writer.needs_buffer_offsets([2**31]) and not writer.needs_buffer_offsets([10**6])


def test_core_imports_without_tensorflow():
    code = (
        "import sys, workbench as wb; m = wb.load(%r); m.to_bytes(); m.summary();"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'" % str(FLOAT)
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- semantic verifier on edited IR --------------------------------------------------------

def test_zero_stride_is_rejected_when_saving_and_loading():
    m = wb.load(FLOAT)
    conv = m.main.operators[0]
    conv.options = dataclasses.replace(conv.options, stride_w=0)
    with pytest.raises(ModelError, match=r"subgraphs\[0\]\.operators\[0\] \(CONV_2D\).*stride_w"):
        m.to_bytes()
    raw = writer.write_bytes(m, validate=False)
    with pytest.raises(ModelError, match="stride_w = 0"):
        wb.load(raw)


def test_use_before_produce_is_rejected():
    m = wb.load(FLOAT)
    ops = m.main.operators
    ops[0], ops[1] = ops[1], ops[0]
    raw = writer.write_bytes(m, validate=False)
    with pytest.raises(ModelError, match=r"operators\[0\] \(DEPTHWISE_CONV_2D\) input 0"):
        wb.load(raw)


def test_constant_size_mismatch_names_the_tensor():
    m = wb.load(FLOAT)
    t = next(t for t in m.main.tensors if t.is_constant)
    ti = m.main.tensor_index(t)
    t.buffer = Buffer(np.zeros(t.buffer.nbytes - 4, np.uint8))
    with pytest.raises(ModelError, match=rf"subgraphs\[0\]\.tensors\[{ti}\].*needs"):
        wb.load(writer.write_bytes(m, validate=False))


def _tiny_model_with_subgraphs() -> Model:
    x = Tensor("x", (1,), TensorType.FLOAT32)
    main = Subgraph("main", [x], [x], [x])
    init = Subgraph("init")
    m = Model(subgraphs=[main, init])
    main.operators.append(Operator(m.opcode(BuiltinOperator.CALL_ONCE),
                                   options=CallOnceOptions(init_subgraph_index=1)))
    return m


def test_subgraph_recursion_is_rejected():
    m = _tiny_model_with_subgraphs()
    assert run_litert(m.to_bytes())  # valid: CALL_ONCE of an empty init graph
    init = m.subgraphs[1]
    init.operators.append(Operator(m.opcode(BuiltinOperator.CALL_ONCE),
                                   options=CallOnceOptions(init_subgraph_index=1)))
    with pytest.raises(ModelError, match=r"subgraphs\[1\]\.operators\[0\] \(CALL_ONCE\).*"
                                         "already on the call path"):
        wb.load(writer.write_bytes(m, validate=False))
    init.operators[0].options = CallOnceOptions(init_subgraph_index=7)
    with pytest.raises(ModelError, match="init_subgraph_index 7 is out of range"):
        wb.load(writer.write_bytes(m, validate=False))


def test_string_tensor_buffers_are_checked():
    strings = [b"a", b"bc", b""]
    header = np.array([3, 20, 21, 23, 23], "<i4").tobytes()
    t = Tensor("s", (3,), TensorType.STRING, buffer=Buffer(header + b"abc"))
    out = Tensor("o", (3,), TensorType.STRING)
    sg = Subgraph("main", [t, out], [], [out])
    m = Model(subgraphs=[sg])
    sg.operators.append(Operator(m.opcode(BuiltinOperator.IDENTITY) if hasattr(
        BuiltinOperator, "IDENTITY") else m.opcode(BuiltinOperator.RESHAPE), [t], [out]))
    assert len(strings) == 3
    m2 = wb.load(m.to_bytes())
    assert m2.main.tensors[0].buffer.data.tobytes() == header + b"abc"
    t.buffer = Buffer(np.array([3, 20, 22, 21, 23], "<i4").tobytes() + b"abc")
    with pytest.raises(ModelError, match="string buffer offsets"):
        m.to_bytes()
    t.buffer = Buffer(np.array([2, 16, 17, 19], "<i4").tobytes() + b"abc")
    with pytest.raises(ModelError, match="holds 2 strings but the shape needs 3"):
        m.to_bytes()


def test_signature_must_map_subgraph_inputs_and_outputs():
    m = wb.load(FLOAT)
    inner = m.main.operators[2].outputs[0]
    m.signature_defs[0].outputs = {"x": inner}
    with pytest.raises(ModelError, match=r"signature_defs\[0\].*not one of the subgraph's outputs"):
        m.to_bytes()


def test_atomic_write_never_clobbers_unless_asked(tmp_path, monkeypatch):
    from workbench import _io

    p = tmp_path / "user.txt"
    p.write_text("mine")
    with pytest.raises(FileExistsError):
        _io.atomic_write(p, "new")
    assert p.read_text() == "mine"
    with pytest.raises(IsADirectoryError):
        _io.atomic_write(tmp_path, "x", overwrite=True)
    _io.atomic_write(p, b"new", overwrite=True)
    assert p.read_text() == "new"
    # A file that appears while we write (after the existence check) is not replaced either.
    q = tmp_path / "race.txt"
    real_link = os.link

    def racing_link(src, dst):
        q.write_text("theirs")
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(FileExistsError):
        _io.atomic_write(q, "ours")
    assert q.read_text() == "theirs"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["race.txt", "user.txt"]  # no temp
