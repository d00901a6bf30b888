"""Control flow (WHILE, IF, CALL_ONCE) and resource variables (VAR_HANDLE, READ_VARIABLE,
ASSIGN_VARIABLE) against LiteRT, over several invokes of one interpreter (state persists)."""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels._control_flow import pure_subgraphs

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError, UnsupportedOpError

MINE = {"WHILE", "IF", "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}
_CACHE: dict = {}


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def convert(tf, key, fn_or_module, resource_variables=False) -> bytes:
    if key not in _CACHE:
        fn, trackable = fn_or_module
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()],
                                                                trackable)
        conv.experimental_enable_resource_variables = resource_variables
        _CACHE[key] = conv.convert()
    return _CACHE[key]


def all_ops(content: bytes) -> list[str]:
    return [op.name for sg in wb.load(content).subgraphs for op in sg.operators]


def ours_or_skip(content: bytes) -> wb.Interpreter:
    """Our interpreter, or a skip when an op of another family has no kernel yet."""
    it = wb.Interpreter(model_content=content)
    try:
        it.allocate_tensors()
    except UnsupportedOpError as e:
        if e.op_name in MINE:
            raise
        pytest.skip(f"needs a kernel outside this family: {e.op_name}")
    return it


def assert_matches(got, expected, name=""):
    assert got.shape == expected.shape and got.dtype == expected.dtype, \
        (name, got.dtype, got.shape, expected.dtype, expected.shape)
    if expected.dtype.kind == "f":
        rng = float(np.max(expected) - np.min(expected)) if expected.size else 0.0
        tol = 1e-4 * max(rng, 1e-6) + 1e-6
        np.testing.assert_allclose(got, expected, rtol=0, atol=tol, err_msg=name)
    else:
        np.testing.assert_array_equal(got, expected, err_msg=name)


def compare_invokes(content: bytes, input_sets: list[list[np.ndarray]]) -> list:
    """Invoke one LiteRT and one workbench interpreter on each input set in turn (so any state
    carries over) and compare every output each time."""
    ours = ours_or_skip(content)
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    results = []
    for xs in input_sets:
        for d, x in zip(ref.get_input_details(), xs):
            ref.set_tensor(d["index"], x)
        ref.invoke()
        expected = [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
        got = ours.run(xs)
        assert len(got) == len(expected)
        for k, (g, e) in enumerate(zip(got, expected)):
            assert_matches(g, e, f"output {k}")
        results.append(got)
    return results


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- WHILE -------------------------------------------------------------------------------------
def _counter_loop(tf):
    @tf.function(input_signature=[tf.TensorSpec([2, 3]), tf.TensorSpec([], tf.int32)])
    def loop(x, n):
        def body(i, x):
            return i + 1, x * 1.5 + 1.0
        return tf.while_loop(lambda i, x: i < n, body, [tf.constant(0), x])

    return convert(tf, "while_counter", (loop, None))


def test_while_counter_loop(tf):
    content = _counter_loop(tf)
    assert "WHILE" in all_ops(content)
    compare_invokes(content, [[f32(2, 3), np.array(n, np.int32)] for n in (0, 1, 5, 3)])


def test_while_nested_loops_and_several_carried_values(tf):
    @tf.function(input_signature=[tf.TensorSpec([3]), tf.TensorSpec([], tf.int32)])
    def nested(x, n):
        def outer(i, acc, y):
            _, y2 = tf.while_loop(lambda j, y: j < i, lambda j, y: (j + 1, y * 0.5 + acc),
                                  [tf.constant(0), y])
            return i + 1, acc + y2, y2
        return tf.while_loop(lambda i, acc, y: i < n, outer, [tf.constant(0), x, x * 2.0])

    content = convert(tf, "while_nested", (nested, None))
    assert all_ops(content).count("WHILE") == 2
    compare_invokes(content, [[f32(3, seed=s), np.array(n, np.int32)]
                              for s, n in ((0, 4), (1, 0), (2, 2))])


def test_while_runs_on_resized_inputs(tf):
    content = _counter_loop(tf)
    ours = ours_or_skip(content)
    ref = litert_interpreter(content)
    x, n = f32(4, 5), np.array(3, np.int32)
    ref.resize_tensor_input(ref.get_input_details()[0]["index"], x.shape)
    ref.allocate_tensors()
    for d, v in zip(ref.get_input_details(), (x, n)):
        ref.set_tensor(d["index"], v)
    ref.invoke()
    got = ours.run([x, n])  # resizes, so the loop's subgraphs are prepared for [4, 5]
    for d, g in zip(ref.get_output_details(), got):
        assert_matches(g, ref.get_tensor(d["index"]), d["name"])
    assert got[1].shape == (4, 5)


def test_while_with_growing_values(tf):
    """A loop whose carried value grows: a dynamic tensor, adopted and re-prepared."""
    @tf.function(input_signature=[tf.TensorSpec([2]), tf.TensorSpec([], tf.int32)])
    def grow(x, n):
        return tf.while_loop(lambda i, x: i < n,
                             lambda i, x: (i + 1, tf.concat([x, x * 2.0], 0)),
                             [tf.constant(0), x],
                             shape_invariants=[tf.TensorShape([]), tf.TensorShape([None])])

    content = convert(tf, "while_grow", (grow, None))
    compare_invokes(content, [[f32(2), np.array(3, np.int32)]])


# -- IF ----------------------------------------------------------------------------------------
def _if_model(tf):
    @tf.function(input_signature=[tf.TensorSpec([], tf.bool), tf.TensorSpec([2, 3]),
                                  tf.TensorSpec([3])])
    def branch(p, x, y):
        return tf.cond(p, lambda: x * 2.0 + y, lambda: x + y * 3.0)

    return convert(tf, "if_bool", (branch, None))


def test_if_both_branches(tf):
    content = _if_model(tf)
    assert "IF" in all_ops(content)
    compare_invokes(content, [[np.array(c), f32(2, 3, seed=k), f32(3, seed=k + 9)]
                              for k, c in enumerate([True, False, False, True])])


def test_if_inside_while(tf):
    @tf.function(input_signature=[tf.TensorSpec([4]), tf.TensorSpec([], tf.int32)])
    def mixed(x, n):
        def body(i, x):
            return i + 1, tf.cond(i % 2 == 0, lambda: x * 2.0, lambda: x - 1.0)
        return tf.while_loop(lambda i, x: i < n, body, [tf.constant(0), x])

    content = convert(tf, "if_in_while", (mixed, None))
    assert {"WHILE", "IF"} <= set(all_ops(content))
    compare_invokes(content, [[f32(4, seed=s), np.array(n, np.int32)]
                              for s, n in ((0, 5), (1, 0), (2, 1))])


def test_if_condition_must_be_bool(tf):
    @tf.function(input_signature=[tf.TensorSpec([], tf.bool), tf.TensorSpec([3])])
    def branch(p, x):
        return tf.cond(p, lambda: x * 2.0, lambda: x + 1.0)

    m = wb.load(convert(tf, "if_simple", (branch, None)))
    (op,) = [o for o in m.main.operators if o.name == "IF"]
    op.inputs[0] = op.inputs[1]
    with pytest.raises(ModelError, match="one-element bool"):
        wb.Interpreter(m).allocate_tensors()


# -- resource variables and CALL_ONCE ----------------------------------------------------------
def _accumulator(tf):
    class Accumulator(tf.Module):
        def __init__(self):
            self.total = tf.Variable(tf.fill([2, 3], 0.5))
            self.calls = tf.Variable(tf.zeros([], tf.int32))

        @tf.function(input_signature=[tf.TensorSpec([2, 3])])
        def __call__(self, x):
            self.total.assign_add(x)
            self.calls.assign_add(tf.ones([], tf.int32))
            return self.total * 2.0, self.calls.read_value()

    m = Accumulator()
    return convert(tf, "variables", (m.__call__, m), resource_variables=True)


def _split(outputs):
    """(float total, int calls) whatever order the converter gave the outputs."""
    return sorted(outputs, key=lambda a: a.dtype.kind != "f")


def test_resource_variables_persist_across_invokes(tf):
    content = _accumulator(tf)
    ops = set(all_ops(content))
    assert {"CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"} <= ops
    results = compare_invokes(content, [[f32(2, 3, seed=s)] for s in range(4)])
    assert [int(_split(r)[1]) for r in results] == [1, 2, 3, 4]


def test_call_once_runs_once_per_interpreter(tf):
    content = _accumulator(tf)
    x = f32(2, 3)
    a = ours_or_skip(content)
    a.run([x])
    assert len(a.called_once) == 1
    a.run([x])
    (total, calls) = _split(a.run([x]))
    np.testing.assert_allclose(total, (0.5 + 3 * x) * 2, rtol=1e-6)
    assert int(calls) == 3
    b = ours_or_skip(content)  # a new interpreter starts from the initial values
    (total, calls) = _split(b.run([x]))
    np.testing.assert_allclose(total, (0.5 + x) * 2, rtol=1e-6)
    assert int(calls) == 1


def test_resource_ids_follow_tflite_numbering(tf):
    content = _accumulator(tf)
    it = ours_or_skip(content)
    it.run([f32(2, 3)])
    assert sorted(it.resource_ids.values()) == [0, 1]
    assert set(it.resources) == {0, 1}


def test_read_before_assign_is_an_error(tf):
    m = wb.load(_accumulator(tf))
    m.main.operators[:] = [o for o in m.main.operators if o.name != "CALL_ONCE"]
    it = wb.Interpreter(m)
    with pytest.raises(ModelError, match="before it is assigned"):
        it.run([f32(2, 3)])


# -- loops that never end, malformed control flow -------------------------------------------------
def _stepped_loop(tf):
    @tf.function(input_signature=[tf.TensorSpec([3]), tf.TensorSpec([], tf.int32)])
    def loop(x, step):
        return tf.while_loop(lambda i, x: i < 10, lambda i, x: (i + step, tf.abs(x)),
                             [tf.constant(0), x])

    return convert(tf, "while_stepped", (loop, None))


def test_while_that_never_ends_is_refused_not_hung(tf):
    """With step 0 the body leaves every loop value as it was (after the first abs) while the
    condition holds: LiteRT would spin forever; we name the WHILE instead."""
    content = _stepped_loop(tf)
    compare_invokes(content, [[f32(3), np.array(s, np.int32)] for s in (1, 3, 10)])
    it = ours_or_skip(content)
    with pytest.raises(ModelError, match=r"WHILE.*never ends: iteration 2 of body"):
        it.run([f32(3), np.array(0, np.int32)])
    it.run([f32(3), np.array(2, np.int32)])  # the interpreter is still usable


def test_while_fixed_point_check_skips_loops_with_side_effects(tf):
    """A body that writes a resource variable can make progress its loop values do not show,
    so the fixed-point check stands aside there (the loop ends through the variable)."""
    class Counter(tf.Module):
        def __init__(self):
            self.v = tf.Variable(0)

        @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
        def __call__(self, n):
            def body(i):
                self.v.assign_add(1)
                return (i,)
            self.v.assign(0)
            tf.while_loop(lambda i: self.v < n, body, [tf.constant(7)])
            return self.v.read_value()

    m = Counter()
    content = convert(tf, "while_variable", (m.__call__, m), resource_variables=True)
    model = wb.load(content)
    (loop,) = [o for o in model.main.operators if o.name == "WHILE"]
    body = loop.options.body_subgraph_index
    assert "ASSIGN_VARIABLE" in [o.name for o in model.subgraphs[body].operators]
    assert not pure_subgraphs(model, [loop.options.cond_subgraph_index, body])
    stepped = wb.load(_stepped_loop(tf))
    (loop,) = [o for o in stepped.main.operators if o.name == "WHILE"]
    assert pure_subgraphs(stepped, [loop.options.cond_subgraph_index,
                                    loop.options.body_subgraph_index])
    compare_invokes(content, [[np.array(n, np.int32)] for n in (3, 5)])


@pytest.mark.parametrize("op_name", ["WHILE", "IF"])
def test_control_flow_without_options_is_a_model_error(tf, op_name):
    content = _counter_loop(tf) if op_name == "WHILE" else _if_model(tf)
    m = wb.load(content)
    op = next(o for o in m.main.operators if o.name == op_name)
    op.options = None
    with pytest.raises(ModelError, match=rf"operators\[\d+\] \({op_name}\).*has no options"):
        wb.Interpreter(m).allocate_tensors()


# -- signatures of other subgraphs (on-device training) -------------------------------------------
def _trainable(tf):
    class Trainable(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.reshape(tf.range(6, dtype=tf.float32) / 6.0 - 0.4, [3, 2]))
            self.b = tf.Variable(tf.zeros([2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def infer(self, x):
            return {"y": tf.nn.relu(x @ self.w + self.b)}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32),
                                      tf.TensorSpec([None, 2], tf.float32)])
        def train(self, x, t):
            err = x @ self.w + self.b - t
            self.w.assign_sub(0.1 * tf.transpose(x) @ err / tf.cast(tf.shape(x)[0], tf.float32))
            self.b.assign_sub(0.1 * tf.reduce_mean(err, 0))
            return {"loss": tf.reduce_mean(err * err)}

        @tf.function(input_signature=[])
        def weights(self):
            return {"w": self.w.read_value(), "b": self.b.read_value()}

    m = Trainable()
    fns = [m.infer.get_concrete_function(), m.train.get_concrete_function(),
           m.weights.get_concrete_function()]
    key = "trainable"
    if key not in _CACHE:
        conv = tf.lite.TFLiteConverter.from_concrete_functions(fns, m)
        conv.experimental_enable_resource_variables = True
        _CACHE[key] = conv.convert()
    return _CACHE[key]


def test_signatures_of_every_subgraph_run_and_share_variables(tf):
    """A train/infer/weights model (one subgraph per signature, variables shared): every
    signature runs as in LiteRT, calls in sequence see each other's variable updates, and each
    call takes its inputs at their own batch size."""
    content = _trainable(tf)
    model = wb.load(content)
    assert sorted(model.subgraphs.index(sd.subgraph) for sd in model.signature_defs) == [0, 1, 2]
    ref = litert_interpreter(content)
    ours = wb.Interpreter(model_content=content)
    assert ours.get_signature_list() == ref.get_signature_list()
    rng = np.random.default_rng(3)
    calls = [("weights", {})]
    for batch in (4, 4, 2, 7):
        x = rng.standard_normal((batch, 3)).astype(np.float32)
        calls += [("infer", {"x": x}),
                  ("train", {"x": x, "t": rng.standard_normal((batch, 2)).astype(np.float32)}),
                  ("weights", {})]
    for key, inputs in calls:
        want = ref.get_signature_runner(key)(**inputs)
        runner = ours.get_signature_runner(key)
        got = runner(**inputs)
        assert sorted(got) == sorted(want), key
        for name in want:
            assert_matches(got[name], want[name], f"{key}:{name}")
        r = ref.get_signature_runner(key)
        for mine, theirs in ((runner.get_input_details(), r.get_input_details()),
                             (runner.get_output_details(), r.get_output_details())):
            assert sorted(mine) == sorted(theirs)
            for name in theirs:
                for field in ("name", "dtype", "shape_signature"):
                    assert np.array_equal(mine[name][field], theirs[name][field]), (key, field)
    with pytest.raises(wb.InputError, match="expected float32"):
        ours.get_signature_runner("infer")(x=np.zeros((1, 3), np.int32))
