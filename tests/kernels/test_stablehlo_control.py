"""STABLEHLO_COMPOSITE, STABLEHLO_CASE (ops that call subgraphs) and
STABLEHLO_RNG_BIT_GENERATOR against LiteRT, on models built with the IR."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError
from workbench.ir.graph import Model, Operator, Subgraph
from workbench.ir.ops import ENUMS, OPTIONS, Op

F32 = np.float32
ATTRS = tuple(bytes([0, 0, 1]))  # an empty FlexBuffer map is enough for LiteRT


def _branch(m: Model, name: str, shapes, dtypes, body):
    """Append a subgraph with inputs of ``shapes``/``dtypes``; ``body(sg, inputs)`` adds its
    operators and returns its outputs."""
    sg = Subgraph(name=name)
    m.subgraphs.append(sg)
    ins = [sg.new_tensor(f"{name}_in{k}", s, d) for k, (s, d) in enumerate(zip(shapes, dtypes))]
    sg.inputs.extend(ins)
    sg.outputs.extend(body(sg, ins))
    return len(m.subgraphs) - 1


def _binary(m, op):
    def body(sg, ins):
        out = sg.new_tensor(f"{sg.name}_out", ins[0].shape, ins[0].dtype)
        sg.add_operator(Operator(m.opcode(op), list(ins[:2]), [out]))
        return [out]
    return body


def _run_both(content: bytes, feeds: list[np.ndarray], invokes: int = 1):
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    ours = wb.Interpreter(model_content=content)
    ours.allocate_tensors()
    for _ in range(invokes):
        for it in (ref, ours):
            for d, x in zip(it.get_input_details(), feeds):
                it.set_tensor(d["index"], x)
            it.invoke()
        exp = [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
        got = [ours.get_tensor(d["index"]) for d in ours.get_output_details()]
        assert len(got) == len(exp)
        for g, e in zip(got, exp):
            assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
            np.testing.assert_array_equal(g, e)
    return got


# -- STABLEHLO_COMPOSITE -----------------------------------------------------------------------
def _composite_model(attrs=ATTRS, n_out=2, dec_inputs=2) -> bytes:
    m = Model()
    main = Subgraph(name="main")
    m.subgraphs.append(main)
    a = main.new_tensor("a", (2, 3), F32)
    b = main.new_tensor("b", (2, 3), F32)
    outs = [main.new_tensor(f"o{k}", (2, 3), F32) for k in range(n_out)]
    main.inputs += [a, b]
    main.outputs += outs

    def body(sg, ins):
        # out0 = x * y + 0.5 (two ops and a constant), out1 = max(x, y)
        t = sg.new_tensor("t", (2, 3), F32)
        c = sg.new_tensor("half", (), F32, data=np.array(0.5, F32))
        o0 = sg.new_tensor("d0", (2, 3), F32)
        o1 = sg.new_tensor("d1", (2, 3), F32)
        sg.add_operator(Operator(m.opcode(Op.MUL), [ins[0], ins[-1]], [t]))
        sg.add_operator(Operator(m.opcode(Op.ADD), [t, c], [o0]))
        sg.add_operator(Operator(m.opcode(Op.MAXIMUM), [ins[0], ins[-1]], [o1]))
        return [o0, o1][:n_out]

    si = _branch(m, "decomposition", [(2, 3)] * dec_inputs, [F32] * dec_inputs, body)
    opts = OPTIONS["StableHLOCompositeOptions"](
        name="odml.mul_add_max", decomposition_subgraph_index=si, composite_attributes=attrs,
        version=1)
    main.add_operator(Operator(m.opcode(Op.STABLEHLO_COMPOSITE), [a, b], outs, options2=opts))
    return m.to_bytes()


def test_composite_runs_its_decomposition_like_litert():
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((2, 2, 3)).astype(F32)
        got = _run_both(_composite_model(), [x, y])
        np.testing.assert_array_equal(got[1], np.maximum(x, y))


def test_composite_without_attributes_is_refused_as_litert_refuses_it():
    content = _composite_model(attrs=None)
    with pytest.raises(ValueError, match="composite_attributes"):
        litert_interpreter(content)
    with pytest.raises(ModelError, match="composite_attributes"):
        wb.Interpreter(model_content=content).allocate_tensors()


def test_composite_whose_decomposition_does_not_fit_is_a_model_error():
    with pytest.raises(ModelError, match="decomposition"):
        wb.Interpreter(model_content=_composite_model(dec_inputs=3)).allocate_tensors()


# -- STABLEHLO_CASE ------------------------------------------------------------------------------
def _case_model(ops=(Op.ADD, Op.SUB, Op.MUL), index_dtype=np.int32, ragged=False) -> bytes:
    m = Model()
    main = Subgraph(name="main")
    m.subgraphs.append(main)
    idx = main.new_tensor("index", (), index_dtype)
    a = main.new_tensor("a", (4,), F32)
    b = main.new_tensor("b", (4,), F32)
    out = main.new_tensor("out", (4,), F32)
    main.inputs += [idx, a, b]
    main.outputs.append(out)
    branches = [_branch(m, f"branch{k}", [(4,), (4,)], [F32, F32], _binary(m, op))
                for k, op in enumerate(ops)]
    if ragged:  # a last branch whose output has another shape: the output is dynamic
        def concat(sg, ins):
            o = sg.new_tensor("cat", (8,), F32)
            sg.add_operator(Operator(m.opcode(Op.CONCATENATION), list(ins), [o],
                                     options=OPTIONS["ConcatenationOptions"](axis=0)))
            return [o]
        branches.append(_branch(m, "ragged", [(4,), (4,)], [F32, F32], concat))
    opts = OPTIONS["StablehloCaseOptions"](branch_subgraph_indices=tuple(branches))
    main.add_operator(Operator(m.opcode(Op.STABLEHLO_CASE), [idx, a, b], [out], options2=opts))
    return m.to_bytes()


@pytest.mark.parametrize("index", [0, 1, 2, 3, -1, 100, -(2**31)])
def test_case_selects_a_branch_and_clamps_out_of_range_to_the_last(index):
    rng = np.random.default_rng(index & 0xFFFF)
    a, b = rng.standard_normal((2, 4)).astype(F32)
    got = _run_both(_case_model(), [np.array(index, np.int32), a, b])
    k = index if 0 <= index < 3 else 2
    np.testing.assert_array_equal(got[0], [a + b, a - b, a * b][k])


@pytest.mark.parametrize("index", [0, 3, 7])
def test_case_with_branches_of_different_output_shapes(index):
    a, b = np.arange(8, dtype=F32).reshape(2, 4)
    got = _run_both(_case_model(ragged=True), [np.array(index, np.int32), a, b], invokes=2)
    assert got[0].shape == ((4,) if index == 0 else (8,))


def test_case_index_must_be_int32():
    content = _case_model(index_dtype=np.int64)
    ref = litert_interpreter(content)
    with pytest.raises(RuntimeError):
        ref.allocate_tensors()
    with pytest.raises(ModelError, match="int32"):
        wb.Interpreter(model_content=content).allocate_tensors()


def test_case_branch_that_calls_its_caller_is_refused():
    m = wb.load(_case_model())
    m.subgraphs[0].operators[0].options2 = OPTIONS["StablehloCaseOptions"](
        branch_subgraph_indices=(1, 0))
    with pytest.raises(ModelError):
        wb.Interpreter(model_content=m.to_bytes()).allocate_tensors()


def test_case_branch_out_of_range_is_a_model_error():
    m = wb.load(_case_model())
    m.subgraphs[0].operators[0].options2 = OPTIONS["StablehloCaseOptions"](
        branch_subgraph_indices=(1, 9))
    with pytest.raises(ModelError, match="out of range"):
        wb.Interpreter(model_content=m.to_bytes()).allocate_tensors()


# -- STABLEHLO_RNG_BIT_GENERATOR -------------------------------------------------------------
ALG = ENUMS["RngAlgorithm"]


def _rng_model(alg, state_n, out_shape, out_dtype) -> bytes:
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    s = sg.new_tensor("state", (state_n,), np.uint64)
    k = sg.new_tensor("new_state", (state_n,), np.uint64)
    o = sg.new_tensor("bits", out_shape, out_dtype)
    sg.inputs.append(s)
    sg.outputs += [k, o]
    sg.add_operator(Operator(m.opcode(Op.STABLEHLO_RNG_BIT_GENERATOR), [s], [k, o],
                             options2=OPTIONS["StablehloRngBitGeneratorOptions"](algorithm=alg)))
    return m.to_bytes()


CASES = [(alg, n) for alg in (ALG.DEFAULT, ALG.PHILOX) for n in (2, 3)] + [(ALG.THREEFRY, 2)]


@pytest.mark.parametrize("alg,state_n", CASES)
@pytest.mark.parametrize("out_dtype", [np.int32, np.uint32, np.int64, np.uint64])
def test_rng_bit_generator_bits_and_state_match_litert(alg, state_n, out_dtype):
    rng = np.random.default_rng(int(alg) * 10 + state_n)
    for shape in [(5,), (3, 7), (0,), (2, 1, 3)]:
        content = _rng_model(alg, state_n, shape, out_dtype)
        ours = wb.Interpreter(model_content=content)
        ours.allocate_tensors()
        ref = litert_interpreter(content)
        ref.allocate_tensors()
        states = [rng.integers(0, 2**64, state_n, dtype=np.uint64),
                  # the counter's low word about to wrap: the carry into its high word
                  np.array([7, 2**32 - 1] + [9] * (state_n - 2), np.uint64),
                  np.array([1, 2**64 - 1] + [2**64 - 1] * (state_n - 2), np.uint64)]
        for state in states:
            s_ours = s_ref = state
            for _ in range(2):  # feed the new state back, as a generator loop does
                ours.set_tensor(0, s_ours)
                ours.invoke()
                ref.set_tensor(ref.get_input_details()[0]["index"], s_ref)
                ref.invoke()
                got = [ours.get_tensor(d["index"]) for d in ours.get_output_details()]
                exp = [ref.get_tensor(d["index"]) for d in ref.get_output_details()]
                for g, e in zip(got, exp):
                    assert g.dtype == e.dtype and g.shape == e.shape
                    np.testing.assert_array_equal(g, e)
                s_ours, s_ref = got[0], exp[0]


@pytest.mark.parametrize("alg,state_n", [(ALG.THREEFRY, 3), (ALG.PHILOX, 1), (ALG.PHILOX, 4)])
def test_rng_bit_generator_refuses_state_sizes_litert_refuses(alg, state_n):
    content = _rng_model(alg, state_n, (4,), np.uint32)
    ref = litert_interpreter(content)
    with pytest.raises(RuntimeError):
        ref.allocate_tensors()
        ref.set_tensor(ref.get_input_details()[0]["index"], np.zeros(state_n, np.uint64))
        ref.invoke()
    with pytest.raises(ModelError, match="state"):
        wb.Interpreter(model_content=content).allocate_tensors()


def test_rng_bit_generator_refuses_float_output():
    content = _rng_model(ALG.PHILOX, 2, (4,), F32)
    with pytest.raises(RuntimeError):
        litert_interpreter(content).allocate_tensors()
    with pytest.raises(ModelError, match="output"):
        wb.Interpreter(model_content=content).allocate_tensors()


def test_rng_bit_generator_refuses_an_absurd_declared_output():
    """Its output shape is only declared (not computed from inputs): a fuzzed 2**31 - 1
    element output is refused at allocate, not generated for minutes."""
    for n in (2**31 - 1, 2**30):  # beyond the memory limit; 4 GiB of bits (~70 s to make)
        content = _rng_model(ALG.THREEFRY, 2, (n,), np.uint32)
        with pytest.raises(ModelError, match="GiB"):
            wb.Interpreter(model_content=content).allocate_tensors()
