"""Recurrent ops: time per LSTM step, ours vs LiteRT in the same run.

UNIDIRECTIONAL_SEQUENCE_LSTM built by hand (the test builders) in its float32, hybrid
(dynamic-range) and fully integer (8x8_16) forms, with and without layer normalization and
peepholes, over a long sequence; LiteRT runs with its built-in kernels (no XNNPACK delegate:
XNNPACK does not take these ops). Prints the median time per step and the ratio.

    .venv/bin/python benchmarks/recurrent.py [--steps 2000] [--runs 5] [--cells 32]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cases(steps: int, cells: int):
    from tests.kernels.test_integer_lstm import integer_lstm_model
    from tests.kernels.test_recurrent import lstm_model

    shape = dict(T=steps, B=1, I=16, C=cells)
    yield "float32", lstm_model(**shape), np.float32
    yield "hybrid", lstm_model(hybrid=True, **shape), np.float32
    yield "float32 layer-norm+peephole", lstm_model(layer_norm=True, peephole=True, **shape), \
        np.float32
    yield "int8", integer_lstm_model(**shape), np.int8
    yield "int8 layer-norm+peephole", integer_lstm_model(layer_norm=True, peephole=True,
                                                         **shape), np.int8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cells", type=int, default=32)
    args = ap.parse_args()
    from tests.litert_oracle import litert_interpreter
    from workbench.interpreter import Interpreter

    print(f"| LSTM ({args.cells} cells, 16 inputs, batch 1) | ours us/step | LiteRT us/step | "
          "ours / LiteRT |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, (content, xshape), dt in cases(args.steps, args.cells):
        x = (rng.integers(-128, 128, xshape) if dt == np.int8 else
             rng.standard_normal(xshape)).astype(dt)
        ours, ref = Interpreter(model_content=content), litert_interpreter(content)
        times = {"ours": [], "litert": []}
        for it in (ours, ref):
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()  # warm-up
        for _ in range(args.runs):  # alternate, so a slow spell hits both
            for key, it in (("ours", ours), ("litert", ref)):
                t = time.perf_counter()
                it.invoke()
                times[key].append((time.perf_counter() - t) / args.steps * 1e6)
        a, b = statistics.median(times["ours"]), statistics.median(times["litert"])
        print(f"| {name} | {a:.1f} | {b:.2f} | {a / b:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
