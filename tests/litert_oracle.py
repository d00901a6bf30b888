"""Running a model in LiteRT (the oracle) with deterministic inputs."""

from __future__ import annotations

import numpy as np

import workbench as wb


def litert_interpreter(content: bytes, preserve_all: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=preserve_all,
    )


def random_inputs(details: list[dict], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for d in details:
        dt = np.dtype(d["dtype"])
        if dt == np.bool_:
            out.append(rng.integers(0, 2, d["shape"]).astype(dt))
        elif np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            lo, hi = max(info.min, -100), min(info.max, 100)
            if d["quantization"] == (0.0, 0):  # plain integer input, e.g. indices
                lo, hi = 0, 8
            out.append(rng.integers(lo, hi, d["shape"], endpoint=True).astype(dt))
        else:
            out.append(rng.standard_normal(d["shape"]).astype(dt))
    return out


def run_litert(content: bytes, seed: int = 0) -> list[np.ndarray]:
    """Outputs of LiteRT's built-in kernels on seeded random inputs."""
    it = litert_interpreter(content)
    it.allocate_tensors()
    ins = it.get_input_details()
    for d, x in zip(ins, random_inputs(ins, seed)):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def litert_values(ref, content: bytes) -> dict[int, np.ndarray]:
    """Tensor index -> value of every main-subgraph tensor whose value LiteRT keeps after an
    invoke. Keyed by index, not name: converted files may give several tensors one name (TF's
    16x8 converter names requantized copies alike), and both runtimes number tensors as the
    file does.

    Left out: tensors LiteRT holds no data for, and WHILE outputs that nothing reads (neither
    an op nor the model's outputs). LiteRT does not keep those even with
    ``experimental_preserve_all_tensors``: on the Keras 3 RNN corpus model the loop-invariant
    pass-through of the input sequence is left unallocated (no data) or, in another loop, its
    buffer holds other tensors' bytes (denormals and gate activations where the sequence should
    be), while the loop's input, which it must equal, matches ours."""
    sg = wb.load(content).main
    index = {id(t): i for i, t in enumerate(sg.tensors)}
    read = {id(t) for op in sg.operators for t in op.inputs if t is not None}
    read |= {id(t) for t in sg.outputs}
    dead = {index[id(t)] for op in sg.operators if op.name == "WHILE" for t in op.outputs
            if id(t) not in read}
    values = {}
    for d in ref.get_tensor_details():
        if d["index"] in dead:
            continue
        try:
            values[d["index"]] = ref.get_tensor(d["index"])
        except ValueError:  # "Tensor data is null": LiteRT never allocated it
            continue
    return values


def assert_within_range(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Float tensors: NaN and infinities at the same places, finite values within 1e-4 of the
    finite values' dynamic range (a zero input can make rsqrt or log legitimately infinite);
    complex ones part by part, within 1e-4 of the largest magnitude; other types bit-exact."""
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    if expected.dtype.kind == "c" and expected.size:  # e.g. RFFT2D outputs
        tol = 1e-4 * max(float(np.max(np.abs(expected))), 1e-6) + 1e-6
        for part in ("real", "imag"):
            np.testing.assert_allclose(getattr(got, part), getattr(expected, part), rtol=0,
                                       atol=tol, err_msg=f"{what} ({part})")
        return
    if expected.dtype.kind != "f" or not expected.size:
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    g, e = got.astype(np.float64), expected.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(e), err_msg=f"{what}: NaN positions")
    inf = np.isinf(e)
    np.testing.assert_array_equal(g[inf], e[inf], err_msg=f"{what}: infinities")
    fin = np.isfinite(e)
    if fin.any():
        assert np.isfinite(g[fin]).all(), f"{what}: non-finite where LiteRT is finite"
        tol = 1e-4 * max(float(e[fin].max() - e[fin].min()), 1e-6) + 1e-6
        err = float(np.max(np.abs(g[fin] - e[fin])))
        assert err <= tol, f"{what}: max error {err:g} > {tol:g}"


def check_every_op_in_isolation(content: bytes, seed: int = 0) -> list:
    """Each of our kernels, fed LiteRT's own values of its inputs (LiteRT run on
    ``random_inputs(seed)``, every tensor preserved), gives LiteRT's output: integer and bool
    outputs bit-identical, float ones within 1e-4 of their range (``assert_within_range``).
    Every output must be a tensor LiteRT knows. Returns the outputs compared (TensorInfos)."""
    from workbench.interpreter import Interpreter

    ref = litert_interpreter(content, preserve_all=True)
    ref.allocate_tensors()
    for d, x in zip(ref.get_input_details(), random_inputs(ref.get_input_details(), seed)):
        ref.set_tensor(d["index"], x)
    ref.invoke()
    values = litert_values(ref, content)
    kept = {d["index"] for d in ref.get_tensor_details()}
    ours = Interpreter(model_content=content)
    ours.allocate_tensors()
    plan = ours._plans[0]
    compared = []
    for node, kernel in zip(plan.nodes, plan.kernels):
        ins = [None if t is None else (t.data if t.data is not None else values[t.index])
               for t in node.inputs]
        for o, got in zip(node.outputs, kernel.eval(ins)):
            if o is None:
                continue
            assert o.index in kept, f"LiteRT has no tensor {o.index} ({o.name!r})"
            if o.index in values:  # else a value LiteRT does not keep (see litert_values)
                assert_within_range(np.asarray(got), values[o.index], f"{node.path} {o.name}")
                compared.append(o)
    return compared
