"""Time full-integer (int8) post-training quantization of MobileNetV2: ours vs TF's converter.

Both quantize the same network with the same calibration samples in one process:

* ours: ``wb.load`` of the float32 corpus model (``tests/corpus.py``, MobileNetV2 alpha 1.0,
  224x224) ▸ ``wb.quantize(mode="int8", representative_dataset=...)`` (calibration in our
  interpreter, minmax) ▸ ``Model.to_bytes()``;
* TF 2.21: ``TFLiteConverter.from_keras_model`` of the same Keras model (the corpus builds its
  float file from it) with ``Optimize.DEFAULT``, the representative dataset and
  ``TFLITE_BUILTINS_INT8`` ▸ ``convert()`` (graph export, MLIR conversion, calibration in
  LiteRT, quantization).

Each side starts from its natural input (a float ``.tflite`` for us, the Keras model for TF) and
ends with the int8 file's bytes. Runs alternate (``--repeat``) and the medians and their ratio are
printed; nothing is asserted. Usage::

    .venv/bin/python benchmarks/quantize.py [--samples 100] [--repeat 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100, help="calibration samples")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs of each side")
    ap.add_argument("--calibration", default="minmax", help="our calibration method")
    args = ap.parse_args(argv)

    import workbench as wb
    from tests import corpus

    path = corpus.model_path("mobilenet_v2", "float32")
    samples = corpus.sample_inputs("mobilenet_v2", args.samples, seed=0)

    def dataset():
        for s in samples:
            yield [np.asarray(a) for a in s]

    with corpus._quiet():
        keras_model = corpus._build_keras("mobilenet_v2")
    import tensorflow as tf

    def ours() -> bytes:
        m = wb.load(path)
        q = wb.quantize(m, "int8", dataset, calibration=args.calibration, progress=False)
        return q.to_bytes()

    def theirs() -> bytes:
        conv = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = dataset
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        with corpus._quiet():
            return conv.convert()

    times: dict[str, list[float]] = {"ours": [], "tf": []}
    sizes: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, fn in (("ours", ours), ("tf", theirs)):
            t0 = time.perf_counter()
            data = fn()
            times[name].append(time.perf_counter() - t0)
            sizes[name] = len(data)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"MobileNetV2 int8, {args.samples} calibration samples, calibration="
          f"{args.calibration}, {os.cpu_count()} CPUs")
    print(f"{'':6} {'median s':>9} {'runs s':>24} {'size bytes':>11}")
    for k in ("ours", "tf"):
        runs = ", ".join(f"{t:.2f}" for t in times[k])
        print(f"{k:6} {med[k]:9.2f} {runs:>24} {sizes[k]:11d}")
    print(f"ratio tf/ours: {med['tf'] / med['ours']:.2f}x "
          f"({'ours faster' if med['ours'] < med['tf'] else 'TF faster'})")


if __name__ == "__main__":
    main()
