"""Interpreter speed: ours vs LiteRT in the same run, on the float32 corpus.

For each model: median invoke time of ours, of LiteRT with XNNPACK on 1 thread (its default
CPU path), and of LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``, timed in a child
process so an abort there cannot take this script down), then the ratios. Ours and XNNPACK take
turns in rounds of invokes, so a slow spell of a shared machine does not favour either.

    .venv/bin/python benchmarks/interpreter.py [--runs 10] [--modes float32] [names...]
"""

from __future__ import annotations

import os

# Compare single-threaded: LiteRT/XNNPACK runs with num_threads=1, so BLAS does too.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _inputs(details, seed=0):
    from tests.litert_oracle import random_inputs

    return random_inputs(details, seed)


def _prepared(it):
    """Allocate, set seeded inputs and warm up once."""
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), _inputs(it.get_input_details())):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it


def _time_rounds(its: list, runs: int, rounds: int = 5) -> list[float]:
    """Median invoke ms of each interpreter. They take turns in ``rounds`` blocks of
    ``runs // rounds`` invokes (at least 2), so a slow spell of a shared machine falls on all of
    them rather than on whichever ran first."""
    per = max(2, runs // rounds)
    times: list[list[float]] = [[] for _ in its]
    for r in range(rounds):
        order = range(len(its)) if r % 2 == 0 else reversed(range(len(its)))
        for i in order:
            it = its[i]
            for _ in range(per):
                t = time.perf_counter()
                it.invoke()
                times[i].append(time.perf_counter() - t)
    return [statistics.median(t) * 1e3 for t in times]


def _median_invoke_ms(it, runs: int) -> float:
    """Set seeded inputs, warm up once, then the median of ``runs`` timed invokes (ms)."""
    return _time_rounds([_prepared(it)], runs, rounds=1)[0]


def litert(path: str, resolver: str, threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_path=path, num_threads=threads,
                       experimental_op_resolver_type=getattr(OpResolverType, resolver))


def time_litert(path: str, runs: int, resolver: str, threads: int = 1) -> float:
    return _median_invoke_ms(litert(path, resolver, threads), runs)


def time_ours(path: str, runs: int) -> float:
    from workbench.interpreter import Interpreter

    return _median_invoke_ms(Interpreter(model_path=path), runs)


def time_ours_and_xnnpack(path: str, runs: int) -> tuple[float, float]:
    """Ours and LiteRT's default CPU path (XNNPACK) on 1 thread, timed in alternating rounds."""
    from workbench.interpreter import Interpreter

    ours = _prepared(Interpreter(model_path=path))
    xnn = _prepared(litert(path, "AUTO", 1))
    a, b = _time_rounds([ours, xnn], runs)
    return a, b


def time_ref_in_child(path: str, runs: int) -> float | None:
    code = ("import sys, json; sys.path.insert(0, %r); from benchmarks.interpreter import "
            "time_litert; print(json.dumps(time_litert(%r, %d, 'BUILTIN_REF')))"
            % (str(ROOT), path, runs))
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=1800)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--ref-runs", type=int, default=2)
    ap.add_argument("--modes", nargs="*", default=["float32"])
    ap.add_argument("--no-ref", action="store_true")
    args = ap.parse_args()
    from tests import corpus
    from workbench.errors import UnsupportedOpError

    names = args.names or list(corpus.MODELS)
    print(f"{'model':28s} {'ours ms':>9s} {'xnnpack1':>9s} {'ref ms':>9s} "
          f"{'ours/xnn':>9s} {'ref/ours':>9s}")
    for mode in args.modes:
        for name in names:
            if mode not in corpus.MODELS[name].modes:
                continue
            p = corpus.model_path(name, mode)
            if p is None:
                continue
            label = f"{name}/{mode}"
            try:
                ours, xnn = time_ours_and_xnnpack(str(p), args.runs)
            except UnsupportedOpError as e:
                print(f"{label:28s} unsupported: {e.op_name}")
                continue
            ref = None if args.no_ref else time_ref_in_child(str(p), args.ref_runs)
            ref_s = f"{ref:9.2f}" if ref is not None else (
                "        -" if args.no_ref else "    crash")
            ratio_ref = f"{ref / ours:9.1f}" if ref is not None else "        -"
            print(f"{label:28s} {ours:9.2f} {xnn:9.2f} {ref_s} {ours / xnn:9.2f} {ratio_ref}",
                  flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
