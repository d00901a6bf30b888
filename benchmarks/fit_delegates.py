"""Calibrate the device profiles of ``workbench.delegates`` against published TFLite latencies.

Three steps, each usable alone::

    python benchmarks/fit_delegates.py models   # Keras (weights=None) -> .tflite, cached
    python benchmarks/fit_delegates.py tables   # cached .tflite -> committed per-op tables
    python benchmarks/fit_delegates.py fit      # tables + published CSV -> device files + report

``models`` builds every architecture named in the calibration CSV that we can express with Keras
(latency does not depend on weight values, so ``weights=None`` and a random representative
dataset are enough) and converts it with TensorFlow's converter: ``float`` as float32,
``quant`` as full-integer int8 (the published "_quant" files are uint8 QAT models; both are
8-bit integer kernels on every backend modelled here), ``hybrid`` as dynamic-range. The files
are cached under ``.cache/delegates/`` and never committed.

``tables`` turns each cached model into the cost model's per-op feature table
(:func:`workbench.delegates.cost.op_features`: kind, dtype, MACs, bytes) plus, per delegate,
which ops the partitioner claims, and writes them all into
``workbench/delegates/data/calibration_ops.csv.gz`` (small; CI and the tests use it instead of
rebuilding Keras models).

``fit`` fits, per (device, processor), a few parameters (peak MAC/s per dtype, thread scaling,
per-op dispatch, partition launch) by regularized least squares on log latency, with per-kind
efficiencies shared by every device of one processor family, then writes the fitted values
back into ``workbench/delegates/devices/*.json`` (with provenance) and the report
``docs/delegates_calibration.md`` (per-row predictions, MdAPE per backend, leave-one-model-out).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = ROOT / ".cache" / "delegates"
DATA = ROOT / "workbench" / "delegates" / "data"
CSV = DATA / "published_latency_calibration.csv"
TABLES = DATA / "calibration_ops.csv.gz"
REPORT = ROOT / "docs" / "delegates_calibration.md"


# --------------------------------------------------------------------------------------------
# Which architecture each CSV row names.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arch:
    family: str  # mobilenet_v1 | mobilenet_v2 | inception_v3 | inception_v4 | squeezenet
    alpha: float = 1.0
    res: int = 224

    @property
    def key(self) -> str:
        if self.family in ("mobilenet_v1", "mobilenet_v2"):
            return f"{self.family}_{self.alpha:g}_{self.res}"
        return self.family


def arch_of(name: str) -> Arch | None:
    """The architecture a calibration-CSV model name denotes, or None if we cannot build it."""
    n = name.strip().lower()
    if "(" in n and "gpu-delegate sample" not in n:
        return None  # Coral table names: devices we cannot identify (see the report)
    if n in ("mobilenet v1", "mobilenet v2", "inception v4"):
        return None  # Coral Edge TPU FAQ rows
    if "gpu-delegate sample" in n:
        return Arch("mobilenet_v1", 1.0, 224)
    if n in ("mobilenet_1.0_224", "mobilenet-v1-1-224"):
        return Arch("mobilenet_v1", 1.0, 224)
    if n == "mobilenet-v2-1-224":
        return Arch("mobilenet_v2", 1.0, 224)
    m = re.fullmatch(r"mobilenet_v([12])_([0-9.]+)_([0-9]+)", n)
    if m:
        return Arch(f"mobilenet_v{m.group(1)}", float(m.group(2)), int(m.group(3)))
    if n == "inception_v3":
        return Arch("inception_v3", 1.0, 299)
    if n == "inception_v4":
        return Arch("inception_v4", 1.0, 299)
    if n == "squeezenet":
        return Arch("squeezenet", 1.0, 224)
    return None


def quant_mode(q: str) -> str | None:
    q = q.strip().lower()
    if q == "float":
        return "float"
    if q.startswith("quant") or q == "int8":
        return "quant"
    if q.startswith("post-training quantized"):
        return "hybrid"
    return None


# --------------------------------------------------------------------------------------------
# Keras architectures (weights=None). SqueezeNet and Inception-V4 are written from their papers.
# --------------------------------------------------------------------------------------------

def _squeezenet(keras, res: int):
    """SqueezeNet v1.0 (Iandola et al. 2016, Table 1): 1.25M parameters, ~5 MB in float32,
    which matches the hosted TFLite model's size."""
    L = keras.layers
    x_in = keras.Input((res, res, 3))
    x = L.Conv2D(96, 7, strides=2, activation="relu")(x_in)
    x = L.MaxPooling2D(3, 2)(x)

    def fire(x, s, e):
        s1 = L.Conv2D(s, 1, activation="relu")(x)
        a = L.Conv2D(e, 1, activation="relu")(s1)
        b = L.Conv2D(e, 3, padding="same", activation="relu")(s1)
        return L.Concatenate()([a, b])

    x = fire(x, 16, 64)
    x = fire(x, 16, 64)
    x = fire(x, 32, 128)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(x, 32, 128)
    x = fire(x, 48, 192)
    x = fire(x, 48, 192)
    x = fire(x, 64, 256)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(x, 64, 256)
    x = L.Conv2D(1000, 1, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Softmax()(x)
    return keras.Model(x_in, x)


def _inception_v4(keras, res: int):
    """Inception-v4 (Szegedy et al. 2016, figures 3-9): stem, 4x A, reduction A, 7x B,
    reduction B, 3x C, average pool, 1001-way classifier (as TF-slim's)."""
    L = keras.layers

    def cbr(x, f, k, s=1, pad="same"):
        kh, kw = (k, k) if isinstance(k, int) else k
        x = L.Conv2D(f, (kh, kw), strides=s, padding=pad, use_bias=False)(x)
        x = L.BatchNormalization()(x)
        return L.Activation("relu")(x)

    x_in = keras.Input((res, res, 3))
    x = cbr(x_in, 32, 3, 2, "valid")
    x = cbr(x, 32, 3, 1, "valid")
    x = cbr(x, 64, 3)
    x = L.Concatenate()([L.MaxPooling2D(3, 2)(x), cbr(x, 96, 3, 2, "valid")])
    a = cbr(cbr(x, 64, 1), 96, 3, 1, "valid")
    b = cbr(x, 64, 1)
    b = cbr(cbr(cbr(b, 64, (7, 1)), 64, (1, 7)), 96, 3, 1, "valid")
    x = L.Concatenate()([a, b])
    x = L.Concatenate()([cbr(x, 192, 3, 2, "valid"), L.MaxPooling2D(3, 2)(x)])

    def block_a(x):
        p = cbr(L.AveragePooling2D(3, 1, padding="same")(x), 96, 1)
        return L.Concatenate()([
            cbr(x, 96, 1), cbr(cbr(x, 64, 1), 96, 3),
            cbr(cbr(cbr(x, 64, 1), 96, 3), 96, 3), p])

    def block_b(x):
        p = cbr(L.AveragePooling2D(3, 1, padding="same")(x), 128, 1)
        b2 = cbr(cbr(cbr(x, 192, 1), 224, (1, 7)), 256, (7, 1))
        b3 = cbr(x, 192, 1)
        for f, k in ((192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))):
            b3 = cbr(b3, f, k)
        return L.Concatenate()([cbr(x, 384, 1), b2, b3, p])

    def block_c(x):
        p = cbr(L.AveragePooling2D(3, 1, padding="same")(x), 256, 1)
        b2 = cbr(x, 384, 1)
        b3 = cbr(cbr(cbr(x, 384, 1), 448, (1, 3)), 512, (3, 1))
        return L.Concatenate()([
            cbr(x, 256, 1), cbr(b2, 256, (1, 3)), cbr(b2, 256, (3, 1)),
            cbr(b3, 256, (3, 1)), cbr(b3, 256, (1, 3)), p])

    for _ in range(4):
        x = block_a(x)
    x = L.Concatenate()([
        cbr(x, 384, 3, 2, "valid"),
        cbr(cbr(cbr(x, 192, 1), 224, 3), 256, 3, 2, "valid"),
        L.MaxPooling2D(3, 2)(x)])
    for _ in range(7):
        x = block_b(x)
    x = L.Concatenate()([
        cbr(cbr(x, 192, 1), 192, 3, 2, "valid"),
        cbr(cbr(cbr(cbr(x, 256, 1), 256, (1, 7)), 320, (7, 1)), 320, 3, 2, "valid"),
        L.MaxPooling2D(3, 2)(x)])
    for _ in range(3):
        x = block_c(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(1001, activation="softmax")(x)
    return keras.Model(x_in, x)


def build_keras(arch: Arch):
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    shape = (arch.res, arch.res, 3)
    A = keras.applications
    if arch.family == "mobilenet_v1":
        return A.MobileNet(input_shape=shape, alpha=arch.alpha, weights=None)
    if arch.family == "mobilenet_v2":
        return A.MobileNetV2(input_shape=shape, alpha=arch.alpha, weights=None)
    if arch.family == "inception_v3":
        return A.InceptionV3(input_shape=shape, weights=None)
    if arch.family == "inception_v4":
        return _inception_v4(keras, arch.res)
    if arch.family == "squeezenet":
        return _squeezenet(keras, arch.res)
    raise ValueError(arch)


def convert(model, mode: str, res: int) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "hybrid":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "quant":
        rng = np.random.default_rng(0)

        def rep():
            for _ in range(2):  # values do not change latency; a range is all we need
                yield [rng.uniform(-1, 1, (1, res, res, 3)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
    return conv.convert()


def load_csv() -> pd.DataFrame:
    """The calibration rows with their architecture key and precision mode attached."""
    df = pd.read_csv(CSV)
    archs = [arch_of(m) for m in df["model"]]
    df["arch"] = [a.key if a else None for a in archs]
    df["mode"] = [quant_mode(q) for q in df["quant"]]
    return df


def wanted_models() -> list[tuple[Arch, str]]:
    df = pd.read_csv(CSV)
    out = {}
    for m, q in zip(df["model"], df["quant"]):
        a, mode = arch_of(m), quant_mode(q)
        if a is not None and mode is not None:
            out[(a.key, mode)] = (a, mode)
    # the tutorial and the tests also use these two
    return sorted(out.values(), key=lambda t: (t[0].key, t[1]))


def cached_path(arch: Arch, mode: str) -> Path:
    return CACHE / f"{arch.key}_{mode}.tflite"


def cmd_models(args) -> None:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    CACHE.mkdir(parents=True, exist_ok=True)
    todo = [(a, m) for a, m in wanted_models() if not cached_path(a, m).exists()]
    print(f"{len(todo)} models to convert into {CACHE}")
    by_arch: dict[str, list] = {}
    for a, m in todo:
        by_arch.setdefault(a.key, []).append((a, m))
    for items in by_arch.values():
        model = build_keras(items[0][0])
        for a, mode in items:
            data = convert(model, mode, a.res)
            tmp = cached_path(a, mode).with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, cached_path(a, mode))
            print(f"  {a.key} {mode}: {len(data) / 1e6:.1f} MB", flush=True)


DELEGATES = ("gpu", "nnapi", "hexagon", "coreml", "xnnpack")


PARTS = DATA / "calibration_partitions.json"


def cmd_tables(args) -> None:
    import workbench as wb
    from workbench.delegates.cost import op_features

    frames, parts_all = [], {}
    for a, mode in wanted_models():
        p = cached_path(a, mode)
        if not p.exists():
            print(f"missing {p}: run the 'models' step", file=sys.stderr)
            continue
        m = wb.load(str(p))
        f = op_features(m)
        entry = {}
        for d in DELEGATES:
            assign, parts, how = _claims(m, d, mode)
            f[f"part_{d}"] = assign
            entry[d] = {"parts": parts, "source": how}
        f.insert(0, "mode", mode)
        f.insert(0, "arch", a.key)
        frames.append(f)
        parts_all[f"{a.key}/{mode}"] = entry
        print(f"  {a.key} {mode}: {len(f)} ops", flush=True)
    out = pd.concat(frames, ignore_index=True)
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = TABLES.with_name(TABLES.name + ".tmp")
    out.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    os.replace(tmp, TABLES)
    tmp = PARTS.with_name(PARTS.name + ".tmp")
    tmp.write_text(json.dumps(parts_all, indent=0, sort_keys=True) + "\n")
    os.replace(tmp, PARTS)
    print(f"wrote {TABLES} ({len(out)} ops, {TABLES.stat().st_size / 1e3:.0f} kB) and {PARTS}")


def _claims(model, delegate: str, mode: str) -> tuple[list[int], list[dict], str]:
    """Partition id per op for ``delegate`` (-1: CPU), the delegated partitions' traffic, and
    where it came from ("partitioner", or "assumed" while a delegate's rules are missing)."""
    from workbench.delegates.estimate import assign_partitions
    from workbench.delegates.rules import DELEGATES as RULES

    if delegate in RULES:
        assign, parts, _ = assign_partitions(model, delegate)
        return [int(v) for v in assign], [{k: v for k, v in p.items() if k != "ops"}
                                          for p in parts], "partitioner"
    # No rules module yet: these CNNs are fully supported by the delegates that accept their
    # precision (delegate_facts.md section 2), so claim everything or nothing.
    accepts = {"gpu": True, "nnapi": True, "hexagon": mode == "quant",
               "coreml": mode == "float"}[delegate]
    n = len(model.main.operators)
    if not accepts:
        return [-1] * n, [], "assumed"
    sg = model.main
    ib = sum(int(t.nbytes) for t in sg.inputs)
    ob = sum(int(t.nbytes) for t in sg.outputs)
    return [0] * n, [{"id": 0, "in_bytes": float(ib), "n_in": len(sg.inputs),
                      "out_bytes": float(ob), "n_out": len(sg.outputs)}], "assumed"


# --------------------------------------------------------------------------------------------
# The fit.
# --------------------------------------------------------------------------------------------

#: CSV backend -> (delegate, MdAPE group). GPU-OpenGL and unnamed GPU rows are the Android GPU
#: delegate too (its OpenGL backend predates OpenCL); Metal and Core ML are the iOS group.
BACKENDS = {"CPU": ("cpu", "CPU"), "GPU": ("gpu", "GPU"), "GPU-OpenCL": ("gpu", "GPU"),
            "GPU-OpenGL": ("gpu", "GPU"), "GPU-Metal": ("gpu", "CoreML/Metal"),
            "NNAPI": ("nnapi", "NNAPI"), "CoreML": ("coreml", "CoreML/Metal"),
            "DSP": ("hexagon", "DSP")}
GROUPS = ("CPU", "GPU", "NNAPI", "CoreML/Metal")


def calibration_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(usable rows, skipped rows with the reason) of the published table."""
    from workbench.delegates.profiles import DeviceProfileError, load_device

    df = load_csv()
    keep, why = [], []
    for r in df.itertuples():
        reason = ""
        if r.backend not in BACKENDS:
            reason = f"backend {r.backend!r} not modelled (EdgeTPU is not a required backend)"
        elif r.arch is None:
            reason = "architecture not identified or not buildable (Coral table names)"
        elif r.mode is None:
            reason = f"precision {r.quant!r} not modelled"
        else:
            try:
                load_device(r.device)
            except DeviceProfileError:
                reason = "device not identified (Coral footnotes unavailable)"
        if reason:
            why.append(reason)
            keep.append(False)
            continue
        why.append("")
        keep.append(True)
    df["skip_reason"] = why
    use = df[keep].copy()
    use["device_key"] = [load_device(d).name for d in use["device"]]
    use["delegate"] = [BACKENDS[b][0] for b in use["backend"]]
    use["group"] = [BACKENDS[b][1] for b in use["backend"]]
    # blank thread counts: the sources say "single (large/big) core" or give none (1 assumed)
    use["threads_used"] = use["threads"].fillna(1).astype(int)
    use["precision"] = [None for _ in range(len(use))]
    return use.reset_index(drop=True), df[~np.array(keep)].copy()


def load_tables() -> dict[tuple[str, str], dict]:
    """Per (arch, mode): OpArrays and, per delegate, (assign, parts)."""
    from workbench.delegates.cost import OpArrays

    t = pd.read_csv(TABLES)
    pj = json.loads(PARTS.read_text())
    out = {}
    for (arch, mode), f in t.groupby(["arch", "mode"], sort=False):
        f = f.reset_index(drop=True)
        entry = {"ops": OpArrays.from_features(f), "features": f, "parts": {}}
        for d in DELEGATES:
            assign = f[f"part_{d}"].to_numpy(dtype=np.int64)
            entry["parts"][d] = (assign, pj[f"{arch}/{mode}"][d]["parts"])
        entry["parts"]["cpu"] = (np.full(len(f), -1, dtype=np.int64), [])
        out[(arch, mode)] = entry
    return out


#: Prior sd of log(value): effective peaks, bandwidths and per-op costs are known from specs
#: only to within a few x (clocks, drivers and benchmark apps differ); launch costs less.
SIGMA_PEAK = math.log(5.0)
SIGMA_LAUNCH = math.log(10.0)
SIGMA_SPEED = math.log(10.0)


@dataclass
class Param:
    device: str
    proc: str
    field: str  # peak_gmacs | dispatch_us | launch_us | thread_efficiency | efficiency
    sub: str | None  # dtype or kind
    prior: float
    sigma: float  # prior sd of log(value) (logit for thread_efficiency)
    shared: tuple[str, ...] = ()  # devices sharing it (efficiency)


def _logit(p):
    return math.log(p / (1 - p))


def _value(p: Param, theta: float) -> float:
    if p.field == "thread_efficiency":
        return 1.0 / (1.0 + math.exp(-theta))
    return math.exp(theta)


def _theta0(p: Param) -> float:
    return _logit(p.prior) if p.field == "thread_efficiency" else math.log(p.prior)


def build_params(rows: pd.DataFrame, devices: dict) -> list[Param]:
    """The few parameters the data can inform, each with its spec prior."""
    params: list[Param] = []
    seen = set()

    def add(p: Param):
        k = (p.device, p.proc, p.field, p.sub)
        if k not in seen:
            seen.add(k)
            params.append(p)

    tables_dtypes = {}
    for (dev_key, deleg), g in rows.groupby(["device_key", "delegate"]):
        dev = devices[dev_key]
        proc = dev.processor_for(deleg)
        modes = set(g["mode"])
        for mode in modes:
            dt = {"float": "float32", "quant": "int8", "hybrid": "hybrid"}[mode]
            if proc.kind == "gpu" or deleg == "coreml":
                dt = "float16"
            add(Param(dev_key, proc.name, "peak_gmacs", dt, proc.peak_gmacs[
                proc.peak(dt)[1]], SIGMA_PEAK))
        add(Param(dev_key, proc.name, "dispatch_us", None, proc.dispatch_us, SIGMA_PEAK))
        add(Param(dev_key, proc.name, "bandwidth_gbps", None, proc.bandwidth_gbps,
                  SIGMA_PEAK))
        if proc.kind != "cpu":
            add(Param(dev_key, proc.name, "launch_us", None, proc.launch_us, SIGMA_LAUNCH))
        # one common factor on throughput (peaks and bandwidth up, dispatch and launch down):
        # clocks, drivers and benchmark apps move all of them together
        add(Param(dev_key, proc.name, "speed", None, 1.0, SIGMA_SPEED))
        if proc.kind == "cpu" and (g["threads_used"] > 1).any() and proc.cores > 1:
            add(Param(dev_key, proc.name, "thread_efficiency", None, proc.thread_efficiency,
                      1.0))
        tables_dtypes[(dev_key, proc.name)] = proc
    # per-kind efficiencies shared by every device's processor of the same name
    fam: dict[str, list[str]] = {}
    for dev_key, pname in tables_dtypes:
        fam.setdefault(pname, []).append(dev_key)
    for pname, devs in fam.items():
        n_rows = int(sum(((rows["device_key"] == d) & (rows["delegate"].map(
            lambda x, d=d: devices[d].delegates.get(x)) == pname)).sum() for d in devs))
        if n_rows < 8:
            continue  # too few rows to say anything about op kinds: keep the priors
        proto = devices[devs[0]].processors[pname]
        for kind in ("depthwise", "fc", "pool", "elementwise"):
            add(Param("*", pname, "efficiency", kind, proto.eff(kind), math.log(3.0),
                      shared=tuple(devs)))
    return params


def apply(devices: dict, params: list[Param], theta: np.ndarray) -> dict:
    """Devices with the parameters set to ``theta`` (copies; inputs untouched)."""
    import dataclasses

    new = {}
    edits: dict[tuple[str, str], dict] = {}
    for p, t in zip(params, theta):
        v = _value(p, float(t))
        for d in (p.shared or (p.device,)):
            e = edits.setdefault((d, p.proc), {})
            if p.field == "speed":
                e["_speed"] = v
            elif p.field in ("peak_gmacs", "efficiency"):
                e.setdefault(p.field, {})[p.sub] = v
            else:
                e[p.field] = v
    for key, dev in devices.items():
        procs = dict(dev.processors)
        for pname, proc in procs.items():
            e = edits.get((key, pname))
            if not e:
                continue
            kw = {}
            for f, v in e.items():
                if f == "_speed":
                    continue
                if isinstance(v, dict):
                    base = dict(getattr(proc, f))
                    base.update(v)
                    if f == "peak_gmacs" and proc.kind == "gpu" and "float16" in v:
                        # one GPU parameter: fp32 runs at half the fp16 rate (Adreno/Apple GPUs)
                        base["float32"] = v["float16"] / 2
                    kw[f] = base
                else:
                    kw[f] = v
            sp = e.get("_speed", 1.0)
            if sp != 1.0:
                kw["peak_gmacs"] = {k: v * sp for k, v in kw.get("peak_gmacs",
                                                                  proc.peak_gmacs).items()}
                kw["bandwidth_gbps"] = kw.get("bandwidth_gbps", proc.bandwidth_gbps) * sp
                kw["dispatch_us"] = kw.get("dispatch_us", proc.dispatch_us) / sp
                kw["launch_us"] = kw.get("launch_us", proc.launch_us) / sp
            procs[pname] = dataclasses.replace(proc, **kw)
        new[key] = dataclasses.replace(dev, processors=procs)
    return new


def predict(rows: pd.DataFrame, tables: dict, devices: dict) -> np.ndarray:
    from workbench.delegates.cost import predict_seconds

    out = np.empty(len(rows))
    for i, r in enumerate(rows.itertuples()):
        t = tables[(r.arch, r.mode)]
        dev = devices[r.device_key]
        assign, parts = t["parts"][r.delegate]
        dproc = dev.processor_for(r.delegate)
        out[i] = predict_seconds(t["ops"], assign, parts, dev.cpu, dproc, r.threads_used,
                                 r.precision) * 1e3
    return out


#: Robust loss on log latency: sources disagree (e.g. Pixel 2 MobileNet float: 117 to 180 ms
#: across doc revisions), so a row far from the rest is down-weighted rather than chased.
LOSS, F_SCALE = "soft_l1", 0.3


def fit(rows: pd.DataFrame, tables: dict, devices: dict, params: list[Param],
        theta0: np.ndarray | None = None, max_nfev: int | None = None) -> np.ndarray:
    from scipy.optimize import least_squares

    prior = np.array([_theta0(p) for p in params])
    sig = np.array([p.sigma for p in params])
    meas = np.log(rows["latency_ms"].to_numpy(dtype=float))

    def resid(theta):
        pred = predict(rows, tables, apply(devices, params, theta))
        return np.concatenate([np.log(pred) - meas, (theta - prior) / sig])

    x0 = prior if theta0 is None else theta0
    sol = least_squares(resid, x0, method="trf", loss=LOSS, f_scale=F_SCALE,
                        x_scale=1.0, diff_step=1e-4, xtol=1e-12, ftol=1e-10, gtol=1e-10,
                        max_nfev=max_nfev)
    if os.environ.get("FIT_VERBOSE"):
        print(f"  least_squares: {sol.nfev} evaluations, status {sol.status}: {sol.message}",
              flush=True)
    return sol.x


def mdape(rows: pd.DataFrame, pred: np.ndarray) -> pd.Series:
    ape = np.abs(pred - rows["latency_ms"].to_numpy()) / rows["latency_ms"].to_numpy() * 100
    return pd.Series(ape, index=rows.index).groupby(rows["group"]).median()


_PRIOR_FIELDS = ("peak_gmacs", "bandwidth_gbps", "dispatch_us", "launch_us",
                 "thread_efficiency", "efficiency", "uncertainty")


def prior_devices() -> dict:
    """The device profiles with every fitted field reset to its spec prior (kept in each
    processor's ``spec["prior"]`` by :func:`write_devices`), so re-running the fit starts
    from the same priors instead of from its own last output."""
    import dataclasses

    from workbench.delegates import profiles

    out = {}
    for name in profiles.list_devices():
        dev = profiles.load_device(name)
        procs = {}
        for k, proc in dev.processors.items():
            prior = proc.spec.get("prior")
            if prior:
                kw = {f: (tuple(v) if f == "uncertainty" else v) for f, v in prior.items()
                      if f in _PRIOR_FIELDS}
                proc = dataclasses.replace(proc, **kw)
            procs[k] = proc
        out[name] = dataclasses.replace(dev, processors=procs)
    return out


def cmd_fit(args) -> None:

    rows, skipped = calibration_rows()
    tables = load_tables()
    missing = sorted({(a, m) for a, m in zip(rows["arch"], rows["mode"])} - set(tables))
    if missing:
        print(f"no op tables for {missing}: run the 'tables' step", file=sys.stderr)
        rows = rows[[(a, m) in tables for a, m in zip(rows["arch"], rows["mode"])]]
        rows = rows.reset_index(drop=True)
    devices = prior_devices()
    params = build_params(rows, devices)
    print(f"{len(rows)} rows, {len(params)} parameters", flush=True)
    prior_pred = predict(rows, tables, devices)
    theta = fit(rows, tables, devices, params)
    fitted = apply(devices, params, theta)
    pred = predict(rows, tables, fitted)
    # leave one model out: refit without a model's rows, predict them (warm start). A "model"
    # is a family at one width (MobileNet V1 alpha 0.5 at every resolution), so no sibling
    # differing only in input size stays in the training set.
    fam = rows["arch"].str.replace(r"_\d+$", "", regex=True)
    lomo = np.full(len(rows), np.nan)
    for arch in ([] if args.no_lomo else sorted(fam.unique())):
        held = fam == arch
        train = rows[~held].reset_index(drop=True)
        p2 = build_params(train, devices)
        idx = {(p.device, p.proc, p.field, p.sub): k for k, p in enumerate(params)}
        t0 = np.array([theta[idx[(p.device, p.proc, p.field, p.sub)]]
                       if (p.device, p.proc, p.field, p.sub) in idx else _theta0(p)
                       for p in p2])
        th2 = fit(train, tables, devices, p2, t0, max_nfev=args.lomo_nfev)
        lomo[held.to_numpy()] = predict(rows[held], tables, apply(devices, p2, th2))
        print(f"  held out {arch}", flush=True)
    if args.no_lomo:
        lomo = pred
    rows = rows.assign(prior_ms=prior_pred, predicted_ms=pred, lomo_ms=lomo)
    unc = residual_bands(rows, fitted)
    report = write_report(rows, skipped, params, theta, unc)
    print(report.split("## Per-row")[0])
    if not args.no_write:
        write_devices(fitted, params, theta, rows, unc, devices)

def residual_bands(rows: pd.DataFrame, devices: dict) -> dict[tuple[str, str], tuple]:
    """Uncertainty band per (device, processor): the 10th-90th percentile of measured/estimated
    over the leave-one-model-out predictions of that processor's rows (pooled over every
    device's processor of the same name when a device has fewer than 6 rows)."""
    ratio = rows["latency_ms"] / rows["lomo_ms"]
    pname = [devices[d].processor_for(dl).name for d, dl in zip(rows["device_key"],
                                                                 rows["delegate"])]
    rows = rows.assign(ratio=ratio, pname=pname)
    bands = {}

    def band(r: pd.Series) -> tuple[float, float]:
        lo, hi = np.quantile(r, [0.1, 0.9])
        return (round(float(min(lo, 0.95)), 3), round(float(max(hi, 1.05)), 3))

    for pn, g in rows.groupby("pname"):
        fam = band(g["ratio"]) if len(g) >= 6 else (0.5, 2.0)
        for dev, prof in devices.items():
            if pn in prof.processors:
                gd = g[g["device_key"] == dev]["ratio"]
                bands[(dev, pn)] = band(gd) if len(gd) >= 6 else fam
    return bands


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def write_report(rows, skipped, params, theta, unc) -> str:
    today = _dt.date.today().isoformat()
    lines = [
        "# Delegate cost model: calibration report",
        "",
        (f"Generated by `benchmarks/fit_delegates.py fit` on {today}. Inputs: "
        "`workbench/delegates/data/published_latency_calibration.csv` (published TFLite "
        "latencies, each row with its source; copied from the project's shared data), the "
        "per-op tables `workbench/delegates/data/calibration_ops.csv.gz` built from Keras "
        "architectures (`weights=None`) converted by TensorFlow's converter, and the spec "
        "priors in `workbench/delegates/devices/*.json`."),
        "",
        ("Every figure below is an *estimate* of the cost model against *published* numbers, "
        "not a measurement of ours. Error = |estimate - published| / published."),
        "",
        "## Median absolute percentage error per backend",
        "",
        "| backend | rows | MdAPE fitted | MdAPE leave-one-model-out | MdAPE spec priors only |",
        "|---|---|---|---|---|",
    ]
    for g in GROUPS:
        r = rows[rows["group"] == g]
        if r.empty:
            continue
        m = r["latency_ms"].to_numpy()

        def md(col, r=r, m=m):
            return float(np.median(np.abs(r[col].to_numpy() - m) / m * 100))
        lines.append(f"| {g} | {len(r)} | {md('predicted_ms'):.1f}% | {md('lomo_ms'):.1f}% | "
                     f"{md('prior_ms'):.1f}% |")
    lines += [
        "",
        ("*Leave-one-model-out*: for each model (a family at one width: MobileNet V1 "
         "alpha 0.5 at every resolution, Inception V4, ...), the parameters are refitted "
         "without its rows and its rows predicted (warm-started from the full fit). A device "
         "whose rows all come from one model (iPhone 7, iPhone 11 Pro) is then predicted from "
         "its spec priors alone, so its leave-one-model-out error is the honest figure for "
         "an uncalibrated device."),
        "",
        "## What was fitted",
        "",
        ("Least squares on log latency (soft-L1 loss, scale 0.3: a published row far from "
         "the others is down-weighted), every parameter regularised toward its spec prior "
         "(prior sd of the log: x5 for peaks, bandwidth and dispatch, x10 for launch, 1 logit "
         "for thread efficiency). Each fitted (device, processor) also has one `speed` factor "
         "(prior 1, sd x10) that scales peaks and bandwidth up and dispatch and launch down "
         "together (clocks, drivers and benchmark apps move them together); it is folded into "
         "the written values. Transfer costs stay at their spec values (the published rows "
         "cannot separate them). Per-kind efficiencies (`depthwise`, `fc`, `pool`, "
         "`elementwise`; `conv` = 1 is the reference) are shared by all devices' processors "
         "of one name (`cpu`, `gpu`, `nnapi`) and fitted only where that processor has >= 8 "
         "rows."),
        "",
        "| device | processor | parameter | prior | fitted |",
        "|---|---|---|---|---|",
    ]
    for p, t in zip(params, theta):
        name = p.field + (f"[{p.sub}]" if p.sub else "")
        lines.append(f"| {p.device} | {p.proc} | {name} | {_fmt(p.prior)} | "
                     f"{_fmt(_value(p, float(t)))} |")
    lines += ["", "Units: peak_gmacs GMAC/s (per thread on a CPU), dispatch/launch µs.", "",
              "## Uncertainty bands", "",
              ("The range `wb.estimate` shows is estimate x [low, high]: the 10th-90th "
              "percentile of published/estimated over the leave-one-model-out predictions "
              "(per device with >= 6 rows, else pooled per processor; [0.5, 2] where "
              "no rows exist)."), "", "| device | processor | low | high |", "|---|---|---|---|"]
    for (d, pn), (lo, hi) in sorted(unc.items()):
        lines.append(f"| {d} | {pn} | {lo} | {hi} |")
    lines += ["", "## Per-row predictions", "",
              ("| model | quant | device | backend | threads | published ms | estimate ms | "
               "error | LOMO ms | LOMO error | prior ms |"),
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows.itertuples():
        e = (r.predicted_ms - r.latency_ms) / r.latency_ms * 100
        e2 = (r.lomo_ms - r.latency_ms) / r.latency_ms * 100
        th = "" if pd.isna(r.threads) else int(r.threads)
        lines.append(f"| {r.model} | {r.quant} | {r.device} | {r.backend} | {th} | "
                     f"{_fmt(r.latency_ms)} | {_fmt(r.predicted_ms)} | {e:+.0f}% | "
                     f"{_fmt(r.lomo_ms)} | {e2:+.0f}% | {_fmt(r.prior_ms)} |")
    lines += ["", "## Rows not used", "", "| reason | rows |", "|---|---|"]
    for reason, n in skipped["skip_reason"].value_counts().items():
        lines.append(f"| {reason} | {n} |")
    lines += [
        "",
        ("Threads: a blank thread count is taken as 1 (those sources state a single big core, "
        "or state nothing). `quant` rows are modelled with int8 full-integer models from TF's "
        "converter (the published files are uint8 QAT models: same 8-bit kernels); `post-"
        "training quantized (weights/hybrid)` rows with dynamic-range models. Keras builds "
        "MobileNet V1/V2 (every alpha/resolution), Inception V3; SqueezeNet v1.0 and "
        "Inception-V4 are written from their papers in `benchmarks/fit_delegates.py`. "
        "Raspberry Pi 4 and desktop x86 have no identifiable rows (the Coral table's CPU "
        "footnotes were not available), so their profiles are spec priors, not fitted. Keras 3 "
        "exports the classifier's final reshape as SHAPE/STRIDED_SLICE/PACK/RESHAPE, which the "
        "hosted files do not have; the partitioner treats those ops as it would in any model, "
        "so a few NNAPI rows carry an extra small partition."),
        "",
    ]
    text = "\n".join(lines)
    from workbench.analysis._result import atomic_write

    atomic_write(REPORT, text)
    return text


def write_devices(fitted: dict, params, theta, rows, unc, priors: dict) -> None:
    """Write the fitted values (and family efficiencies, bands, provenance) into the JSONs."""
    import dataclasses

    from workbench.delegates import profiles

    today = _dt.date.today().isoformat()
    fam_eff: dict[str, dict] = {}
    for p, t in zip(params, theta):
        if p.field == "efficiency":
            fam_eff.setdefault(p.proc, {})[p.sub] = round(_value(p, float(t)), 4)
    fitted_keys = {(p.device, p.proc) for p in params if p.device != "*"}
    for key, dev in fitted.items():
        if dev.path is None or Path(dev.path).parent != profiles.DEVICES_DIR:
            continue
        procs = {}
        for pname, proc in dev.processors.items():
            eff = dict(proc.efficiency)
            eff.update(fam_eff.get(pname, {}))
            n = int(sum(1 for d, dl in zip(rows["device_key"], rows["delegate"])
                        if d == key and dev.delegates.get(dl) == pname))
            if (key, pname) in fitted_keys:
                prov = (f"fitted by benchmarks/fit_delegates.py on {today} to {n} published "
                        "rows (docs/delegates_calibration.md); transfer costs: spec priors")
            elif pname in fam_eff:
                prov = (f"spec prior (no published rows for this processor); per-kind "
                        f"efficiencies from the {today} fit of other devices' {pname}")
            else:
                prov = proc.provenance
            pp = priors[key].processors[pname]
            spec = dict(proc.spec)
            spec["prior"] = {f: (list(getattr(pp, f)) if f == "uncertainty"
                                 else getattr(pp, f)) for f in _PRIOR_FIELDS}
            procs[pname] = dataclasses.replace(
                proc, efficiency=eff, provenance=prov, spec=spec,
                uncertainty=unc.get((key, pname), proc.uncertainty),
                peak_gmacs={k: round(v, 3) for k, v in proc.peak_gmacs.items()},
                dispatch_us=round(proc.dispatch_us, 2), launch_us=round(proc.launch_us, 1),
                bandwidth_gbps=round(proc.bandwidth_gbps, 3),
                thread_efficiency=round(proc.thread_efficiency, 3))
        dataclasses.replace(dev, processors=procs).save(dev.path, overwrite=True)
    print(f"wrote {len(fitted)} device files")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("models")
    sub.add_parser("tables")
    f = sub.add_parser("fit")
    f.add_argument("--no-write", action="store_true", help="report only")
    f.add_argument("--no-lomo", action="store_true", help="skip leave-one-model-out")
    f.add_argument("--lomo-nfev", type=int, default=None,
                   help="cap on evaluations per leave-one-model-out refit")
    args = ap.parse_args(argv)
    if args.cmd == "models":
        cmd_models(args)
    elif args.cmd == "tables":
        cmd_tables(args)
    else:
        cmd_fit(args)


if __name__ == "__main__":
    main()
