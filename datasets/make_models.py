"""Rebuild the small committed example models in ``datasets/models/``.

Provenance: every model here is produced by this script with TensorFlow's converter from a Keras
architecture with seeded random weights (no downloads, no training data). Run:

    .venv/bin/python datasets/make_models.py
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = Path(__file__).with_name("models")


def quickstart_cnn():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3), batch_size=1, name="image")
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inp)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu6")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    return keras.Model(inp, x)


def main() -> None:
    import numpy as np
    import tensorflow as tf

    OUT.mkdir(exist_ok=True)
    model = quickstart_cnn()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    (OUT / "quickstart_cnn_float32.tflite").write_bytes(conv.convert())

    rng = np.random.default_rng(0)

    def rep():
        for _ in range(16):
            yield [rng.uniform(0, 1, (1, 32, 32, 3)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (OUT / "quickstart_cnn_int8.tflite").write_bytes(conv.convert())


if __name__ == "__main__":
    main()
