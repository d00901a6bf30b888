"""RANDOM_UNIFORM, RANDOM_STANDARD_NORMAL and MULTINOMIAL against LiteRT: the same seeded
Philox sequence invoke after invoke (uniform values and sampled classes bit-identical; normal
values within one float32 step, their sin/cos/log being numpy's and the C library's), the same
re-seeding rules (a resize re-seeds, a repeated ``allocate_tensors`` does not), and typed
errors for what LiteRT refuses."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kernels.test_elementwise import Const, one_op
from tests.kernels.test_shape_ops import convert, op_names
from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError, UnsupportedOpError, WorkbenchError
from workbench.interpreter import Interpreter
from workbench.ir.ops import Op, RandomOptions

F32, I32, I64 = np.float32, np.int32, np.int64


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _both(content):
    return Interpreter(model_content=content), litert_interpreter(content)


def _set(it, xs):
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)


def _outs(it):
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def _same(got, expected, what):
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape and g.dtype == e.dtype, (what, k, g.shape, e.shape)
        if e.dtype == F32 and e.size:  # normal draws: one float32 step
            np.testing.assert_allclose(g, e, rtol=2e-7, atol=2e-7, err_msg=f"{what} {k}")
        else:
            np.testing.assert_array_equal(g, e, err_msg=f"{what} {k}")


def _invokes(content, xs, n=3, shapes=None):
    """Both runtimes allocated once (inputs resized to ``shapes`` first), ``n`` invokes each;
    every output compared each time."""
    ours, ref = _both(content)
    for it in (ours, ref):
        for d, s in zip(it.get_input_details(), shapes or []):
            it.resize_tensor_input(d["index"], list(s))
        it.allocate_tensors()
        _set(it, xs)
    for k in range(n):
        for it in (ours, ref):
            it.invoke()
        _same(_outs(ours), _outs(ref), f"invoke {k}")
    return ours, ref


def test_converted_random_ops_follow_litert_invoke_after_invoke(tf):
    def f(x, logits):
        return (x + tf.random.uniform((2, 3), seed=5),
                tf.random.uniform((7,), seed=11),  # not a multiple of 4 draws
                tf.random.normal((5,), seed=7),  # odd: the last pair is half used
                tf.random.normal((3, 4, 5), seed=8),
                tf.random.categorical(logits, 5, seed=3),
                tf.random.categorical(logits, 6, seed=4, dtype=tf.int32),
                tf.random.uniform((0, 3), seed=9))

    content = convert(tf, "random_ops", f, [((2, 3), tf.float32), ((4, 6), tf.float32)])
    assert {"RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL", "MULTINOMIAL"} <= set(op_names(content))
    logits = np.array([[0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0],
                       [-np.inf, 2, -np.inf, 1, np.nan, 0], [30, -30, 29, 0, 1, 2]], F32)
    _invokes(content, [np.zeros((2, 3), F32), logits], n=4)


def test_shape_computed_at_run_time_and_resize_reseeds(tf):
    """The shape comes from the input's shape at run time. A repeated allocate_tensors keeps
    the generator going; a resize prepares the op again, which re-seeds it (both as LiteRT)."""
    def f(x):
        return tf.random.uniform(tf.shape(x), seed=21) + x, tf.random.normal(tf.shape(x), seed=2)

    content = convert(tf, "random_runtime_shape", f, [((None, 3), tf.float32)])
    ours, ref = _invokes(content, [np.ones((2, 3), F32)], n=2, shapes=[(2, 3)])
    for it in (ours, ref):
        it.allocate_tensors()  # nothing changed: a no-op, inputs stay set
        it.invoke()
    _same(_outs(ours), _outs(ref), "after a repeated allocate")
    for it in (ours, ref):
        it.resize_tensor_input(it.get_input_details()[0]["index"], [5, 3])
        it.allocate_tensors()
        _set(it, [np.zeros((5, 3), F32)])
        it.invoke()
    _same(_outs(ours), _outs(ref), "after a resize")


@pytest.mark.parametrize("seed,seed2", [(1, 0), (0, 1), (-1, -2), (2**63 - 1, 2**40 + 3),
                                       (2**33 + 5, 7)])
def test_seeds_of_any_int64(seed, seed2):
    """Both seeds are int64 options, of which LiteRT keeps the low 32 bits, sign-extended."""
    content = one_op(Op.RANDOM_UNIFORM, [Const(np.array([3, 5], I32))], [((3, 5), F32)],
                     RandomOptions(seed, seed2))
    _invokes(content, [], n=2)


def test_multinomial_counts_and_cdf_search():
    logits = np.log(np.array([[0.1, 0.2, 0.7], [1, 1, 1e-30]], F32))
    content = one_op(Op.MULTINOMIAL, [logits, Const(np.array(4000, I32))], [((2, 4000), I64)],
                     RandomOptions(77, 78))
    ours, _ = _invokes(content, [logits], n=2)
    got = _outs(ours)[0]
    share = np.bincount(got[0], minlength=3) / got.shape[1]
    np.testing.assert_allclose(share, [0.1, 0.2, 0.7], atol=0.03)
    assert set(np.unique(got[1])) <= {0, 1}


@pytest.mark.parametrize("seeds", [(0, 0), (2**32, -2**32)])
def test_unseeded_ops_draw_fresh_sequences(seeds):
    """Seeds 0 and 0 (after LiteRT's 32-bit truncation): drawn from the OS, so two interpreters
    differ (as in LiteRT)."""
    content = one_op(Op.RANDOM_UNIFORM, [Const(np.array([64], I32))], [((64,), F32)],
                     RandomOptions(*seeds))
    a, b = (Interpreter(model_content=content) for _ in range(2))
    outs = []
    for it in (a, b):
        it.allocate_tensors()
        it.invoke()
        outs.append(_outs(it)[0])
    assert not np.array_equal(*outs)
    assert all(((o >= 0) & (o < 1)).all() for o in outs)


def test_refusals_are_typed():
    shape = Const(np.array([2], I32))
    with pytest.raises(UnsupportedOpError, match="float32"):
        Interpreter(model_content=one_op(Op.RANDOM_UNIFORM, [shape], [((2,), I32)],
                                         RandomOptions(1, 2))).allocate_tensors()
    with pytest.raises(ModelError, match="int32 vector"):
        Interpreter(model_content=one_op(Op.RANDOM_UNIFORM, [Const(np.array([2], I64))],
                                         [((2,), F32)], RandomOptions(1, 2))).allocate_tensors()
    with pytest.raises(ModelError, match="negative"):
        Interpreter(model_content=one_op(Op.RANDOM_STANDARD_NORMAL,
                                         [Const(np.array([2, -1], I32))], [((2, 1), F32)],
                                         RandomOptions(1, 2))).allocate_tensors()
    logits = np.zeros((2, 3), F32)
    with pytest.raises(ModelError, match="negative"):
        Interpreter(model_content=one_op(Op.MULTINOMIAL, [logits, Const(np.array(-1, I32))],
                                         [((2, 1), I64)], RandomOptions(1, 2))).allocate_tensors()
    with pytest.raises(ModelError, match="classes > 0"):
        Interpreter(model_content=one_op(Op.MULTINOMIAL, [np.zeros((2, 0), F32),
                                                          Const(np.array(3, I32))],
                                         [((2, 3), I64)], RandomOptions(1, 2))).allocate_tensors()
    with pytest.raises(WorkbenchError):
        Interpreter(model_content=one_op(Op.MULTINOMIAL, [logits, Const(np.array(3, I32))],
                                         [((2, 3), F32)], RandomOptions(1, 2))).allocate_tensors()


def test_outputs_larger_than_one_chunk_of_draws():
    """Draws are computed in chunks of ``_random.CHUNK``: the sequence runs on unbroken across
    chunk ends (sizes chosen to end mid-draw)."""
    from workbench.kernels._random import CHUNK

    size = 4 * CHUNK + 6
    for op in (Op.RANDOM_UNIFORM, Op.RANDOM_STANDARD_NORMAL):
        content = one_op(op, [Const(np.array([size], I32))], [((size,), F32)],
                         RandomOptions(12, 34))
        _invokes(content, [], n=2)
    logits = np.linspace(-2, 2, 3 * 5, dtype=F32).reshape(3, 5)
    n = CHUNK - 3  # 3 rows: the samples' draws cross chunk ends inside a row
    content = one_op(Op.MULTINOMIAL, [logits, Const(np.array(n, I32))], [((3, n), I64)],
                     RandomOptions(5, 6))
    _invokes(content, [logits], n=2)


def test_malformed_random_ops_are_refused_at_load():
    """Arity and options table are checked by the loader (a fuzz of these ops found kernels
    reached with a missing input or another op's options)."""
    import workbench as wb
    from workbench.ir.ops import GeluOptions

    shape = Const(np.array([2], I32))
    with pytest.raises(ModelError, match="takes RandomOptions"):
        wb.load(one_op(Op.RANDOM_UNIFORM, [shape], [((2,), F32)], GeluOptions(True)))
    with pytest.raises(ModelError, match="inputs, expected 2"):
        wb.load(one_op(Op.MULTINOMIAL, [np.zeros((2, 3), F32)], [((2, 3), I64)],
                       RandomOptions(1, 2)))
    # No options at all: the schema's defaults (seeds 0, 0: unseeded), as LiteRT.
    it = Interpreter(model_content=one_op(Op.RANDOM_STANDARD_NORMAL, [shape], [((2,), F32)]))
    it.allocate_tensors()
    it.invoke()
    assert np.isfinite(it.get_tensor(it.get_output_details()[0]["index"])).all()
