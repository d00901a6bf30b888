"""Delegate cost model vs published TFLite latencies, from the committed profiles.

Prints every usable row of ``workbench/delegates/data/published_latency_calibration.csv`` with
the estimate of the committed device profiles (``workbench/delegates/devices/*.json``) and its
error, then the median absolute percentage error per backend (CPU, GPU, NNAPI, CoreML/Metal;
target <= 20% each). Needs no TensorFlow: the per-op tables of the calibration models are
committed (``calibration_ops.csv.gz``; ``fit_delegates.py tables`` regenerates them).

    python benchmarks/delegates.py            # per-row table + MdAPE
    python benchmarks/delegates.py --summary  # MdAPE only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_delegates as F

TARGET = 20.0


def evaluate() -> pd.DataFrame:
    """Usable calibration rows with ``estimate_ms`` and ``ape`` (absolute % error)."""
    from workbench.delegates import profiles

    rows, _ = F.calibration_rows()
    tables = F.load_tables()
    devices = {n: profiles.load_device(n) for n in profiles.list_devices()}
    est = F.predict(rows, tables, devices)
    rows = rows.assign(estimate_ms=est)
    rows["ape"] = (rows["estimate_ms"] - rows["latency_ms"]).abs() / rows["latency_ms"] * 100
    return rows


def mdape_by_backend(rows: pd.DataFrame) -> pd.DataFrame:
    g = rows.groupby("group")["ape"]
    out = pd.DataFrame({"rows": g.size(), "mdape_%": g.median(), "p90_%": g.quantile(0.9)})
    return out.reindex([b for b in F.GROUPS if b in out.index])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--summary", action="store_true", help="MdAPE per backend only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = evaluate()
    dt = time.perf_counter() - t0
    if not args.summary:
        show = rows[["model", "quant", "device", "backend", "threads", "latency_ms",
                     "estimate_ms", "ape"]].copy()
        show["model"] = show["model"].str.slice(0, 28)
        show["threads"] = show["threads"].map(lambda v: "" if pd.isna(v) else str(int(v)))
        with pd.option_context("display.width", 160, "display.max_rows", None):
            print(show.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print()
    table = mdape_by_backend(rows)
    print(f"{len(rows)} published rows, estimated in {dt * 1e3:.0f} ms "
          "(estimates, not measurements)")
    print(table.to_string(float_format=lambda v: f"{v:.1f}"))
    ok = bool((table["mdape_%"] <= TARGET).all())
    print(f"target MdAPE <= {TARGET:.0f}% per backend: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
