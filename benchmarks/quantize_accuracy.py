"""Accuracy and size of our int8 quantization vs TF 2.21's converter on four trained tasks.

For each task of ``datasets/trained_tasks.py`` (a CNN on scikit-learn's digits, a MobileNet-style
net on digits upsampled to 32x32, a Conv1D net and a small transformer block on synthetic
waveforms), the float32 model, TF's
full-integer int8 (float I/O) and ours (``wb.quantize(float, "int8", same 100 calibration
samples, calibration=<method>)``, float I/O) are all run in LiteRT on the held-out test split.
Prints one row per (task, model): top-1 accuracy (%), its difference to TF's int8 in points, and
the file size with its ratio to TF's. Usage::

    .venv/bin/python benchmarks/quantize_accuracy.py [--tasks digits_cnn ...] [--methods ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datasets.trained_tasks import TASKS, accuracy, load_task  # noqa: E402

METHODS = ("minmax", "moving_average", "percentile", "mse", "kl")


def evaluate(task: str, methods=METHODS) -> list[dict]:
    """Rows ``{task, model, accuracy, size, seconds}`` for float32, TF int8 and ours per method
    (calibration statistics are collected once and shared by the methods)."""
    import workbench as wb
    from workbench.quantize.calibrate import collect

    t = load_task(task)
    fbytes = t.float_path.read_bytes()
    tbytes = t.tf_int8_path.read_bytes()
    rows = [{"task": task, "model": "float32", "accuracy": accuracy(fbytes, t.x_test, t.y_test),
             "size": len(fbytes), "seconds": float("nan")},
            {"task": task, "model": "tf int8", "accuracy": accuracy(tbytes, t.x_test, t.y_test),
             "size": len(tbytes), "seconds": float("nan")}]
    m = wb.load(fbytes)
    t0 = time.perf_counter()
    stats = collect(m, t.calib, progress=False)
    t_collect = time.perf_counter() - t0
    for meth in methods:
        t0 = time.perf_counter()
        q = wb.quantize(m, "int8", None, calibration=meth, stats=stats, progress=False)
        data = q.to_bytes()
        rows.append({"task": task, "model": f"ours {meth}",
                     "accuracy": accuracy(data, t.x_test, t.y_test), "size": len(data),
                     "seconds": t_collect + time.perf_counter() - t0})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", default=list(TASKS))
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    args = ap.parse_args(argv)
    print(f"{'task':17} {'model':20} {'acc %':>6} {'vs TF':>6} {'size B':>8} {'size/TF':>8} "
          f"{'s':>5}")
    for task in args.tasks:
        rows = evaluate(task, args.methods)
        ref = next(r for r in rows if r["model"] == "tf int8")
        for r in rows:
            d = r["accuracy"] - ref["accuracy"]
            print(f"{task:17} {r['model']:20} {r['accuracy']:6.1f} {d:+6.1f} {r['size']:8d} "
                  f"{r['size'] / ref['size']:8.3f} {r['seconds']:5.1f}")
        best = max((r for r in rows if r["model"].startswith("ours")),
                   key=lambda r: r["accuracy"])
        print(f"{task:17} best ours: {best['model']} ({best['accuracy']:.1f} vs TF "
              f"{ref['accuracy']:.1f})")


if __name__ == "__main__":
    main()
