"""Running a model in LiteRT (the oracle) with deterministic inputs."""

from __future__ import annotations

import numpy as np


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
