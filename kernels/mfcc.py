"""Mfcc (custom op LiteRT runs by default; keyword-spotting models, from ``tf.raw_ops.Mfcc``
converted with ``allow_custom_ops``): a float32 squared-magnitude spectrogram ``[channels,
frames, bins]`` and an int32 sample rate (one element, constant or fed) to float32 ``[channels,
frames, dct_coefficient_count]`` mel-frequency cepstral coefficients, as LiteRT computes them in
double: square roots of the bins weighted into ``filterbank_channel_count`` triangular mel bands
(``mel = 1127 ln(1 + f / 700)``, bins from ``1.5 + lower / hz_per_bin`` to ``upper /
hz_per_bin``, accumulated bin by bin), floored at 1e-12, natural log, then a DCT-II (``sqrt(2 /
channels) cos(pi i (j + 0.5) / channels)``, summed in order) and one rounding to float32;
bit-identical to LiteRT. The frequency limits are read as LiteRT does, with ``AsInt64`` (4000.7
acts as 4000). LiteRT checks the options only at invoke: filterbank_channel_count < 1, a sample
rate <= 0, fewer than 2 bins, lower_frequency_limit < 0, upper <= lower, or
dct_coefficient_count < 1 or above the channel count fail the invoke (unless the output is
empty); an upper limit past the last bin gives zeros. A negative dct_coefficient_count is
refused at prepare, as are more than 65536 filterbank channels or a DCT table above 2**24
values (LiteRT would build tables of that size; no spectrogram has the bins to fill them)."""

from __future__ import annotations

import math

import numpy as np

from ._common import Kernel, check_allocation
from ._elementwise import runtime_error
from ._flex import custom_map, flex_int32, flex_int64
from .registry import register_litert_custom

F32 = np.float32
F64 = np.float64
MAX_FILTERBANK_CHANNELS = 1 << 16
#: Largest DCT table (channels x coefficients) built; LiteRT's is a vector of vectors of doubles.
MAX_DCT_VALUES = 1 << 24
#: Spectrogram rows per pass x channels (bounds the float64 work arrays, ~8 MiB each).
_CHUNK_VALUES = 1 << 20
_FLOOR = 1e-12


def _mel(freq: float) -> float:
    return 1127.0 * math.log1p(freq / 700.0)


@register_litert_custom("Mfcc")
class Mfcc(Kernel):
    def prepare(self):
        node = self.node
        opts = custom_map(node)
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail(f"takes 2 inputs (spectrogram, sample_rate), got {len(node.inputs)}")
        if len(node.outputs) != 1 or node.outputs[0] is None:
            raise node.fail(f"has 1 output, got {len(node.outputs)}")
        spec, rate = node.inputs
        if len(spec.shape) != 3:
            raise node.fail(f"spectrogram must be [channels, frames, bins], got shape "
                            f"{list(spec.shape)}")
        if math.prod(rate.shape) != 1:
            raise node.fail(f"sample_rate must have one element, got shape {list(rate.shape)}")
        if node.outputs[0].dtype != np.float32:
            raise node.fail(f"output must be float32, got {node.outputs[0].tensor.type_name}")
        if spec.dtype != np.float32:
            raise node.fail(f"spectrogram must be float32, got {spec.tensor.type_name}")
        if rate.dtype != np.int32:
            raise node.fail(f"sample_rate must be int32, got {rate.tensor.type_name}")
        # LiteRT's params: float frequency limits assigned from AsInt64, ints from AsInt64.
        self.upper = float(F32(flex_int64(node, opts, "upper_frequency_limit")))
        self.lower = float(F32(flex_int64(node, opts, "lower_frequency_limit")))
        self.channels = flex_int32(node, opts, "filterbank_channel_count")
        self.coefficients = flex_int32(node, opts, "dct_coefficient_count")
        if self.coefficients < 0:
            raise node.fail(f"dct_coefficient_count {self.coefficients} is negative")
        if self.channels > MAX_FILTERBANK_CHANNELS:
            raise node.fail(f"filterbank_channel_count {self.channels} is above "
                            f"{MAX_FILTERBANK_CHANNELS}")
        if 1 <= self.coefficients <= self.channels and (
                self.coefficients * self.channels > MAX_DCT_VALUES):
            raise node.fail(f"a DCT of {self.coefficients} coefficients over {self.channels} "
                            f"channels needs a table above {MAX_DCT_VALUES} values")
        self.tables: dict = {}
        self.dct = None
        shapes = [(int(spec.shape[0]), int(spec.shape[1]), self.coefficients)]
        check_allocation(node, shapes, runtime=False)
        return shapes

    def _invalid(self, rate: int, bins: int) -> str | None:
        """Why LiteRT's Mfcc::Initialize fails (its invoke then does), or None."""
        nch, ncoef = self.channels, self.coefficients
        if nch < 1:
            return f"filterbank_channel_count {nch} must be positive"
        if rate <= 0:
            return f"sample rate {rate} must be positive"
        if bins < 2:
            return f"the spectrogram has {bins} bins, at least 2 are needed"
        if self.lower < 0:
            return f"lower_frequency_limit {self.lower:g} is negative"
        if self.upper <= self.lower:
            return (f"upper_frequency_limit {self.upper:g} must be above "
                    f"lower_frequency_limit {self.lower:g}")
        if ncoef < 1 or ncoef > nch:
            return f"dct_coefficient_count {ncoef} must be in [1, {nch}] (the channel count)"
        return None

    def _filterbank(self, rate: int, bins: int):
        """(first bin, last bin, band of each bin, weight of each bin) as LiteRT's
        MfccMelFilterbank::Initialize builds them; None when the last bin is past the
        spectrogram (LiteRT's Compute then returns nothing: the coefficients are zeros)."""
        key = (rate, bins)
        if key in self.tables:
            return self.tables[key]
        nch, lo, hi = self.channels, self.lower, self.upper
        mel_lo, mel_hi = _mel(lo), _mel(hi)
        spacing = (mel_hi - mel_lo) / float(nch + 1)
        hz = 0.5 * rate / float(bins - 1)
        end_f = hi / hz
        table = None
        if end_f < bins:  # else LiteRT's int end index is >= bins (or overflowed): zeros
            start, end = int(1.5 + lo / hz), int(end_f)
            # Only the centers up to the last used bin's mel matter (channels is bounded).
            centers = [mel_lo + spacing * (i + 1) for i in range(nch + 1)]
            band, weight = [], []
            ch = 0
            for i in range(start, end + 1):
                m = _mel(i * hz)
                while ch < nch and centers[ch] < m:
                    ch += 1
                c = ch - 1
                band.append(c)
                if c >= 0:
                    weight.append((centers[c + 1] - m) / (centers[c + 1] - centers[c]))
                else:
                    weight.append((centers[0] - m) / (centers[0] - mel_lo))
            table = (start, band, weight)
        self.tables[key] = table
        return table

    def _dct_table(self) -> np.ndarray:
        if self.dct is None:
            n = self.channels
            fnorm = math.sqrt(2.0 / n)
            arg = math.pi / n
            self.dct = np.array([[fnorm * math.cos(i * arg * (j + 0.5)) for i in
                                  range(self.coefficients)] for j in range(n)], F64)
        return self.dct  # [channels, coefficients]

    def eval(self, inputs):
        node = self.node
        spec = inputs[0]
        c, f, bins = spec.shape
        out = np.zeros((c, f, self.coefficients), F32)
        if out.size == 0:
            return [out]
        rate = int(np.asarray(inputs[1]).reshape(-1)[0])
        why = self._invalid(rate, bins)
        if why is not None:
            msg = f"{why} (LiteRT's Mfcc fails to initialize and the invoke fails)"
            if rate <= 0 and node.inputs[1].data is None:
                raise runtime_error(node, msg)
            raise node.fail(msg)
        table = self._filterbank(rate, bins)
        if table is None:
            return [out]
        start, band, weight = table
        x = spec.reshape(-1, bins)
        dct = self._dct_table()
        res = out.reshape(-1, self.coefficients)
        step = max(1, _CHUNK_VALUES // self.channels)  # bounds the float64 band arrays
        for r0 in range(0, x.shape[0], step):
            res[r0:r0 + step] = self._frames(x[r0:r0 + step], start, band, weight, dct)
        return [out]

    def _frames(self, x, start, band, weight, dct) -> np.ndarray:
        """float64 coefficients of spectrogram rows ``x`` [rows, bins]."""
        nch = self.channels
        mel = np.zeros((x.shape[0], nch), F64)
        for k, (b, w) in enumerate(zip(band, weight)):  # LiteRT's order: bin by bin
            v = np.sqrt(x[:, start + k].astype(F64))
            part = v * w
            if b >= 0:
                mel[:, b] += part
            if b + 1 < nch:
                mel[:, b + 1] += v - part
        np.maximum(mel, _FLOOR, out=mel)  # NaN stays NaN, as LiteRT's `val < floor` test
        logs = np.fromiter(map(math.log, mel.ravel()), F64, mel.size).reshape(mel.shape)
        acc = np.zeros((x.shape[0], self.coefficients), F64)
        for j in range(nch):  # LiteRT's sum, term by term in channel order
            acc += logs[:, j:j + 1] * dct[j]
        return acc
