"""Run-time values the model cannot have foreseen: index, shape, axis and size inputs fed random
and extreme integers (negative, zero, past the end, int32 limits). For each, ours must return
LiteRT's result or raise one ``WorkbenchError`` (never another exception, an ``OpError`` from a
missing check, or a hang), and must not run where LiteRT refuses, unless the result is empty
(LiteRT's Python binding cannot return empty dynamic tensors). Ours may refuse where LiteRT runs
unchecked values only for the ops in ``OURS_STRICTER``."""

from __future__ import annotations

import math
import signal
import zlib

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import InputError, OpError, WorkbenchError

_CACHE: dict = {}

I32, F32 = np.int32, np.float32
#: name -> (input specs [(shape, dtype)], function of the inputs)
OPS = {
    "gather": ([((5, 3), F32), ((4,), I32)], lambda tf: lambda x, i: tf.gather(x, i)),
    "gather_axis1": ([((5, 3), F32), ((2,), I32)],
                     lambda tf: lambda x, i: tf.gather(x, i, axis=1)),
    "gather_nd": ([((4, 3), F32), ((2, 2), I32)], lambda tf: lambda x, i: tf.gather_nd(x, i)),
    "scatter_nd": ([((3, 1), I32), ((3,), F32)],
                   lambda tf: lambda i, u: tf.scatter_nd(i, u, [5])),
    "one_hot": ([((4,), I32), ((), I32)], lambda tf: lambda i, d: tf.one_hot(i, d)),
    "range": ([((), I32), ((), I32), ((), I32)], lambda tf: lambda a, b, c: tf.range(a, b, c)),
    "tile": ([((2, 3), F32), ((2,), I32)], lambda tf: lambda x, m: tf.tile(x, m)),
    "slice": ([((4, 5), F32), ((2,), I32), ((2,), I32)],
              lambda tf: lambda x, b, s: tf.slice(x, b, s)),
    "strided_slice": ([((6, 5), F32), ((2,), I32), ((2,), I32), ((2,), I32)],
                      lambda tf: lambda x, b, e, s: tf.strided_slice(x, b, e, s)),
    "reshape": ([((2, 6), F32), ((2,), I32)], lambda tf: lambda x, s: tf.reshape(x, s)),
    "fill": ([((2,), I32), ((), F32)], lambda tf: lambda d, v: tf.fill(d, v)),
    "pad": ([((2, 3), F32), ((2, 2), I32)], lambda tf: lambda x, p: tf.pad(x, p)),
    "mirror_pad": ([((3, 4), F32), ((2, 2), I32)],
                   lambda tf: lambda x, p: tf.pad(x, p, mode="REFLECT")),
    "top_k": ([((6,), F32), ((), I32)], lambda tf: lambda x, k: tf.math.top_k(x, k).values),
    "broadcast_to": ([((1, 3), F32), ((2,), I32)],
                     lambda tf: lambda x, s: tf.broadcast_to(x, s)),
    "expand_dims": ([((2, 3), F32), ((), I32)], lambda tf: lambda x, a: tf.expand_dims(x, a)),
    "reduce_sum": ([((2, 3, 4), F32), ((1,), I32)],
                   lambda tf: lambda x, a: tf.reduce_sum(x, a)),
    "arg_max": ([((2, 3), F32), ((), I32)], lambda tf: lambda x, a: tf.argmax(x, a)),
    "transpose": ([((2, 3, 4), F32), ((3,), I32)],
                  lambda tf: lambda x, p: tf.transpose(x, p)),
    "resize": ([((1, 4, 4, 1), F32), ((2,), I32)],
               lambda tf: lambda x, s: tf.image.resize(x, s)),
    "cumsum": ([((3, 4), F32), ((), I32)], lambda tf: lambda x, a: tf.math.cumsum(x, a)),
    "reverse": ([((3, 4), F32), ((1,), I32)], lambda tf: lambda x, a: tf.reverse(x, a)),
    "space_to_batch": ([((1, 4, 4, 1), F32), ((2,), I32), ((2, 2), I32)],
                       lambda tf: lambda x, b, p: tf.space_to_batch_nd(x, b, p)),
    "floor_div": ([((4,), I32), ((4,), I32)], lambda tf: lambda a, b: tf.math.floordiv(a, b)),
    "pow": ([((4,), I32), ((4,), I32)], lambda tf: lambda a, b: tf.pow(a, b)),
    "segment_sum": ([((4, 2), F32), ((4,), I32)],
                    lambda tf: lambda x, s: tf.math.segment_sum(x, s)),
    "unsorted_segment_sum": ([((4, 2), F32), ((4,), I32)],
                             lambda tf: lambda x, s: tf.math.unsorted_segment_sum(x, s, 3)),
    "embedding_lookup": ([((3,), I32)], lambda tf: lambda i: tf.nn.embedding_lookup(
        tf.constant(np.arange(12, dtype=F32).reshape(4, 3)), i)),
}

#: Ops where ours refuses values LiteRT runs with: TRANSPOSE permutations that repeat an axis
#: and SPACE_TO_BATCH_ND negative paddings (LiteRT does not check them and computes from
#: whatever its loops read).
OURS_STRICTER = {"transpose", "space_to_batch"}
EXTREMES = [-(2**31), -5, -1, 0, 1, 2, 3, 4, 5, 7, 100, 2**31 - 1]
TRIALS = 24


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _model(tf, name) -> bytes:
    if name not in _CACHE:
        specs, fn = OPS[name]
        f = tf.function(fn(tf), input_signature=[tf.TensorSpec(s, d) for s, d in specs],
                        autograph=False)
        conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
        _CACHE[name] = conv.convert()
    return _CACHE[name]


class _Hang(BaseException):
    pass


def _alarm_handler(signum, frame):
    raise _Hang()


def _ours(content, feeds):
    old = signal.signal(signal.SIGALRM, _alarm_handler)
    signal.alarm(20)
    try:
        return wb.Interpreter(model_content=content).run(feeds), None
    except OpError as e:
        if isinstance(e.__cause__, MemoryError):
            return None, e
        pytest.fail(f"OpError (a kernel check is missing): {e}")
    except WorkbenchError as e:
        return None, e
    except _Hang:
        pytest.fail("hang (> 20 s)")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _litert(content, feeds):
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    for d, x in zip(ref.get_input_details(), feeds):
        ref.set_tensor(d["index"], x)
    try:
        ref.invoke()
        return [ref.get_tensor(d["index"]) for d in ref.get_output_details()], None
    except (RuntimeError, ValueError) as e:
        return None, e


def _skip(name, feeds) -> bool:
    """RANGEs whose ``limit - start`` overflows int32 (LiteRT's size is then wrong; ours is
    the exact count) or of more than a million values (slow to fill; the memory limit on
    value-sized outputs is tested in tests/kernels/test_shape_ops.py)."""
    if name != "range":
        return False
    start, limit, delta = (int(v) for v in feeds)
    return abs(limit - start) >= 2**31 or delta != 0 and abs(limit - start) // abs(delta) > 10**6


def _safe_for_litert(name, feeds) -> bool:
    """LiteRT's integer FLOOR_DIV/POW abort the process on a zero divisor or INT_MIN / -1."""
    if name not in ("floor_div", "pow"):
        return True
    a, b = feeds
    return not np.any(b == 0) and not np.any((a == -(2**31)) & (b == -1)) and \
        not (name == "pow" and np.any(b < 0))


@pytest.fixture
def small_value_sized_outputs(monkeypatch):
    """Value-sized outputs above 64 MiB are refused (ours), and such trials are not run in
    LiteRT, which would allocate them (an int32 extreme asks for gigabytes)."""
    from workbench.kernels import _common

    monkeypatch.setattr(_common, "MAX_VALUE_SIZED_BYTES", 1 << 26)
    monkeypatch.setattr(_common, "_CHECK_FROM_BYTES", 1 << 20)


@pytest.mark.parametrize("name", list(OPS))
def test_runtime_values_run_as_litert_or_raise_one_typed_error(tf, name,
                                                                small_value_sized_outputs):
    content = _model(tf, name)
    specs = OPS[name][0]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    agreed = refused = 0
    for trial in range(TRIALS):
        feeds = []
        for shape, dt in specs:
            if dt == I32:
                v = rng.choice(EXTREMES, size=shape) if trial % 2 else \
                    rng.integers(-2, 6, size=shape)
                feeds.append(np.asarray(v, I32))
            else:
                feeds.append(rng.standard_normal(shape).astype(F32))
        if _skip(name, feeds):
            continue
        got, err = _ours(content, feeds)
        if isinstance(err, InputError) and "would need" in str(err):
            refused += 1  # over the (lowered) limit on value-sized outputs: not run in LiteRT
            continue
        if not _safe_for_litert(name, feeds):
            continue
        want, ref_err = _litert(content, feeds)
        where = f"{name} {[f.tolist() for f in feeds if f.dtype == I32]}"
        if ref_err is None:
            if err is not None:
                assert name in OURS_STRICTER, f"{where}: LiteRT runs, ours raises {err}"
                continue
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.shape == w.shape and g.dtype == w.dtype, where
                np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6, err_msg=where)
            agreed += 1
        elif err is None:
            assert all(math.prod(g.shape) == 0 for g in got), \
                f"{where}: LiteRT refuses ({ref_err}), ours returns {[g.shape for g in got]}"
        else:
            refused += 1
    assert agreed + refused > 0


def test_output_recorded_empty_but_sized_at_run_time_still_runs(tf):
    """A node whose output shape depends on run-time values is never skipped as "empty" on the
    strength of the shape recorded in the file (here TOP_K's output recorded as [0])."""
    m = wb.load(_model(tf, "top_k"))
    (op,) = [o for o in m.main.operators if o.name == "TOPK_V2"]
    for t in op.outputs:
        t.shape = (0,)
    content = m.to_bytes()
    feeds = [np.arange(6, dtype=F32)[::-1].copy(), np.array(3, I32)]
    got, err = _ours(content, feeds)
    assert err is None
    want, _ = _litert(_model(tf, "top_k"), feeds)
    np.testing.assert_array_equal(got[0], want[0])
