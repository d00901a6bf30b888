"""AudioSpectrogram (custom op LiteRT runs by default; keyword-spotting models, from
``tf.raw_ops.AudioSpectrogram`` converted with ``allow_custom_ops``): float32 audio
``[samples, channels]`` to float32 ``[channels, frames, fft_length / 2 + 1]``, ``frames = 1 +
(samples - window_size) // stride`` (0 when the audio is shorter than a window), ``fft_length``
the power of two at or above ``window_size``. Each frame is multiplied by a periodic Hann window
``0.5 - 0.5 cos(2 pi i / window_size)``, zero-padded and transformed; the power ``re^2 + im^2``
is computed in double and rounded once to float32, and ``magnitude_squared`` false takes a
float32 square root of that. Options come from the FlexBuffer map as LiteRT reads them
(``AsInt64`` then int32; a missing key is 0, so no options map fails: window_size < 2 or
stride < 1 are refused at prepare, as LiteRT). Bit-identical to LiteRT on noise-like audio;
where a bin's power is only rounding residue (pure tones) the double FFT's last bits differ
from LiteRT's Ooura FFT, within 1e-13 of the tensor's range."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._common import Kernel, check_allocation
from ._flex import custom_map, flex_bool, flex_int32
from .registry import register_litert_custom

F32 = np.float32
#: Largest window LiteRT can set up: above it the FFT length 2**31 overflows its int (LiteRT
#: throws bad_alloc / is killed allocating the 8-byte-per-point FFT buffer).
MAX_WINDOW = 1 << 30
#: Frames transformed per numpy FFT call (bounds the float64 work buffer, ~16 MiB).
_CHUNK_POINTS = 1 << 21


def periodic_hann(n: int) -> np.ndarray:
    """LiteRT's window, each value from the C library's ``cos`` (``math.cos``) in double."""
    two_pi = 2.0 * math.pi  # LiteRT's pi = atan(1) * 4 is this double exactly
    return np.array([0.5 - 0.5 * math.cos(two_pi * i / n) for i in range(n)], np.float64)


@register_litert_custom("AudioSpectrogram")
class AudioSpectrogram(Kernel):
    def prepare(self):
        node = self.node
        opts = custom_map(node)
        if len(node.inputs) != 1 or node.inputs[0] is None:
            raise node.fail(f"takes 1 input, got {len(node.inputs)}")
        if len(node.outputs) != 1 or node.outputs[0] is None:
            raise node.fail(f"has 1 output, got {len(node.outputs)}")
        x, out = node.inputs[0], node.outputs[0]
        if len(x.shape) != 2:
            raise node.fail(f"input must be [samples, channels], got shape {list(x.shape)}")
        if out.dtype != np.float32:
            raise node.fail(f"output must be float32, got {out.tensor.type_name}")
        if x.dtype != np.float32:
            raise node.fail(f"input must be float32 like the output, got {x.tensor.type_name}")
        self.window_size = w = flex_int32(node, opts, "window_size")
        self.stride = s = flex_int32(node, opts, "stride")
        self.squared = flex_bool(node, opts, "magnitude_squared")
        if w < 2:
            raise node.fail(f"window_size {w} must be at least 2")
        if w > MAX_WINDOW:
            raise node.fail(f"window_size {w} is above 2**30: LiteRT cannot allocate its FFT")
        if s < 1:
            raise node.fail(f"stride {s} must be positive")
        self.fft_length = 1 << (w - 1).bit_length()
        samples, channels = (int(d) for d in x.shape)
        self.frames = 0 if samples < w else 1 + (samples - w) // s
        self.window = None  # built at the first eval that has a frame
        shapes = [(channels, self.frames, self.fft_length // 2 + 1)]
        check_allocation(node, shapes, runtime=False)
        return shapes

    def eval(self, inputs):
        x = inputs[0]
        channels = x.shape[1]
        frames, w, s, n = self.frames, self.window_size, self.stride, self.fft_length
        out = np.empty((channels, frames, n // 2 + 1), F32)
        if out.size == 0:
            return [out]
        if self.window is None:
            self.window = periodic_hann(w)
        signal = x.T.astype(np.float64)  # [channels, samples]
        framed = sliding_window_view(signal, w, axis=1)[:, ::s][:, :frames]
        step = max(1, _CHUNK_POINTS // (channels * n))
        for f0 in range(0, frames, step):
            spec = np.fft.rfft(framed[:, f0:f0 + step] * self.window, n=n, axis=-1)
            re, im = spec.real, spec.imag
            power = re * re
            power += im * im
            out[:, f0:f0 + step] = power  # one rounding to float32
        if not self.squared:
            np.sqrt(out, out=out)
        return [out]
