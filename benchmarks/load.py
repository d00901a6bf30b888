"""Load-time benchmark: ``workbench.load`` against LiteRT's interpreter construction.

Usage::

    .venv/bin/python benchmarks/load.py                 # the corpus in .cache/corpus/
    .venv/bin/python benchmarks/load.py a.tflite b.tflite --runs 9

For each model it prints the file size; the median time of ``wb.load(path)`` (which memory-maps
the file and verifies all of it); the median time of LiteRT's
``Interpreter(model_path=...)`` construction, and of construction plus ``allocate_tensors()``;
the ratio ours / LiteRT; and the RSS growth of one ``wb.load`` measured in a fresh subprocess
(imports done first, then the peak is reset, the model is loaded and nothing else is touched):
the peak (``VmHWM``) and its split into anonymous memory (``RssAnon``: heap, any copy of
weights would land here) and mapped file pages (``RssFile``: pages of the memory-mapped file
the kernel mapped while the FlatBuffer was read, including its fault-around neighbours; shared
page cache, not copies). Constant buffers stay zero-copy views of the mapped file, so the
anonymous growth is the IR only, far below the model size.

Default corpus: every ``.tflite`` under ``<repo>/.cache/corpus/`` (built by ``tests/corpus.py``).
If that is empty, two small models of the corpus are built (through ``tests.corpus``, or
directly with TensorFlow into a temporary directory if that module is missing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Run in a fresh interpreter: load one model and report the RSS it cost.
_RSS_PROBE = r"""
import json, sys
def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) * 1024
    return out
import workbench as wb
import workbench.schema.reader, workbench.ir.verify  # noqa: F401  (imports before measuring)
from workbench.schema.fbs import load_schema
load_schema()
reset = True
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
except OSError:
    reset = False
before = status()
m = wb.load(sys.argv[1])
after = status()
print(json.dumps({"before": before["VmRSS"], "hwm_before": before["VmHWM"],
                  "hwm_after": after["VmHWM"], "rss_after": after["VmRSS"], "reset": reset,
                  "anon": after.get("RssAnon", 0) - before.get("RssAnon", 0),
                  "file": after.get("RssFile", 0) - before.get("RssFile", 0),
                  "weights": m.weight_bytes}))
"""


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rss_growth(path: Path) -> dict:
    p = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True,
                       text=True, cwd=REPO, timeout=600)
    if p.returncode:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1]}
    d = json.loads(p.stdout.strip().splitlines()[-1])
    base = d["before"] if d["reset"] else max(d["before"], d["hwm_before"])
    d["peak_growth"] = max(0, d["hwm_after"] - base)
    d["rss_growth"] = max(0, d["rss_after"] - d["before"])
    return d


def default_corpus() -> list[Path]:
    try:
        from tests import corpus as corpus_mod
    except ImportError:
        corpus_mod = None
    cache = corpus_mod.CACHE_DIR if corpus_mod else REPO / ".cache" / "corpus"
    paths = sorted(cache.glob("*.tflite")) if cache.is_dir() else []
    if paths:
        return paths
    if corpus_mod is not None:
        names = [n for n, s in corpus_mod.MODELS.items() if not s.big][:2]
        got = corpus_mod.corpus(big=False, modes=("float32", "int8"), names=names)
        paths = [p for _, _, p in got if p is not None]
        if paths:
            return paths
    return build_two_models(Path(tempfile.mkdtemp(prefix="wb-bench-")))


def build_two_models(out: Path) -> list[Path]:
    """Two small models (float32 and full int8) converted with TensorFlow into ``out``."""
    import keras
    import numpy as np
    import tensorflow as tf

    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(32, 32, 3), batch_size=1)
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.Conv2D(32, 1)(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, L.Dense(10)(x))
    paths = []
    for mode in ("float32", "int8"):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "int8":
            def rep():
                rng = np.random.default_rng(0)
                for _ in range(4):
                    yield [rng.standard_normal((1, 32, 32, 3)).astype(np.float32)]

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = rep
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        p = out / f"small__{mode}.tflite"
        p.write_bytes(conv.convert())
        paths.append(p)
    return paths


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="*", type=Path, help=".tflite files (default: the corpus)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per measurement (median)")
    ap.add_argument("--no-rss", action="store_true", help="skip the RSS subprocess probe")
    args = ap.parse_args(argv)

    import workbench as wb

    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = None

    paths = args.paths or default_corpus()
    head = (f"{'model':44s} {'size':>9s} {'wb.load':>9s} {'LiteRT':>9s} {'+alloc':>9s} "
            f"{'ours/LiteRT':>11s} {'ours/+alloc':>11s} {'RSS peak+':>10s} {'anon+':>9s} "
            f"{'anon/size':>9s} {'file+':>9s}")
    print(head)
    print("-" * len(head))
    tot = {"size": 0, "ours": 0.0, "lrt": 0.0, "lrt_alloc": 0.0, "rss": 0, "anon": 0, "file": 0}
    for p in paths:
        size = p.stat().st_size
        try:
            wb.load(p)  # warm-up (and skip files we reject)
        except wb.ModelError as e:
            print(f"{p.name:44s} {_fmt_bytes(size):>9s}  ModelError: {e}")
            continue
        ours = _median_time(lambda p=p: wb.load(p), args.runs)
        lrt = lrt_alloc = float("nan")
        if Interpreter is not None:
            Interpreter(model_path=str(p))  # warm-up
            lrt = _median_time(lambda p=p: Interpreter(model_path=str(p)), args.runs)

            def alloc(p=p):
                Interpreter(model_path=str(p)).allocate_tensors()

            lrt_alloc = _median_time(alloc, args.runs)
        rss = {} if args.no_rss else rss_growth(p)
        growth, anon, file_ = rss.get("peak_growth"), rss.get("anon"), rss.get("file")
        rss_s = _fmt_bytes(growth) if growth is not None else rss.get("error", "-")[:10]
        anon_s = _fmt_bytes(anon) if anon is not None else "-"
        file_s = _fmt_bytes(file_) if file_ is not None else "-"
        pct = f"{100 * anon / size:8.1f}%" if anon is not None else "-"
        print(f"{p.name:44s} {_fmt_bytes(size):>9s} {ours * 1e3:7.2f}ms {lrt * 1e3:7.2f}ms "
              f"{lrt_alloc * 1e3:7.2f}ms {ours / lrt:10.2f}x {ours / lrt_alloc:10.2f}x "
              f"{rss_s:>10s} {anon_s:>9s} {pct:>9s} {file_s:>9s}", flush=True)
        tot["size"] += size
        tot["ours"] += ours
        tot["lrt"] += lrt
        tot["lrt_alloc"] += lrt_alloc
        tot["rss"] += growth or 0
        tot["anon"] += anon or 0
        tot["file"] += file_ or 0
    print("-" * len(head))
    pct = f"{100 * tot['anon'] / tot['size']:8.1f}%" if tot["size"] else "-"
    print(f"{'TOTAL (' + str(len(paths)) + ' models)':44s} {_fmt_bytes(tot['size']):>9s} "
          f"{tot['ours'] * 1e3:7.1f}ms {tot['lrt'] * 1e3:7.1f}ms {tot['lrt_alloc'] * 1e3:7.1f}ms "
          f"{tot['ours'] / tot['lrt']:10.2f}x {tot['ours'] / tot['lrt_alloc']:10.2f}x "
          f"{_fmt_bytes(tot['rss']):>10s} {_fmt_bytes(tot['anon']):>9s} {pct:>9s} "
          f"{_fmt_bytes(tot['file']):>9s}")
    print("\nwb.load: median of %d runs (mmap + full verification). LiteRT: "
          "Interpreter(model_path=...) construction, then with allocate_tensors(). "
          "RSS peak+: VmHWM growth of one wb.load in a fresh process; anon+: RssAnon growth "
          "(heap: the IR; copies of weights would show here); file+: RssFile growth (pages of "
          "the mapped file touched, shared page cache)." % args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
