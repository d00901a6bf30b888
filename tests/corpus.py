"""A cached corpus of .tflite models built with TensorFlow's converter (the test oracle).

Usage from tests (repo root on ``sys.path``)::

    from tests import corpus
    path = corpus.model_path("conv1d", "int8")        # Path, or None if unsupported
    if path is None:
        pytest.skip(corpus.unsupported_reason("conv1d", "int8"))
    for name, mode, path in corpus.corpus(big=False):
        ...

Prebuild everything (recommended before ``pytest -n auto``)::

    python -m tests.corpus                     # all models, all modes
    python -m tests.corpus --only conv1d mixed --modes float32 int8
    python -m tests.corpus --small --force     # rebuild the small models

Models are cached as ``<repo>/.cache/corpus/<name>__<mode>.tflite`` with a JSON
sidecar ``<name>__<mode>.json`` (status, unsupported reason, converter settings,
build time).  A cached entry is rebuilt when it is missing or when its key (the
builder's source, the conversion code version and the TensorFlow version)
changes.  Writes are atomic (temp file + ``os.replace``) and every (name, mode)
pair is built under an ``fcntl.flock`` lock, so parallel pytest-xdist workers
never see half-written files nor build the same model twice.  Conversion
failures are recorded (``unsupported_reason``) rather than raised.

TensorFlow / Keras are imported lazily inside the build functions only:
importing this module is cheap and does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import inspect
import io
import json
import os
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

# Quiet TensorFlow's C++ logging before it is (lazily) imported anywhere.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
#: Override with the CORPUS_CACHE_DIR environment variable.
CACHE_DIR = Path(os.environ.get("CORPUS_CACHE_DIR") or REPO / ".cache" / "corpus")

#: The standard conversion modes.
MODES: tuple[str, ...] = ("float32", "dynamic", "float16", "int8", "int16x8")
#: Extra modes, built on request (and by ``python -m tests.corpus``).
EXTRA_MODES: tuple[str, ...] = ("int8_float_io",)
ALL_MODES: tuple[str, ...] = MODES + EXTRA_MODES
#: ``ModelSpec.modes`` of models needed in float32 only (the big architectures added for
#: issue 3's coverage list).
FLOAT_ONLY: tuple[str, ...] = ("float32",)

MODE_DESCRIPTIONS = {
    "float32": "plain float32 conversion",
    "dynamic": "Optimize.DEFAULT, no dataset (dynamic-range: int8 weights, float activations)",
    "float16": "Optimize.DEFAULT + supported_types=[float16] (float16 weights)",
    "int8": "full integer: Optimize.DEFAULT + representative dataset + "
    "TFLITE_BUILTINS_INT8, int8 input/output",
    "int8_float_io": "full integer internals (TFLITE_BUILTINS_INT8) with float32 input/output",
    "int16x8": "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 "
    "(int16 activations, int8 weights, float32 I/O; TFLITE_BUILTINS fallback only if needed)",
}

#: Bump to invalidate every cached model (conversion code changed).
CONVERT_VERSION = 2

#: Number of representative-dataset samples used for calibration.
CALIBRATION_SAMPLES = 8
CALIBRATION_SAMPLES_BIG = 4


# --------------------------------------------------------------------------- #
# Model specs
# --------------------------------------------------------------------------- #


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[[], object]  # () -> keras.Model, imports keras lazily
    big: bool = False
    modes: tuple[str, ...] = ALL_MODES
    #: For float inputs: None -> standard normal data; (lo, hi) -> uniform in [lo, hi).
    float_range: tuple[float, float] | None = None
    #: For integer inputs: values drawn uniformly from [0, int_high).
    int_high: int = 2
    #: Re-estimate BatchNormalization moving statistics on the calibration data after
    #: random init ("poor man's training"): keeps activations of deep random-weight
    #: networks well scaled, as in a trained model, so quantization is meaningful.
    recalibrate_bn: bool = False
    description: str = ""


#: Modes of the op-coverage models. No dynamic range by default: their weight tensors stay
#: below the converter's 1024-element threshold, so it would leave every weight float (the
#: model would equal the float32 one).
_COVERAGE_DEFAULT: tuple[str, ...] = ("float32", "float16", "int8", "int16x8")
#: Coverage models with other modes, and why.
_COVERAGE_MODES: dict[str, tuple[str, ...]] = {
    # Its dilated/separable convs have weights big enough for hybrid kernels.
    "dilated_conv_pools": ("float32", "dynamic", "float16", "int8", "int16x8"),
    # The converter crashes the process (SIGSEGV) quantizing Keras 3 RNN WHILE loops to int8
    # or int16x8.
    "recurrent": ("float32", "float16"),
    # int16x8: the converter declares NEG's output FLOAT32 on an int16 input; LiteRT
    # overrides the type and the QUANTIZE after it reads raw int16 without a scale, so a
    # quarter of the output is zeros (we refuse the inconsistent NEG: ``UnaryKernel.prepare``).
    "keras_shape_layers": ("float32", "float16", "int8"),
}


def _keras():
    import keras  # noqa: PLC0415  (lazy on purpose)

    return keras


# ---- small models: each exercises one layer family ------------------------ #
# Channel counts are chosen so that most weight tensors have >= 1024 elements: the
# converter's "dynamic" mode leaves smaller tensors in float32, and we want it to
# exercise hybrid (int8-weight, float-activation) kernels.


def build_conv1d():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(64, 16), batch_size=1, name="input")
    x = L.Conv1D(32, 5, padding="same", activation="relu")(inp)
    x = L.Conv1D(32, 3, strides=2, padding="valid", activation="relu")(x)
    x = L.Conv1D(16, 3, dilation_rate=2, padding="same")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.GlobalAveragePooling1D()(x)
    out = L.Dense(4)(x)
    return keras.Model(inp, out, name="conv1d")


def build_conv2d_transpose():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(8, 8, 8), batch_size=1, name="input")
    x = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(inp)
    x = L.Conv2DTranspose(8, 4, strides=2, padding="valid")(x)
    x = L.ReLU()(x)
    out = L.Conv2DTranspose(3, 3, strides=1, padding="same", use_bias=False)(x)
    return keras.Model(inp, out, name="conv2d_transpose")


def build_attention_layernorm():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(16, 32), batch_size=1, name="input")
    att = L.MultiHeadAttention(num_heads=2, key_dim=16)(inp, inp)
    x = L.LayerNormalization(epsilon=1e-5)(L.Add()([inp, att]))
    h = L.Dense(64, activation="gelu")(x)
    h = L.Dense(32)(h)
    x = L.LayerNormalization(epsilon=1e-5)(L.Add()([x, h]))
    x = L.GlobalAveragePooling1D()(x)
    out = L.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out, name="attention_layernorm")


EMBED_VOCAB = 100  # 100 x 16 table: >= 1024 elements, so 'dynamic' quantizes it


def build_embedding():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(12,), batch_size=1, dtype="int32", name="input")
    x = L.Embedding(EMBED_VOCAB, 16)(inp)
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(16, activation="relu")(x)
    out = L.Dense(3)(x)
    return keras.Model(inp, out, name="embedding")


def build_prelu():
    keras = _keras()
    L = keras.layers
    init = keras.initializers.RandomUniform(0.05, 0.4, seed=1)
    inp = keras.Input(shape=(16, 16, 3), batch_size=1, name="input")
    x = L.Conv2D(16, 3, padding="same")(inp)
    x = L.PReLU(alpha_initializer=init, shared_axes=[1, 2])(x)  # per-channel alpha
    x = L.Conv2D(16, 3, strides=2, padding="same")(x)
    out = L.PReLU(alpha_initializer=init)(x)  # full alpha tensor
    return keras.Model(inp, out, name="prelu")


def build_separable_conv():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(16, 16, 16), batch_size=1, name="input")
    x = L.SeparableConv2D(64, 3, padding="same", activation="relu")(inp)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2)(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    x = L.DepthwiseConv2D(3, padding="valid", activation="relu6")(x)
    x = L.SeparableConv2D(16, 3, strides=2, padding="valid")(x)
    out = L.SeparableConv2D(8, 1, depth_multiplier=2)(x)
    return keras.Model(inp, out, name="separable_conv")


def build_bilinear_upsampling():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(8, 8, 4), batch_size=1, name="input")
    x = L.UpSampling2D(2, interpolation="bilinear")(inp)
    x = L.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = L.Resizing(24, 24, interpolation="bilinear")(x)
    x = L.UpSampling2D(2, interpolation="nearest")(x)
    out = L.Conv2D(2, 1)(x)
    return keras.Model(inp, out, name="bilinear_upsampling")


def build_mixed():
    keras = _keras()
    L = keras.layers
    inits = dict(
        moving_mean_initializer=keras.initializers.RandomNormal(0.0, 0.1, seed=2),
        moving_variance_initializer=keras.initializers.RandomUniform(0.5, 1.5, seed=3),
        gamma_initializer=keras.initializers.RandomUniform(0.8, 1.2, seed=4),
        beta_initializer=keras.initializers.RandomNormal(0.0, 0.1, seed=5),
    )
    inp = keras.Input(shape=(32, 32, 3), batch_size=1, name="input")
    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.BatchNormalization(**inits)(x)
    x = L.ReLU(6.0)(x)
    a = L.MaxPooling2D(2)(x)
    b = L.AveragePooling2D(2)(x)
    c = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Concatenate()([a, b, c])  # 40 channels
    y = L.Conv2D(40, 3, padding="same")(x)
    y = L.BatchNormalization(**inits)(y)
    x = L.ReLU(6.0)(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(10)(x)
    out = L.Softmax()(x)
    return keras.Model(inp, out, name="mixed")


# ---- float32 op-coverage models (issue 3's list; float32 mode only) ------- #
# Each exercises a family of builtin ops the converter emits; where Keras has no layer the op
# is a TensorFlow function in a Lambda layer. Values stay finite on any input (log, sqrt,
# pow and division take shifted absolute values) so every tensor has a dynamic range.


def _tf():
    import tensorflow as tf  # noqa: PLC0415  (lazy on purpose)

    return tf


def _bn_inits(keras, seed: int = 2) -> dict:
    """Non-trivial BatchNorm statistics (random init would make BN an identity)."""
    k = keras.initializers
    return dict(
        moving_mean_initializer=k.RandomNormal(0.0, 0.2, seed=seed),
        moving_variance_initializer=k.RandomUniform(0.5, 1.5, seed=seed + 1),
        gamma_initializer=k.RandomUniform(0.8, 1.2, seed=seed + 2),
        beta_initializer=k.RandomNormal(0.0, 0.1, seed=seed + 3),
    )


def build_conv3d():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(8, 12, 12, 3), batch_size=1, name="input")
    x = L.Conv3D(8, 3, padding="same", activation="relu")(inp)
    x = L.Conv3D(8, (2, 3, 3), strides=(1, 2, 2), padding="valid")(x)
    x = L.Conv3D(8, 3, padding="same", use_bias=False)(x)
    # MaxPooling3D/AveragePooling3D: TF 2.21's converter has no builtin for them (it fails
    # with "neither a custom op nor a flex op"), so only the global 3-D pools are here.
    g = L.GlobalAveragePooling3D()(x)
    h = L.GlobalMaxPooling3D()(x)
    out = L.Dense(4)(L.Concatenate()([g, h]))
    return keras.Model(inp, out, name="conv3d")


def build_dilated_conv_pools():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(20, 20, 6), batch_size=1, name="input")
    x = L.Conv2D(16, 3, dilation_rate=2, padding="same")(inp)  # SPACE_TO_BATCH/BATCH_TO_SPACE
    x = L.BatchNormalization(**_bn_inits(keras))(x)
    x = L.ELU()(x)
    x = L.Conv2D(16, 3, dilation_rate=3, padding="valid")(x)
    x = L.LeakyReLU(negative_slope=0.2)(x)
    x = L.SeparableConv2D(16, 3, dilation_rate=2, padding="same")(x)
    x = L.Activation("hard_swish")(x)
    a = L.MaxPooling2D(3, strides=1, padding="same")(x)
    b = L.AveragePooling2D(3, strides=2, padding="same")(x)  # edge windows: in-bounds count
    c = L.AveragePooling2D(2, padding="valid")(x)
    g = L.Concatenate()([L.GlobalMaxPooling2D()(a), L.GlobalAveragePooling2D()(b),
                         L.GlobalMaxPooling2D(keepdims=True)(c)[:, 0, 0, :]])
    s = L.Reshape((14 * 14, 16))(a)  # 1-D pools over the flattened image
    s = L.MaxPooling1D(3, strides=2, padding="same")(s)
    s = L.AveragePooling1D(4, padding="same")(s)
    s = L.GlobalMaxPooling1D()(s)
    out = L.Dense(5)(L.Concatenate()([g, s]))
    return keras.Model(inp, out, name="dilated_conv_pools")


def build_resize_modes():
    keras = _keras()
    L = keras.layers
    tf = _tf()
    v1 = tf.compat.v1.image
    inp = keras.Input(shape=(5, 7, 4), batch_size=1, name="input")
    outs = [
        L.Lambda(lambda t: v1.resize_bilinear(t, [9, 13], align_corners=True))(inp),
        L.Lambda(lambda t: v1.resize_bilinear(t, [11, 10], half_pixel_centers=True))(inp),
        L.Lambda(lambda t: v1.resize_bilinear(t, [8, 16]))(inp),  # legacy corner mapping
        L.Lambda(lambda t: v1.resize_nearest_neighbor(t, [9, 13], align_corners=True))(inp),
        L.Lambda(lambda t: v1.resize_nearest_neighbor(t, [11, 10], half_pixel_centers=True))(inp),
        L.Lambda(lambda t: v1.resize_nearest_neighbor(t, [8, 16]))(inp),
        L.UpSampling2D((2, 3), interpolation="nearest")(inp),
        L.UpSampling2D((3, 2), interpolation="bilinear")(inp),
    ]
    flat = [L.Flatten()(o) for o in outs]
    return keras.Model(inp, L.Concatenate()(flat), name="resize_modes")


def build_elementwise_math():
    keras = _keras()
    L = keras.layers
    tf = _tf()
    a = keras.Input(shape=(6, 10), batch_size=1, name="a")
    b = keras.Input(shape=(6, 10), batch_size=1, name="b")

    def f(xs):
        x, y = xs
        pos = tf.abs(x) + 0.25  # strictly positive, for log/sqrt/rsqrt/pow
        parts = [
            tf.exp(tf.clip_by_value(x, -8.0, 8.0)), tf.math.log(pos), tf.sqrt(pos),
            tf.math.rsqrt(pos), tf.pow(pos, 1.7), tf.pow(pos, y), tf.square(x), tf.abs(y),
            tf.sign(x), tf.floor(3.0 * x), tf.math.ceil(3.0 * x), tf.round(2.5 * y),
            tf.sin(x), tf.cos(y), tf.minimum(x, y), tf.maximum(x, 0.3 * y),
            tf.math.squared_difference(x, y), -x, x / (tf.abs(y) + 0.5),
            tf.math.floordiv(3.0 * x, tf.abs(y) + 0.5), tf.math.floormod(3.0 * x, tf.abs(y) + 0.5),
            tf.nn.log_softmax(x), tf.nn.softmax(2.0 * y), tf.tanh(x), tf.sigmoid(y),
            tf.nn.relu6(3.0 * x), tf.nn.elu(y), tf.nn.gelu(x, approximate=True),
            tf.nn.gelu(y, approximate=False), tf.math.reciprocal(pos),
            tf.cumsum(x, axis=2), tf.cumsum(y, axis=1, exclusive=True, reverse=True),
        ]
        return tf.concat(parts, axis=-1)

    return keras.Model([a, b], L.Lambda(f)([a, b]), name="elementwise_math")


def build_logic_select():
    keras = _keras()
    L = keras.layers
    tf = _tf()
    a = keras.Input(shape=(4, 8), batch_size=1, name="a")
    b = keras.Input(shape=(4, 8), batch_size=1, name="b")

    def f(xs):
        x, y = xs
        gt, ge = tf.greater(x, y), tf.greater_equal(x, 0.0)
        lt, le = tf.less(x, 0.5 * y), tf.less_equal(y, 0.1)
        eq = tf.equal(tf.round(x), tf.round(y))
        ne = tf.not_equal(tf.floor(x), 0.0)
        m = tf.logical_or(tf.logical_and(gt, tf.logical_not(lt)), tf.logical_and(eq, ne))
        m = tf.logical_or(m, tf.logical_and(ge, le))
        s1 = tf.where(m, x, y)  # SELECT_V2
        s2 = tf.where(ge, x, tf.zeros_like(x) + tf.reduce_mean(y))  # broadcast operand
        c = tf.cast(m, tf.float32) + tf.cast(tf.cast(3.0 * x, tf.int32), tf.float32)
        anym = tf.cast(tf.reduce_any(m, axis=1, keepdims=True), tf.float32)
        allm = tf.cast(tf.reduce_all(ge, axis=2, keepdims=True), tf.float32)
        extra = tf.cast(lt, tf.float32) - tf.cast(tf.logical_not(eq), tf.float32)
        return tf.concat([s1, s2, c, anym + allm, extra], axis=-1)

    return keras.Model([a, b], L.Lambda(f)([a, b]), name="logic_select")


def build_reductions_indexing():
    keras = _keras()
    L = keras.layers
    tf = _tf()
    inp = keras.Input(shape=(6, 8, 5), batch_size=1, name="input")

    def f(x):
        red = [
            tf.reduce_sum(x, axis=[1, 2]), tf.reduce_mean(x, axis=1)[:, 0, :],
            tf.reduce_max(x, axis=2)[:, 1, :], tf.reduce_min(x, axis=[1, 2]),
            tf.reduce_prod(tf.tanh(x) + 1.0, axis=1)[:, 2, :],
            tf.reduce_sum(x, axis=-1, keepdims=True)[:, 0, :5, 0],
        ]
        am = tf.cast(tf.argmax(x, axis=-1), tf.float32)[:, :, 0]  # ARG_MAX
        an = tf.cast(tf.argmin(x, axis=1, output_type=tf.int32), tf.float32)[:, 0, :]
        flat = tf.reshape(x, [1, 240])
        vals, idx = tf.math.top_k(flat, k=7)
        g = tf.gather(flat, idx, axis=1, batch_dims=1)  # GATHER of top-k indices
        gn = tf.gather_nd(x, [[0, 1, 2], [0, 5, 7], [0, 3, 0]])
        sc = tf.scatter_nd([[1], [3], [4]], tf.reduce_sum(x, axis=[0, 1, 2])[:3] * [1.0, 2.0, 3.0],
                           [6])
        return tf.concat(red + [am, an, vals, tf.cast(idx, tf.float32), g,
                                tf.reshape(gn, [1, 15]), sc[None]], axis=1)

    return keras.Model(inp, L.Lambda(f)(inp), name="reductions_indexing")


def build_shape_ops():
    keras = _keras()
    L = keras.layers
    tf = _tf()
    inp = keras.Input(shape=(4, 6, 8), batch_size=1, name="input")

    def f(x):
        p1 = tf.pad(x, [[0, 0], [1, 2], [0, 1], [0, 0]], constant_values=0.0)
        p2 = tf.pad(x, [[0, 0], [2, 1], [1, 3], [0, 0]], mode="REFLECT")
        p3 = tf.pad(x, [[0, 0], [1, 1], [2, 0], [0, 0]], mode="SYMMETRIC")
        p4 = tf.pad(x, [[0, 0], [1, 0], [0, 1], [0, 0]], constant_values=-1.5)  # PADV2
        t = tf.transpose(x, [0, 2, 3, 1])
        r = tf.reshape(t, [1, 6, 32])
        e = tf.expand_dims(r, 2)
        sq = tf.squeeze(e, axis=2)
        a, b, c = tf.split(sq, 3, axis=1)
        u, v = tf.split(sq, [3, 29], axis=2)  # SPLIT_V
        stacked = tf.stack([a, b, c], axis=1)  # PACK
        un = tf.unstack(stacked, axis=1)  # UNPACK
        sl = tf.slice(x, [0, 1, 2, 3], [1, 2, 3, 4])
        ss = x[:, ::2, 5:0:-2, 1::3]  # strided slice with negative stride
        ss2 = x[:, 1, ..., None, :4]  # shrink axis, ellipsis, new axis
        rv = tf.reverse(x, axis=[2])
        ti = tf.tile(x[:, :2, :2, :], [1, 3, 2, 1])
        bc = tf.broadcast_to(tf.reduce_mean(x, axis=[1, 2], keepdims=True), [1, 4, 3, 8])
        d2s = tf.nn.depth_to_space(x[:, :, :4, :], 2)
        s2d = tf.nn.space_to_depth(x, 2)
        s2b = tf.space_to_batch_nd(x, [2, 3], [[0, 0], [0, 0]])
        b2s = tf.compat.v1.batch_to_space_nd(s2b * 2.0, [2, 3], [[0, 0], [1, 2]])
        parts = [p1, p2, p3, p4, t, r, u, v, un[0] + un[2], sl, ss, ss2, rv, ti, bc, d2s, s2d,
                 s2b, b2s]
        return tf.concat([tf.reshape(p, [1, -1]) for p in parts], axis=1)

    return keras.Model(inp, L.Lambda(f)(inp), name="shape_ops")


def build_matmul_fc():
    keras = _keras()
    L = keras.layers
    tf = _tf()
    inp = keras.Input(shape=(6, 16), batch_size=1, name="input")
    x = L.Dense(24)(inp)  # rank-3 Dense: FULLY_CONNECTED with keep_num_dims
    x = L.Dense(12, activation="relu")(x)

    def f(t):
        w = tf.constant(np.random.default_rng(7).standard_normal((12, 8)), tf.float32)
        m1 = tf.matmul(t, t, transpose_b=True)  # BATCH_MATMUL, both operands at run time
        m2 = tf.matmul(t, w)  # constant right operand
        m3 = tf.linalg.matmul(tf.reshape(t, [1, 2, 3, 12]), tf.reshape(t, [1, 2, 12, 3]))
        return tf.concat([tf.reshape(m, [1, -1]) for m in (m1, m2, m3)], axis=1)

    return keras.Model(inp, L.Lambda(f)(x), name="matmul_fc")


_ACTIVATIONS = ("softplus", "softsign", "swish", "selu", "mish", "log_sigmoid", "hard_sigmoid",
                "relu6", "silu", "exponential", "tanh", "sigmoid", "gelu", "elu", "leaky_relu",
                "hard_silu", "celu", "glu", "sparse_plus", "squareplus", "soft_shrink",
                "hard_shrink", "tanh_shrink", "hard_tanh", "log_softmax", "sparsemax")


def build_keras_activations_norms():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(6, 8, 8), batch_size=1, name="input")
    outs = [L.Activation(a)(inp) for a in _ACTIVATIONS]
    outs += [
        L.ReLU(max_value=4.0, negative_slope=0.1, threshold=0.5)(inp),
        L.ReLU(negative_slope=0.3)(inp),
        L.Softmax(axis=1)(inp),
        L.UnitNormalization()(inp),
        L.GroupNormalization(groups=2)(inp),
        L.LayerNormalization(axis=[1, 2])(inp),
        L.BatchNormalization(**_bn_inits(keras, 7))(inp),  # alone: MUL + ADD
        L.Rescaling(1 / 127.5, offset=-1)(inp),
        L.Normalization(mean=0.5, variance=2.0)(inp),
    ]
    return keras.Model(inp, L.Concatenate()([L.Flatten()(o) for o in outs]),
                       name="keras_activations_norms")


def build_keras_shape_layers():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(6, 8, 4), batch_size=1, name="input")
    outs = [
        L.Cropping2D(((1, 2), (2, 1)))(inp), L.ZeroPadding2D((2, 1))(inp),
        L.Permute((3, 1, 2))(inp),
        L.Conv2D(8, 3, groups=2, padding="same")(inp),  # grouped convolution
        L.Conv2D(8, (1, 5), strides=(2, 1), padding="same")(inp),
        L.DepthwiseConv2D((3, 1), depth_multiplier=3, dilation_rate=2, padding="same")(inp),
        L.Resizing(9, 5, interpolation="nearest")(inp),
        L.Resizing(9, 5, interpolation="bilinear", crop_to_aspect_ratio=True)(inp),
        L.CenterCrop(4, 6)(inp),
        L.Conv2DTranspose(4, 3, strides=(2, 1), padding="same")(inp),
        L.Maximum()([inp, -inp * 0.5]), L.Minimum()([inp, inp * 0.3]),
        L.Average()([inp, inp * 2]), L.Multiply()([inp, inp]), L.Subtract()([inp, inp * 0.1]),
    ]
    r = L.Reshape((48, 4))(inp)
    outs += [L.Conv1D(6, 3, padding="causal", dilation_rate=2)(r), L.UpSampling1D(2)(r),
             L.Cropping1D((3, 5))(r), L.ZeroPadding1D(2)(r), L.RepeatVector(3)(L.Flatten()(r)),
             L.DepthwiseConv1D(3, padding="same")(r), L.SeparableConv1D(5, 3, strides=2)(r),
             L.Dot(axes=(2, 2))([r, r]), L.AveragePooling1D(3, strides=2)(r),
             L.Conv1DTranspose(3, 4, strides=2)(r), L.GlobalAveragePooling1D(keepdims=True)(r)]
    v = L.Reshape((2, 3, 8, 4))(inp)
    outs += [L.UpSampling3D((1, 2, 1))(v), L.ZeroPadding3D(1)(v),
             L.Cropping3D(((0, 1), (1, 1), (2, 2)))(v), L.Conv3DTranspose(2, 2, strides=2)(v)]
    return keras.Model(inp, L.Concatenate()([L.Flatten()(o) for o in outs]),
                       name="keras_shape_layers")

def build_recurrent():
    keras = _keras()
    L = keras.layers
    inp = keras.Input(shape=(7, 6), batch_size=1, name="input")
    # unroll=False: Keras 3 layers convert to WHILE loops over the time axis.
    x = L.Bidirectional(L.LSTM(6, return_sequences=True))(inp)  # + REVERSE_V2, two loops
    x = L.GRU(10, return_sequences=True)(x)
    x = L.SimpleRNN(8)(x)
    out = L.Dense(3)(x)
    return keras.Model(inp, out, name="recurrent")


# ---- big models: real Keras application architectures, random weights ------ #


def _app(ctor_name: str, size: int, **kwargs):
    keras = _keras()
    ctor = getattr(keras.applications, ctor_name)
    inp = keras.Input(shape=(size, size, 3), batch_size=1, name="input")
    return ctor(input_tensor=inp, weights=None, **kwargs)


def build_mobilenet_v1():
    return _app("MobileNet", 224, alpha=1.0)


def build_mobilenet_v2():
    return _app("MobileNetV2", 224, alpha=1.0)


def build_mobilenet_v3_small():
    return _app("MobileNetV3Small", 224)


def build_efficientnet_b0():
    return _app("EfficientNetB0", 224)


def build_resnet50():
    return _app("ResNet50", 224)


def build_inception_v3():
    return _app("InceptionV3", 299)


# Float32-only big models (issue 3): smaller inputs where Keras allows, to keep CI time down.
def build_mobilenet_v3_large():
    return _app("MobileNetV3Large", 160)


def build_densenet121():
    return _app("DenseNet121", 128)


def build_nasnet_mobile():
    return _app("NASNetMobile", 128)


def build_xception():
    return _app("Xception", 96)  # Keras' minimum is 71


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("conv1d", build_conv1d, description="Conv1D (same/valid/strided/dilated), pools"),
        ModelSpec("conv2d_transpose", build_conv2d_transpose, description="Conv2DTranspose"),
        ModelSpec(
            "attention_layernorm",
            build_attention_layernorm,
            description="MultiHeadAttention + LayerNormalization + Dense(GELU)",
        ),
        ModelSpec(
            "embedding",
            build_embedding,
            int_high=EMBED_VOCAB,
            description="Embedding -> GlobalAveragePooling1D -> Dense (int32 indices input)",
        ),
        ModelSpec("prelu", build_prelu, description="Conv2D -> PReLU (shared and full alpha)"),
        ModelSpec(
            "separable_conv",
            build_separable_conv,
            description="SeparableConv2D / DepthwiseConv2D / ZeroPadding2D",
        ),
        ModelSpec(
            "bilinear_upsampling",
            build_bilinear_upsampling,
            description="UpSampling2D bilinear/nearest + Resizing bilinear",
        ),
        ModelSpec(
            "mixed",
            build_mixed,
            description="Conv2D, BatchNorm, ReLU6, Max/AvgPool, Concatenate, Add, Dense, Softmax",
        ),
        # Big: keras.applications, weights=None, BatchNorm statistics re-estimated.
        # Inputs in [0, 255) for the models that embed their own preprocessing
        # (MobileNetV3, EfficientNet), [-1, 1) otherwise.
        *(
            ModelSpec(n, fn, big=True, recalibrate_bn=True, float_range=rng, description=d)
            for n, fn, rng, d in [
                ("mobilenet_v1", build_mobilenet_v1, (-1.0, 1.0), "MobileNet alpha 1.0, 224"),
                ("mobilenet_v2", build_mobilenet_v2, (-1.0, 1.0), "MobileNetV2 alpha 1.0, 224"),
                ("mobilenet_v3_small", build_mobilenet_v3_small, (0.0, 255.0),
                 "MobileNetV3Small, 224, with preprocessing"),
                ("efficientnet_b0", build_efficientnet_b0, (0.0, 255.0), "EfficientNetB0, 224"),
                ("resnet50", build_resnet50, (-1.0, 1.0), "ResNet50, 224"),
                ("inception_v3", build_inception_v3, (-1.0, 1.0), "InceptionV3, 299"),
            ]
        ),
        # Op coverage (issue 3's float op list), also in the quantized modes (issue 4: every
        # op TFLite runs quantized, bit-exact). Modes the converter cannot produce are left
        # out, with the reason (``_COVERAGE_MODES``).
        *(
            ModelSpec(n, fn, modes=_COVERAGE_MODES.get(n, _COVERAGE_DEFAULT), description=d)
            for n, fn, d in [
                ("conv3d", build_conv3d, "Conv3D (same/valid/strided), global 3-D pools"),
                ("dilated_conv_pools", build_dilated_conv_pools,
                 ("dilated Conv2D/SeparableConv2D, BatchNorm, ELU, LeakyReLU, hard-swish, "
                  "max/avg/global pools in 2-D and 1-D")),
                ("resize_modes", build_resize_modes,
                 "bilinear/nearest resize: align_corners, half_pixel_centers, legacy; UpSampling"),
                ("elementwise_math", build_elementwise_math,
                 ("exp/log/sqrt/rsqrt/pow/square/abs/sign/floor/ceil/round/sin/cos, min/max, "
                  "squared difference, div/floor-div/mod, (log-)softmax, GELU, cumsum")),
                ("logic_select", build_logic_select,
                 "comparisons, logical ops, select/where, cast, any/all"),
                ("reductions_indexing", build_reductions_indexing,
                 "sum/mean/max/min/prod, argmax/argmin, top-k, gather/gather_nd/scatter_nd"),
                ("shape_ops", build_shape_ops,
                 ("pad/mirror-pad/padv2, transpose, reshape/squeeze/expand, split/split_v, "
                  "pack/unpack, slice/strided slice, reverse, tile, broadcast, depth/space, "
                  "space-to-batch/batch-to-space")),
                ("matmul_fc", build_matmul_fc,
                 "FULLY_CONNECTED with keep_num_dims, BATCH_MATMUL (run-time and constant)"),
                ("keras_activations_norms", build_keras_activations_norms,
                 ("every Keras activation by name, ReLU options, Softmax(axis), Unit/Group/Layer/"
                  "Batch normalization, Rescaling, Normalization")),
                ("keras_shape_layers", build_keras_shape_layers,
                 ("cropping/padding/upsampling 1-3D, Permute, grouped and causal convs, "
                  "Conv1D/3D transpose, merge layers, Dot, RepeatVector, Resizing, CenterCrop")),
                ("recurrent", build_recurrent,
                 "Keras 3 Bidirectional(LSTM) -> GRU -> SimpleRNN (unroll=False: WHILE loops)"),
            ]
        ),
        *(
            ModelSpec(n, fn, big=True, recalibrate_bn=True, modes=FLOAT_ONLY,
                      float_range=rng, description=d)
            for n, fn, rng, d in [
                ("mobilenet_v3_large", build_mobilenet_v3_large, (0.0, 255.0),
                 "MobileNetV3Large, 160, with preprocessing (float32 only)"),
                ("densenet121", build_densenet121, (-1.0, 1.0), "DenseNet121, 128 (float32 only)"),
                ("nasnet_mobile", build_nasnet_mobile, (-1.0, 1.0),
                 "NASNetMobile, 128 (float32 only)"),
                ("xception", build_xception, (-1.0, 1.0), "Xception, 96 (float32 only)"),
            ]
        ),
    ]
}

SMALL_MODELS = tuple(n for n, s in MODELS.items() if not s.big)
#: The op-coverage models (each exercises a family of layers; small).
COVERAGE_MODELS = ("conv3d", "dilated_conv_pools", "resize_modes", "elementwise_math",
                   "logic_select", "reductions_indexing", "shape_ops", "matmul_fc",
                   "keras_activations_norms", "keras_shape_layers", "recurrent")
BIG_MODELS = tuple(n for n, s in MODELS.items() if s.big)


def models_with_mode(mode: str) -> dict[str, ModelSpec]:
    """The specs whose ``modes`` include ``mode`` (in corpus order)."""
    return {n: s for n, s in MODELS.items() if mode in s.modes}


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


def _seed(name: str, salt: int = 0) -> int:
    return (zlib.crc32(name.encode()) + 7919 * salt) & 0xFFFFFFFF


def sample_inputs(
    name: str,
    n: int = 1,
    seed: int = 0,
    input_specs: Sequence[tuple[tuple[int, ...], str]] | None = None,
) -> list[list[np.ndarray]]:
    """``n`` deterministic samples for model ``name``; each sample is a list of arrays
    (one per model input, in input order), float32 for float inputs, int32 indices
    in range for integer inputs.  ``seed=0`` is the calibration set; use another seed
    for evaluation data drawn from the same distribution.

    ``input_specs`` (shape, dtype) defaults to the specs recorded in the model's
    cached JSON sidecar (so no TensorFlow import is needed once built)."""
    spec = MODELS[name]
    if input_specs is None:
        input_specs = _input_specs(name)
    rng = np.random.default_rng(_seed(name, seed))
    samples = []
    for _ in range(n):
        arrays = []
        for shape, dtype in input_specs:
            dt = np.dtype(dtype)
            if np.issubdtype(dt, np.integer):
                arrays.append(rng.integers(0, spec.int_high, size=shape).astype(dt))
            elif spec.float_range is None:
                arrays.append(np.clip(rng.standard_normal(shape), -3, 3).astype(dt))
            else:
                lo, hi = spec.float_range
                arrays.append(rng.uniform(lo, hi, size=shape).astype(dt))
        samples.append(arrays)
    return samples


def _input_specs(name: str) -> list[tuple[tuple[int, ...], str]]:
    for mode in ALL_MODES:
        meta = _read_meta(name, mode)
        if meta and meta.get("inputs"):
            return [(tuple(i["shape"]), i["dtype"]) for i in meta["inputs"]]
    with _quiet():
        model = _build_keras(name)
    return _keras_input_specs(model)


def _keras_input_specs(model) -> list[tuple[tuple[int, ...], str]]:
    specs = []
    for t in model.inputs:
        shape = tuple(int(d) if d is not None else 1 for d in t.shape)
        specs.append((shape, str(np.dtype(t.dtype))))
    return specs


# --------------------------------------------------------------------------- #
# Building / conversion
# --------------------------------------------------------------------------- #


def _paths(name: str, mode: str) -> tuple[Path, Path, Path]:
    stem = f"{name}__{mode}"
    return (
        CACHE_DIR / f"{stem}.tflite",
        CACHE_DIR / f"{stem}.json",
        CACHE_DIR / "locks" / f"{stem}.lock",
    )


_TF_VERSION: str | None = None


def _tf_version() -> str:
    """TensorFlow's version without importing it (read from package metadata)."""
    global _TF_VERSION
    if _TF_VERSION is None:
        from importlib import metadata  # noqa: PLC0415

        ver = "unknown"
        for dist in ("tensorflow-cpu", "tensorflow", "tf-nightly"):
            try:
                ver = f"{dist}=={metadata.version(dist)}"
                break
            except metadata.PackageNotFoundError:
                continue
        _TF_VERSION = ver
    return _TF_VERSION


def _builder_source(builder) -> str:
    try:
        return inspect.getsource(builder)
    except (OSError, TypeError):
        return builder.__qualname__


# Captured at import time, while this file still matches the loaded code (a
# long-running process must not hash a since-edited file at stale line numbers).
_BUILDER_SOURCES = {n: _builder_source(s.builder) for n, s in MODELS.items()}


def _cache_key(name: str, mode: str) -> str:
    spec = MODELS[name]
    h = hashlib.sha256()
    src = _BUILDER_SOURCES.get(name)
    h.update((src if src is not None else _builder_source(spec.builder)).encode())
    h.update(repr((spec.float_range, spec.int_high, CONVERT_VERSION, mode)).encode())
    h.update(_tf_version().encode())
    return h.hexdigest()[:16]


def _read_meta(name: str, mode: str) -> dict | None:
    _, meta_path, _ = _paths(name, mode)
    try:
        return json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None


def _valid_meta(name: str, mode: str) -> dict | None:
    """The sidecar if the cached entry is complete and current, else None."""
    meta = _read_meta(name, mode)
    if not meta or meta.get("key") != _cache_key(name, mode):
        return None
    enabled = mode in MODELS[name].modes
    if meta.get("status") == "ok":
        if not enabled:
            return None  # the mode was disabled since: record that instead
        tfl, _, _ = _paths(name, mode)
        if not tfl.is_file() or tfl.stat().st_size != meta.get("bytes"):
            return None
    elif meta.get("status") != "unsupported":
        return None
    elif enabled and "not enabled" in str(meta.get("reason", "")):
        return None  # the mode was enabled since this sidecar was written
    return meta


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _setup_tf():
    """Import TF/Keras lazily, quiet their logs, make runs deterministic."""
    import tensorflow as tf  # noqa: PLC0415

    with contextlib.suppress(Exception):
        tf.get_logger().setLevel("ERROR")
    with contextlib.suppress(Exception):
        import absl.logging  # noqa: PLC0415

        absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


_LAST_KERAS: dict = {}  # {name: model}: the last model built, reused across modes


def _build_keras(name: str):
    """Deterministic Keras model: same weights in every process/order.  The last
    model built is memoized so converting several modes in one process builds (and
    BN-recalibrates) it once."""
    if name in _LAST_KERAS:
        return _LAST_KERAS[name]
    _LAST_KERAS.clear()
    _setup_tf()
    keras = _keras()
    keras.backend.clear_session()  # resets auto layer names (conv2d, conv2d_1, ...)
    keras.utils.set_random_seed(0)  # python, numpy, TF/Keras seeds
    np.random.seed(0)
    spec = MODELS[name]
    model = spec.builder()
    if spec.recalibrate_bn:
        specs = _keras_input_specs(model)
        _recalibrate_batchnorm(model, sample_inputs(name, _n_calib(name), 0, specs))
    _LAST_KERAS[name] = model
    return model


def _n_calib(name: str) -> int:
    return CALIBRATION_SAMPLES_BIG if MODELS[name].big else CALIBRATION_SAMPLES


def _recalibrate_batchnorm(model, samples) -> None:
    """Set every BatchNormalization's moving mean/variance to the statistics its input
    has on ``samples`` (one training-mode pass per sample, cumulative average), with
    dropout disabled, so the random network is normalized like a trained one."""
    tf = _setup_tf()
    keras = _keras()
    tf.config.experimental.enable_op_determinism()
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    bns = [l for l in layers if isinstance(l, keras.layers.BatchNormalization)]
    drops = [l for l in layers if isinstance(l, keras.layers.Dropout)]
    saved_m = [l.momentum for l in bns]
    saved_r = [l.rate for l in drops]
    for l in drops:
        l.rate = 0.0
    try:
        for k, sample in enumerate(samples):
            for l in bns:  # running average of per-sample statistics
                l.momentum = k / (k + 1.0)
            model(list(sample), training=True)
    finally:
        for l, m in zip(bns, saved_m):
            l.momentum = m
        for l, r in zip(drops, saved_r):
            l.rate = r


def _convert(name: str, mode: str, model) -> tuple[bytes, dict]:
    """Convert ``model`` for ``mode``. Raises on converter failure."""
    tf = _setup_tf()
    input_specs = _keras_input_specs(model)
    nsamples = _n_calib(name)
    calib = sample_inputs(name, nsamples, seed=0, input_specs=input_specs)

    def representative_dataset():
        for sample in calib:
            yield [np.asarray(a) for a in sample]

    settings: dict = {"mode": mode}

    def make(supported_ops=None):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "float32":
            pass
        elif mode == "dynamic":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        elif mode == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif mode in ("int8", "int8_float_io"):
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative_dataset
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if mode == "int8":
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        elif mode == "int16x8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative_dataset
            conv.target_spec.supported_ops = supported_ops or [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        else:
            raise ValueError(f"unknown mode {mode!r}")
        settings["supported_ops"] = [str(o) for o in conv.target_spec.supported_ops]
        if mode in ("int8", "int8_float_io", "int16x8"):
            settings["calibration_samples"] = nsamples
        return conv

    try:
        data = make().convert()
        settings["fallback_to_float_builtins"] = False
    except Exception as first:
        if mode != "int16x8":
            raise
        # Some ops have no int16x8 kernel: allow float TFLITE_BUILTINS fallback.
        ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
        try:
            data = make(ops).convert()
        except Exception as second:
            raise RuntimeError(
                f"int16x8: {_short_error(first, 300)} || with TFLITE_BUILTINS fallback: "
                f"{_short_error(second, 300)}"
            ) from second
        settings["fallback_to_float_builtins"] = True
        settings["fallback_reason"] = _short_error(first)
    settings["inputs"] = [{"shape": list(s), "dtype": d} for s, d in input_specs]
    return bytes(data), settings


@contextlib.contextmanager
def _quiet():
    """Silence Python- and C-level stdout/stderr and Python warnings while building
    (TF's converter and calibrator print from C++).  Conversion errors still surface
    as exceptions.  Set CORPUS_VERBOSE=1 to see everything."""
    if os.environ.get("CORPUS_VERBOSE"):
        yield
        return
    import warnings  # noqa: PLC0415

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = {}
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                saved[fd] = os.dup(fd)
        with open(os.devnull, "w") as devnull:
            for fd in saved:
                os.dup2(devnull.fileno(), fd)
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        with contextlib.suppress(Exception):
            import ctypes  # noqa: PLC0415

            ctypes.CDLL(None).fflush(None)
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)


def _short_error(exc: BaseException, limit: int = 600) -> str:
    msg = f"{type(exc).__name__}: {exc}".strip()
    # Converter errors are long; keep the lines that say what failed.
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    keep = [ln for ln in lines if "error" in ln.lower() or "not supported" in ln.lower()]
    text = " | ".join(dict.fromkeys(keep or lines))
    return text[:limit]


def _litert_check(name: str, data: bytes) -> tuple[bool | None, str | None]:
    """Can the reference runtime (ai_edge_litert) load and invoke the model once?
    (None, None) if ai_edge_litert is not installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except Exception:
        return None, None
    try:
        with _quiet():
            it = Interpreter(model_content=data)
            it.allocate_tensors()
            details = it.get_input_details()
            specs = [
                (
                    tuple(int(v) for v in d["shape"]),
                    "float32" if d["quantization"][0] else np.dtype(d["dtype"]).name,
                )
                for d in details
            ]
            (sample,) = sample_inputs(name, 1, seed=1, input_specs=specs)
            for d, x in zip(details, sample):
                dt = np.dtype(d["dtype"])
                if dt in (np.int8, np.int16, np.uint8) and d["quantization"][0]:
                    scale, zp = d["quantization"]
                    info_ = np.iinfo(dt)
                    x = np.clip(np.round(x / scale + zp), info_.min, info_.max)
                it.set_tensor(d["index"], np.asarray(x).astype(dt))
            it.invoke()
            for d in it.get_output_details():
                it.get_tensor(d["index"])
    except Exception as exc:
        return False, _short_error(exc)
    return True, None


def _build(name: str, mode: str) -> dict:
    """Build and cache one (name, mode); returns the sidecar. Caller holds the lock."""
    tfl, meta_path, _ = _paths(name, mode)
    t0 = time.perf_counter()
    meta: dict = {
        "name": name,
        "mode": mode,
        "key": _cache_key(name, mode),
        "tf": _tf_version(),
        "description": MODE_DESCRIPTIONS[mode],
    }
    if mode not in MODELS[name].modes:
        meta.update(status="unsupported", reason=f"mode {mode} not enabled for {name}")
    else:
        try:
            with _quiet():
                model = _build_keras(name)
                data, settings = _convert(name, mode, model)
        except Exception as exc:  # never crash the corpus: record why
            meta.update(
                status="unsupported",
                reason=_short_error(exc),
                traceback=traceback.format_exc(limit=3)[-2000:],
            )
        else:
            if data[4:8] != b"TFL3":
                meta.update(status="unsupported", reason="converter output lacks TFL3 identifier")
            else:
                _atomic_write(tfl, data)
                meta.update(status="ok", bytes=len(data), **settings)
                ok, err = _litert_check(name, data)
                meta.update(litert_ok=ok, litert_error=err)
    meta["build_seconds"] = round(time.perf_counter() - t0, 2)
    if meta["status"] != "ok":
        with contextlib.suppress(FileNotFoundError):
            tfl.unlink()
    _atomic_write(meta_path, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    return meta


def ensure(name: str, mode: str, force: bool = False) -> dict:
    """Build (if needed) and return the JSON sidecar for (name, mode)."""
    if name not in MODELS:
        raise KeyError(f"unknown corpus model {name!r}; known: {sorted(MODELS)}")
    if mode not in ALL_MODES:
        raise KeyError(f"unknown mode {mode!r}; known: {ALL_MODES}")
    if not force:
        meta = _valid_meta(name, mode)
        if meta is not None:
            return meta
    _, _, lock = _paths(name, mode)
    with _locked(lock):
        if not force:
            meta = _valid_meta(name, mode)  # another worker may have built it meanwhile
            if meta is not None:
                return meta
        meta = _build(name, mode)
        meta["_built_now"] = True
        return meta


def _usable(meta: dict, runnable: bool) -> bool:
    return meta["status"] == "ok" and not (runnable and meta.get("litert_ok") is False)


def model_path(name: str, mode: str = "float32", runnable: bool = True) -> Path | None:
    """Path of the cached .tflite for (name, mode), building it if needed.

    None if the converter cannot produce it, or (``runnable=True``, the default) if
    the reference runtime ai_edge_litert cannot run what the converter produced
    (e.g. int16x8 ops without an int16 kernel). See ``unsupported_reason``."""
    meta = ensure(name, mode)
    return _paths(name, mode)[0] if _usable(meta, runnable) else None


def model_bytes(name: str, mode: str = "float32", runnable: bool = True) -> bytes | None:
    p = model_path(name, mode, runnable)
    return None if p is None else p.read_bytes()


def unsupported_reason(name: str, mode: str, runnable: bool = True) -> str | None:
    """Why ``model_path(name, mode, runnable)`` is None (builds if needed); None if usable."""
    meta = ensure(name, mode)
    if meta["status"] != "ok":
        return "converter: " + meta.get("reason", "unsupported")
    if runnable and meta.get("litert_ok") is False:
        return "LiteRT cannot run the converted model: " + str(meta.get("litert_error"))
    return None


def info(name: str, mode: str) -> dict:
    """The sidecar: status, reason, bytes, converter settings, inputs, build time."""
    return {k: v for k, v in ensure(name, mode).items() if not k.startswith("_")}


def corpus(
    big: bool = True,
    modes: Iterable[str] = MODES,
    names: Iterable[str] | None = None,
    include_unsupported: bool = False,
    runnable: bool = True,
) -> list[tuple[str, str, Path | None]]:
    """``[(name, mode, path)]`` for the corpus (building what is missing).

    ``big=False`` -> small models only; ``big=True`` -> small and big models.
    Unsupported combinations (and, with ``runnable``, those LiteRT cannot run) are
    left out unless ``include_unsupported`` (then path=None).
    """
    modes = tuple(modes)
    if names is None:
        names = [n for n, s in MODELS.items() if big or not s.big]
    out = []
    for name in names:
        for mode in modes:
            p = model_path(name, mode, runnable)
            if p is not None or include_unsupported:
                out.append((name, mode, p))
    return out


def corpus_params(big: bool = True, modes: Iterable[str] = MODES, names=None):
    """(name, mode) pairs WITHOUT building anything, for ``pytest.mark.parametrize``;
    call ``model_path`` inside the test and skip on None."""
    if names is None:
        names = [n for n, s in MODELS.items() if big or not s.big]
    return [(n, m) for n in names for m in modes if m in MODELS[n].modes]


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def _ensure_timed(name: str, mode: str, force: bool) -> dict:
    t0 = time.perf_counter()
    meta = ensure(name, mode, force=force)
    return dict(meta, wall=time.perf_counter() - t0)


def _ensure_model(name: str, modes: tuple[str, ...], force: bool) -> list[dict]:
    return [_ensure_timed(name, mode, force) for mode in modes]


def _format_row(row: dict) -> str:
    status = f"{row['bytes']:>11,d} B" if row["status"] == "ok" else "UNSUPPORTED"
    extra = ""
    if row["status"] != "ok":
        extra = "  " + row.get("reason", "")[:300]
    elif row.get("litert_ok") is False:
        extra = "  LITERT FAILS: " + str(row.get("litert_error"))[:200]
    elif row.get("fallback_to_float_builtins"):
        extra = "  (TFLITE_BUILTINS fallback: " + row.get("fallback_reason", "")[:120] + ")"
    built = "built" if row.get("_built_now") else "cached"
    return f"  {row['name']:22s} {row['mode']:14s} {status}  {built:6s} {row['wall']:7.1f}s{extra}"


def build_models_time_budget(
    names: Iterable[str] | None = None,
    modes: Iterable[str] = ALL_MODES,
    force: bool = False,
    jobs: int = 1,
    budget_seconds: float = 12 * 60,
    out=sys.stdout,
) -> list[dict]:
    """Build the given models/modes (``jobs`` > 1: in that many spawned processes),
    printing per-(model, mode) size and time, per-model build-time totals and the
    wall-clock total; warns when the total exceeds ``budget_seconds``."""
    names = list(names) if names is not None else list(MODELS)
    modes = tuple(modes)
    # Modes a spec does not enable are left out (they would only record "not enabled").
    tasks = [(n, m) for n in names for m in modes if m in MODELS[n].modes]
    t_all = time.perf_counter()
    rows: list[dict] = []
    print(f"corpus cache: {CACHE_DIR}  ({_tf_version()}, jobs={jobs})", file=out, flush=True)
    if jobs <= 1:
        for name, mode in tasks:
            rows.append(_ensure_timed(name, mode, force))
            print(_format_row(rows[-1]), file=out, flush=True)
    else:
        import concurrent.futures as cf  # noqa: PLC0415
        import multiprocessing as mp  # noqa: PLC0415

        # One task per model (its Keras model is built once per process), longest first.
        cost = {n: i for i, n in enumerate(BIG_MODELS)}  # roughly increasing cost
        order_names = sorted(names, key=lambda n: -cost.get(n, -1))
        with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futs = [pool.submit(_ensure_model, n, tuple(m for m in modes if m in MODELS[n].modes),
                                force) for n in order_names]
            for fut in cf.as_completed(futs):
                for row in fut.result():
                    rows.append(row)
                    print(_format_row(row), file=out, flush=True)
        order = {t: i for i, t in enumerate(tasks)}
        rows.sort(key=lambda r: order[(r["name"], r["mode"])])
    total = time.perf_counter() - t_all
    print("per model (sum of build seconds over modes, cached entries count 0):", file=out)
    for name in names:
        secs = sum(r["build_seconds"] for r in rows if r["name"] == name and r.get("_built_now"))
        sizes = " ".join(
            f"{r['mode']}={r['bytes'] / 1e6:.2f}MB" if r["status"] == "ok" else f"{r['mode']}=n/a"
            for r in rows
            if r["name"] == name
        )
        print(f"  {name:22s} {secs:7.1f}s  {sizes}", file=out)
    n_ok = sum(_usable(r, True) for r in rows)
    n_conv = sum(r["status"] == "ok" for r in rows)
    print(
        f"total: {total:.1f}s wall for {len(rows)} entries ({n_ok} usable, "
        f"{len(rows) - n_conv} unsupported by the converter, "
        f"{n_conv - n_ok} converted but not runnable in LiteRT)",
        file=out,
        flush=True,
    )
    for r in rows:
        if r["status"] != "ok":
            print(f"  unsupported {r['name']}/{r['mode']}: {r.get('reason')}", file=out)
        elif r.get("litert_ok") is False:
            print(f"  LiteRT fails {r['name']}/{r['mode']}: {r.get('litert_error')}", file=out)
    if total > budget_seconds:
        print(f"WARNING: build exceeded the {budget_seconds:.0f}s budget", file=out, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.corpus", description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(MODELS))
    ap.add_argument("--modes", nargs="+", default=list(ALL_MODES), choices=ALL_MODES)
    grp = ap.add_mutually_exclusive_group()
    grp.add_argument("--small", action="store_true", help="small models only")
    grp.add_argument("--big", action="store_true", help="big (keras.applications) models only")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--list", action="store_true", help="list models and exit")
    ap.add_argument(
        "-j", "--jobs", type=int, default=1, help="parallel build processes (default 1)"
    )
    args = ap.parse_args(argv)
    if args.list:
        for n, s in MODELS.items():
            print(f"{n:22s} {'big' if s.big else 'small':5s} {s.description}")
        return 0
    names = args.only or [
        n for n, s in MODELS.items() if not (args.small and s.big) and not (args.big and not s.big)
    ]
    build_models_time_budget(names, args.modes, force=args.force, jobs=args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
