"""Memory planner: valid placements, never worse than TFLite-style greedy-by-size, close to the
lower bound on the corpus, and the validation mode (tensors living in the planned arena)
gives identical outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from tests import corpus
from workbench.errors import UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.interpreter.planner import check_plan, lower_bound, plan_memory

ROOT = Path(__file__).resolve().parents[1]
FLOAT = ROOT / "datasets" / "models" / "quickstart_cnn_float32.tflite"

FLOAT_MODELS = corpus.models_with_mode("float32")
CASES = [pytest.param(n, marks=[pytest.mark.slow] if s.big else [], id=n)
         for n, s in FLOAT_MODELS.items()]


@pytest.mark.parametrize("name", CASES)
def test_plan_is_valid_and_near_the_lower_bound(name):
    m = wb.load(corpus.model_path(name, "float32"))
    plan = plan_memory(m)
    check_plan(plan)
    greedy = plan_memory(m, strategy="greedy_by_size")
    check_plan(greedy)
    assert plan.arena_bytes <= greedy.arena_bytes == plan.greedy_bytes
    assert plan.lower_bound <= plan.arena_bytes <= 1.10 * plan.lower_bound, plan._repr_html_()


def test_check_plan_catches_overlap():
    m = wb.load(FLOAT)
    plan = plan_memory(m)
    for a in plan.allocations:
        a.offset = 0
    with pytest.raises(AssertionError, match="overlap"):
        check_plan(plan)
    assert lower_bound(plan.allocations) == plan.lower_bound


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if s.big else [],
                                               id=n) for n, s in FLOAT_MODELS.items()]
                         + ["quickstart"])
def test_arena_validation_mode_gives_identical_outputs(name):
    path = FLOAT if name == "quickstart" else corpus.model_path(name, "float32")
    m = wb.load(path)
    plain, arena = Interpreter(m), Interpreter(m, use_arena=True)
    try:
        plain.allocate_tensors()
    except UnsupportedOpError as e:
        pytest.skip(f"not all ops have kernels yet: {e}")
    arena.allocate_tensors()
    assert arena.memory_plan is not None and arena.memory_plan.arena_bytes > 0
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(d["shape"]).astype(d["dtype"]) if np.dtype(d["dtype"]).kind == "f"
          else rng.integers(0, 8, d["shape"]).astype(d["dtype"])
          for d in plain.get_input_details()]
    for a, b in zip(plain.run(xs), arena.run(xs)):
        np.testing.assert_array_equal(a, b)


def test_validation_mode_detects_a_wrong_plan(monkeypatch):
    """The validation mode can fail: with every tensor at offset 0, a model whose tensors are
    live across several ops (a branch joined by ADD) computes different outputs."""
    from workbench.interpreter import planner

    real = planner.plan_memory

    def broken(*a, **k):
        plan = real(*a, **k)
        for x in plan.allocations:
            x.offset = 0
        plan.arena_bytes = max(x.size for x in plan.allocations)
        return plan

    from workbench.ir.graph import Model, Operator, Subgraph
    from workbench.ir.ops import BuiltinOperator as Op

    sg = Subgraph("main")
    m = Model(subgraphs=[sg])
    x, a, b, c, out = (sg.new_tensor(n, (1, 64)) for n in ("x", "a", "b", "c", "out"))
    sg.inputs, sg.outputs = [x], [out]
    for code, ins, o in [(Op.RELU, [x], a), (Op.LOGISTIC, [a], b), (Op.TANH, [b], c),
                         (Op.ADD, [a, c], out)]:  # `a` stays live across three ops
        sg.add_operator(Operator(m.opcode(code), ins, [o]))
    x = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    (good,) = Interpreter(m).run(x)
    np.testing.assert_allclose(good, np.maximum(x, 0) + np.tanh(1 / (1 + np.exp(-np.maximum(x, 0)))),
                               rtol=1e-6)
    (same,) = Interpreter(m, use_arena=True).run(x)
    np.testing.assert_array_equal(good, same)
    monkeypatch.setattr(planner, "plan_memory", broken)
    (bad,) = Interpreter(m, use_arena=True).run(x)
    assert not np.array_equal(good, bad)
