"""Three small models trained on real, offline tasks, for quantization accuracy checks.

Each task trains a Keras model in seconds (fixed seeds), converts it with TensorFlow's converter
to a float32 ``.tflite`` and to TF's full-integer int8 (float I/O, the same 100 calibration
samples our quantizer gets), and caches everything under ``<repo>/.cache/quant_tasks/<task>/``
(rebuilt when this file or the TensorFlow version changes). Nothing is downloaded.

Tasks
-----
``digits_cnn``
    scikit-learn's bundled handwritten digits (1797 8x8 images, 10 classes, values 0..16 scaled
    to [0, 1]); a small CNN (conv-relu x3, max-pool, global average pool, dense).
``digits_mobilenet``
    The same digits upsampled to 32x32 (bilinear, ``tf.image.resize``); a MobileNet-style net:
    strided stem, depthwise-separable blocks with batch norm and ReLU6, one inverted residual
    block with an ``Add``, global average pool, dense.
``waves_conv1d``
    A synthetic but learnable signal task generated deterministically (``numpy`` seed 7): 128-
    sample waveforms of four kinds (sine, square, sawtooth, triangle) with random frequency
    (1.5-6 cycles), phase, amplitude (0.3-2) and offset (+-0.5), plus Gaussian noise (0.45 of
    the amplitude); a Conv1D net (conv-relu, pooling, global average pool, dense).
``waves_attention``
    The same waveforms; a small transformer block: strided Conv1D embedding (32 tokens),
    two-head self-attention with a residual and layer norm, a dense feed-forward with a
    residual and layer norm, global average pool, dense (BATCH_MATMUL, SOFTMAX, the layer-norm
    arithmetic and NEG, which has no int8 kernel and stays float in both quantizers).

Splits: digits, a fixed permutation (seed 0): 1297 train / 500 test; waves: 3000 / 1000.
The calibration samples are the first 100 training samples, one per batch.

Usage (tests and benchmarks)::

    from datasets.trained_tasks import TASKS, load_task
    t = load_task("digits_cnn")
    t.float_path, t.tf_int8_path, t.calib (list of (1, ...) float32 arrays), t.x_test, t.y_test
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("QUANT_TASKS_CACHE") or ROOT / ".cache" / "quant_tasks")
TASKS = ("digits_cnn", "digits_mobilenet", "waves_conv1d", "waves_attention")
CALIBRATION_SAMPLES = 100


@dataclass
class Task:
    """A trained task: files, calibration samples and the test split."""

    name: str
    float_path: Path
    tf_int8_path: Path
    calib: list[np.ndarray]
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict


# -- data ---------------------------------------------------------------------------------------
def _digits(size: int | None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]  # (1797, 8, 8, 1)
    if size is not None:
        import tensorflow as tf

        x = tf.image.resize(x, (size, size), method="bilinear").numpy().astype(np.float32)
    return x, d.target.astype(np.int64)


def _waves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(128) / 128.0
    y = rng.integers(0, 4, n)
    freq = rng.uniform(1.5, 6.0, n)[:, None]
    phase = rng.uniform(0, 1, n)[:, None]
    amp = rng.uniform(0.3, 2.0, n)[:, None]
    off = rng.uniform(-0.5, 0.5, n)[:, None]
    u = (freq * t[None, :] + phase) % 1.0  # position in the cycle
    shapes = np.stack([np.sin(2 * np.pi * u), np.where(u < 0.5, 1.0, -1.0), 2 * u - 1,
                       4 * np.abs(u - 0.5) - 1])
    sig = shapes[y, np.arange(n)] * amp + off
    sig += rng.standard_normal(sig.shape) * 0.45 * amp
    return sig.astype(np.float32)[..., None], y.astype(np.int64)


def _split(name: str):
    if name.startswith("digits"):
        x, y = _digits(32 if name == "digits_mobilenet" else None)
        perm = np.random.default_rng(0).permutation(len(y))
        tr, te = perm[:1297], perm[1297:]
        return x[tr], y[tr], x[te], y[te]
    rng = np.random.default_rng(7)  # both waves tasks: the same data
    xtr, ytr = _waves(3000, rng)
    xte, yte = _waves(1000, rng)
    return xtr, ytr, xte, yte


# -- models -------------------------------------------------------------------------------------
def _model(name: str, shape: tuple[int, ...]):
    import keras

    L = keras.layers
    inp = keras.Input(shape, batch_size=1, name="x")
    if name == "digits_cnn":
        x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
        x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D()(x)
        x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
        x = L.GlobalAveragePooling2D()(x)
        x = L.Dense(10)(x)
    elif name == "digits_mobilenet":
        def bn_relu6(x):
            return L.ReLU(6.0)(L.BatchNormalization()(x))

        x = bn_relu6(L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inp))
        for filters, stride in ((24, 1), (32, 2), (48, 2)):
            x = bn_relu6(L.DepthwiseConv2D(3, strides=stride, padding="same",
                                           use_bias=False)(x))
            x = bn_relu6(L.Conv2D(filters, 1, use_bias=False)(x))
        # An inverted residual block (expand, depthwise, linear projection, add).
        y = bn_relu6(L.Conv2D(96, 1, use_bias=False)(x))
        y = bn_relu6(L.DepthwiseConv2D(3, padding="same", use_bias=False)(y))
        y = L.BatchNormalization()(L.Conv2D(48, 1, use_bias=False)(y))
        x = L.Add()([x, y])
        x = L.GlobalAveragePooling2D()(x)
        x = L.Dense(10)(x)
    elif name == "waves_conv1d":
        x = L.Conv1D(16, 7, padding="same", activation="relu")(inp)
        x = L.MaxPooling1D(2)(x)
        x = L.Conv1D(32, 5, padding="same", activation="relu")(x)
        x = L.MaxPooling1D(2)(x)
        x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
        x = L.GlobalAveragePooling1D()(x)
        x = L.Dense(4)(x)
    elif name == "waves_attention":
        x = L.Conv1D(24, 8, strides=4, padding="same", activation="relu")(inp)  # 32 tokens
        a = L.MultiHeadAttention(num_heads=2, key_dim=12)(x, x)
        x = L.LayerNormalization()(L.Add()([x, a]))
        f = L.Dense(24)(L.Dense(48, activation="relu")(x))
        x = L.LayerNormalization()(L.Add()([x, f]))
        x = L.GlobalAveragePooling1D()(x)
        x = L.Dense(4)(x)
    else:
        raise KeyError(f"unknown task {name!r}; tasks are {TASKS}")
    out = L.Softmax(name="probs")(x)
    return keras.Model(inp, out, name=name)


_EPOCHS = {"digits_cnn": 25, "digits_mobilenet": 25, "waves_conv1d": 20, "waves_attention": 20}


def _train(name: str, xtr, ytr):
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = _model(name, xtr.shape[1:])
    # Train on a batch-free copy of the graph (the converted model keeps batch 1).
    train = keras.Model(model.inputs, model.outputs)
    train.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train.fit(xtr, ytr, batch_size=32, epochs=_EPOCHS[name], verbose=0, shuffle=True)
    return model


# -- building and caching -------------------------------------------------------------------
def _key() -> str:
    import importlib.metadata as md

    src = Path(__file__).read_bytes()
    return hashlib.sha256(src + md.version("tensorflow-cpu").encode()).hexdigest()[:16] \
        if _has("tensorflow-cpu") else hashlib.sha256(src).hexdigest()[:16]


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def _atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _build(name: str, d: Path) -> None:
    import tensorflow as tf

    xtr, ytr, xte, yte = _split(name)
    model = _train(name, xtr, ytr)
    calib = xtr[:CALIBRATION_SAMPLES]

    def rep():
        for i in range(len(calib)):
            yield [calib[i:i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    _atomic(d / "float32.tflite", conv.convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    _atomic(d / "tf_int8.tflite", conv.convert())
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, calib=calib, x_test=xte, y_test=yte)
    _atomic(d / "data.npz", buf.getvalue())
    meta = {"task": name, "key": _key(), "train": len(ytr), "test": len(yte),
            "calibration_samples": len(calib), "epochs": _EPOCHS[name]}
    _atomic(d / "meta.json", json.dumps(meta, indent=1).encode())


def load_task(name: str) -> Task:
    """The trained task ``name`` (built and cached on first use; needs TensorFlow then)."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; tasks are {TASKS}")
    d = CACHE / name
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        meta = None
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads((d / "meta.json").read_text())
        if meta is None or meta.get("key") != _key():
            _build(name, d)
            meta = json.loads((d / "meta.json").read_text())
    with np.load(d / "data.npz") as z:
        calib = [z["calib"][i:i + 1] for i in range(len(z["calib"]))]
        x_test, y_test = z["x_test"], z["y_test"]
    return Task(name, d / "float32.tflite", d / "tf_int8.tflite", calib, x_test, y_test, meta)


def accuracy(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy (%) of a ``.tflite`` model run in LiteRT (built-in kernels), one sample
    per invoke; float inputs are quantized when the model takes integers."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=bytes(model_bytes),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    din, dout = it.get_input_details()[0], it.get_output_details()[0]
    scale, zp = din["quantization"]
    hits = 0
    for i in range(len(y)):
        xi = x[i:i + 1]
        if np.issubdtype(din["dtype"], np.integer):
            info = np.iinfo(din["dtype"])
            xi = np.clip(np.round(xi / scale) + zp, info.min, info.max)
        it.set_tensor(din["index"], xi.astype(din["dtype"]))
        it.invoke()
        hits += int(np.argmax(it.get_tensor(dout["index"])[0]) == y[i])
    return 100.0 * hits / len(y)


if __name__ == "__main__":
    for n in TASKS:
        t = load_task(n)
        print(n, t.meta, "float", accuracy(t.float_path.read_bytes(), t.x_test, t.y_test),
              "tf int8", accuracy(t.tf_int8_path.read_bytes(), t.x_test, t.y_test))
