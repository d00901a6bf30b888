"""Run-time re-prepares (dynamic tensors inside WHILE bodies) reuse kernels per input state;
these tests check against LiteRT that a reused kernel is never stale: shapes that cycle within
one invoke, loop lengths that change between invokes, and inputs resized between invokes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter

_CACHE: dict = {}


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _cycling_loop(tf) -> bytes:
    """A loop whose carried ``v`` takes the shapes [1], [2], [3], [1], ... (the first
    ``i % 3 + 1`` elements of ``x``), with shape arithmetic (SHAPE, RANGE, RESHAPE) that reads
    the current shape, so a kernel prepared for another step would give wrong values."""
    if "cycle" not in _CACHE:
        @tf.function(input_signature=[tf.TensorSpec([None]), tf.TensorSpec([], tf.int32)])
        def cycle(x, n):
            def body(i, acc, v):
                k = i % 3 + 1
                h = x[:k]
                m = tf.reshape(h, [-1, 1]) * tf.constant([[1.0, 2.0, 3.0]])
                rows = tf.cast(tf.shape(m)[0], tf.float32)
                t = tf.reshape(tf.range(k * 2), [k, 2])
                t = tf.cast(tf.reduce_sum(t, axis=1), tf.float32)
                acc = acc + tf.reduce_sum(m) * rows + tf.reduce_sum(t[: tf.size(h)])
                v = h * (tf.reduce_sum(v) + 1.0) + t[: tf.size(h)]
                return i + 1, acc, v

            return tf.while_loop(lambda i, acc, v: i < n, body,
                                 [tf.constant(0), tf.constant(0.0), x[:1]],
                                 shape_invariants=[tf.TensorShape([]), tf.TensorShape([]),
                                                   tf.TensorShape([None])])

        conv = tf.lite.TFLiteConverter.from_concrete_functions([cycle.get_concrete_function()],
                                                                None)
        _CACHE["cycle"] = conv.convert()
    return _CACHE["cycle"]


def _litert_run(ref, xs: list[np.ndarray]) -> list[np.ndarray]:
    for d, x in zip(ref.get_input_details(), xs):
        if tuple(d["shape"]) != x.shape:
            ref.resize_tensor_input(d["index"], x.shape)
            ref.allocate_tensors()
            break
    for d, x in zip(ref.get_input_details(), xs):
        ref.set_tensor(d["index"], x)
    ref.invoke()
    return [ref.get_tensor(d["index"]) for d in ref.get_output_details()]


def _assert_same(got: list[np.ndarray], expected: list[np.ndarray], what: str) -> None:
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape and g.dtype == e.dtype, (what, k, g.shape, e.shape)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5, err_msg=f"{what} output {k}")


def test_cycling_shapes_and_resizes_match_litert(tf):
    content = _cycling_loop(tf)
    ops = [op.name for sg in wb.load(content).subgraphs for op in sg.operators]
    assert "WHILE" in ops
    ours = wb.Interpreter(model_content=content)
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    rng = np.random.default_rng(0)
    # Loop lengths that end on each phase of the cycle, repeated (later invokes reuse kernels
    # cached by earlier ones), and x resized between invokes (lengths 2 < 3 clamp the slice).
    for length, n in [(5, 7), (5, 7), (5, 2), (5, 0), (5, 9), (2, 4), (2, 6), (6, 5),
                      (5, 7), (1, 3), (5, 8)]:
        xs = [rng.standard_normal(length).astype(np.float32), np.array(n, np.int32)]
        _assert_same(ours.run(xs), _litert_run(ref, xs), f"len {length}, n {n}")


def test_resize_tensor_input_between_invokes(tf):
    """The tf.lite.Interpreter protocol: resize_tensor_input + allocate_tensors drop the plans
    (and their kernel caches); set_tensor/invoke then agree with LiteRT."""
    content = _cycling_loop(tf)
    ours = wb.Interpreter(model_content=content)
    ref = litert_interpreter(content)
    rng = np.random.default_rng(1)
    for length in (4, 2, 4, 3):
        for it in (ours, ref):
            it.resize_tensor_input(it.get_input_details()[0]["index"], [length])
            it.allocate_tensors()
        for n in (5, 4):
            x = rng.standard_normal(length).astype(np.float32)
            outs = []
            for it in (ours, ref):
                d = it.get_input_details()
                it.set_tensor(d[0]["index"], x)
                it.set_tensor(d[1]["index"], np.array(n, np.int32))
                it.invoke()
                outs.append([it.get_tensor(o["index"]) for o in it.get_output_details()])
            _assert_same(outs[0], outs[1], f"len {length}, n {n}")


def test_recurrent_corpus_model_reuses_kernels():
    """The Keras LSTM/GRU/SimpleRNN model re-prepares in its loop bodies; once warm (the first
    invoke starts from the model's recorded shapes, the next from the last step's, so two
    invokes see every state), invokes prepare no new kernels and still match LiteRT."""
    from tests.corpus import model_path

    path = str(model_path("recurrent", "float32"))
    ours = wb.Interpreter(model_path=path)
    ref = litert_interpreter(Path(path).read_bytes())
    ref.allocate_tensors()
    shape = tuple(ours.get_input_details()[0]["shape"])
    rng = np.random.default_rng(2)

    def cached() -> int:
        return sum(len(p.kernel_cache) for p in ours._sub_plans.values())

    sizes = []
    for _ in range(4):
        x = rng.standard_normal(shape).astype(np.float32)
        _assert_same(ours.run([x]), _litert_run(ref, [x]), "recurrent")
        sizes.append(cached())
    assert sizes[0] > 0  # the loops do re-prepare at run time
    assert sizes[1] == sizes[2] == sizes[3]
