"""AudioSpectrogram, Mfcc and NumericVerify (custom ops LiteRT's built-in resolver runs) against
LiteRT: values, option decoding, edge shapes, and our typed errors where LiteRT refuses.

LiteRT segfaults on an op stored without custom options; that case runs LiteRT in a child
process only."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from flatbuffers import flexbuffers

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.interpreter import Interpreter
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph

F32, I8, U8, I16, I32 = np.float32, np.int8, np.uint8, np.int16, np.int32
NO_OPTIONS = object()


def custom_model(name, ins, outs, options, const=(), quant=None) -> bytes:
    """One custom op. ``ins``: arrays (fed, unless their index is in ``const``); ``outs``:
    (shape, dtype); ``options``: a dict (FlexBuffer map), raw bytes, or NO_OPTIONS."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    tin = []
    for k, x in enumerate(ins):
        q = quant if k == 0 else None
        t = sg.new_tensor(f"in{k}", x.shape, x.dtype, data=x if k in const else None,
                          quantization=q)
        if k not in const:
            sg.inputs.append(t)
        tin.append(t)
    tout = [sg.new_tensor(f"out{k}", s, d) for k, (s, d) in enumerate(outs)]
    sg.outputs.extend(tout)
    raw = None
    if options is not NO_OPTIONS:
        raw = flexbuffers.Dumps(options) if isinstance(options, dict) else options
        raw = np.frombuffer(raw, np.uint8)
    sg.add_operator(Operator(m.opcode(None, name), tin, tout, custom_options=raw,
                             custom_options_format=0))
    return m.to_bytes()


def run(it, feeds, invokes=1):
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    for _ in range(invokes):
        it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def both(content, feeds, invokes=1):
    return (run(Interpreter(model_content=content), feeds, invokes),
            run(litert_interpreter(content), feeds, invokes))


def spectrogram(x, **options):
    return custom_model("AudioSpectrogram", [x], [((1, 1, 1), F32)], options)


def assert_refused_like_litert(content, feeds, invoke=False, match=None, error=wb.ModelError):
    """LiteRT fails (at allocate, or at invoke) and so do we, with a typed error."""
    ref = litert_interpreter(content)
    ours = Interpreter(model_content=content)
    if invoke:
        run(ref, [], 0)
        for d, x in zip(ref.get_input_details(), feeds):
            ref.set_tensor(d["index"], x)
        with pytest.raises(RuntimeError):
            ref.invoke()
        ours.allocate_tensors()
        for d, x in zip(ours.get_input_details(), feeds):
            ours.set_tensor(d["index"], x)
        with pytest.raises(error, match=match):
            ours.invoke()
    else:
        with pytest.raises((RuntimeError, ValueError)):
            ref.allocate_tensors()
        with pytest.raises(error, match=match):
            ours.allocate_tensors()


# -- AudioSpectrogram --------------------------------------------------------------------------
SPECTROGRAM_CASES = [  # samples, channels, window, stride, magnitude_squared
    (16000, 1, 480, 160, True),  # the keyword-spotting setting (FFT 512)
    (16000, 1, 480, 160, False),
    (3000, 2, 256, 128, False),  # window already a power of two
    (2000, 3, 200, 64, True),
    (1500, 1, 2, 1, True),  # the smallest window
    (1200, 2, 1000, 7, False),
    (700, 1, 513, 700, True),  # FFT 1024, one frame
    (1024, 1, 1024, 1, False),
]


@pytest.mark.parametrize("case", SPECTROGRAM_CASES, ids=str)
def test_spectrogram_of_noise_is_bit_exact(case):
    n, ch, w, s, sq = case
    x = (np.random.default_rng(n + w).standard_normal((n, ch)) * 300).astype(F32)
    (got,), (exp,) = both(spectrogram(x, window_size=w, stride=s, magnitude_squared=sq), [x])
    assert got.shape == exp.shape == (ch, 1 + (n - w) // s, (1 << (w - 1).bit_length()) // 2 + 1)
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("sq", [True, False])
@pytest.mark.parametrize("w,s", [(480, 160), (400, 123), (64, 32)])
def test_spectrogram_of_tones_within_range(w, s, sq):
    """Pure tones: bins holding only rounding residue differ in their last bits (numpy's
    double FFT vs LiteRT's Ooura FFT); everything else is identical."""
    t = np.arange(4000)[:, None]
    x = (0.7 * np.sin(2 * np.pi * t * [0.0625, 0.1337]) + 0.01).astype(F32)
    (got,), (exp,) = both(spectrogram(x, window_size=w, stride=s, magnitude_squared=sq), [x])
    assert got.shape == exp.shape
    err = np.max(np.abs(got.astype(np.float64) - exp))
    assert err <= 1e-5 * float(np.ptp(exp)), err
    big = exp > 1e-3 * exp.max()
    np.testing.assert_array_equal(got[big], exp[big])


def test_spectrogram_impulses_and_silence():
    x = np.zeros((900, 2), F32)
    x[::37, 0] = 1.0
    (got,), (exp,) = both(spectrogram(x, window_size=100, stride=50, magnitude_squared=True), [x])
    assert np.all(exp[1] == 0) and np.max(np.abs(got - exp)) <= 1e-5 * float(np.ptp(exp))


@pytest.mark.parametrize("options", [
    dict(window_size=64.9, stride=16.2, magnitude_squared=1),  # floats truncate (AsInt64)
    dict(window_size=64, stride=16, magnitude_squared=2),  # any nonzero number is true
    dict(window_size=64, stride=16, magnitude_squared=0.5),  # a float truncated: false
    dict(window_size=64, stride=16),  # a missing key is 0: false
    dict(window_size=2**32 + 64, stride=16, magnitude_squared=True),  # int64 -> int: low bits
    dict(window_size=64, stride=16, magnitude_squared=True, extra="ignored"),
], ids=str)
def test_spectrogram_options_read_as_litert(options):
    x = np.random.default_rng(1).standard_normal((500, 1)).astype(F32)
    (got,), (exp,) = both(spectrogram(x, **options), [x])
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("shape,w", [((100, 1), 200), ((0, 2), 16), ((100, 0), 16),
                                     ((16, 1), 16), ((100, 1), 2**20)])
def test_spectrogram_empty_and_short(shape, w):
    x = np.random.default_rng(4).standard_normal(shape).astype(F32)
    (got,), (exp,) = both(spectrogram(x, window_size=w, stride=8, magnitude_squared=True), [x])
    assert got.shape == exp.shape
    np.testing.assert_array_equal(got, exp)


def test_spectrogram_resized_input():
    x = np.random.default_rng(2).standard_normal((300, 1)).astype(F32)
    content = spectrogram(x, window_size=100, stride=40, magnitude_squared=True)
    y = np.random.default_rng(3).standard_normal((777, 2)).astype(F32)
    outs = []
    for it in (Interpreter(model_content=content), litert_interpreter(content)):
        it.resize_tensor_input(it.get_input_details()[0]["index"], [777, 2])
        outs.append(run(it, [y])[0])
    np.testing.assert_array_equal(*outs)


X100 = np.zeros((100, 1), F32)


@pytest.mark.parametrize("content,match", [
    (spectrogram(X100), "window_size 0"),  # no keys: LiteRT's Initialize(0, 0) fails
    (spectrogram(X100, window_size=1, stride=1), "window_size 1"),
    (spectrogram(X100, window_size=-5, stride=1), "window_size -5"),
    (spectrogram(X100, window_size=2**30 + 1, stride=1), "2..30"),
    (spectrogram(X100, window_size=16, stride=0), "stride 0"),
    (spectrogram(X100, window_size=16, stride=2**32), "stride 0"),
    (custom_model("AudioSpectrogram", [X100[:, 0]], [((1,), F32)], dict(window_size=16,
                                                                         stride=8)), "shape"),
    (custom_model("AudioSpectrogram", [X100[None]], [((1,), F32)], dict(window_size=16,
                                                                        stride=8)), "shape"),
    (custom_model("AudioSpectrogram", [X100.astype(I32)], [((1,), I32)],
                  dict(window_size=16, stride=8)), "output must be float32"),
    (custom_model("AudioSpectrogram", [X100.astype(I32)], [((1,), F32)],
                  dict(window_size=16, stride=8)), "input must be float32"),
    (custom_model("AudioSpectrogram", [X100], [((1,), np.float16)],
                  dict(window_size=16, stride=8)), "output must be float32"),
    (custom_model("AudioSpectrogram", [X100, X100], [((1,), F32)],
                  dict(window_size=16, stride=8)), "1 input"),
    (custom_model("AudioSpectrogram", [X100], [((1,), F32)] * 2,
                  dict(window_size=16, stride=8)), "1 output"),
    (spectrogram(X100, window_size="16", stride=8), "not a number"),  # LiteRT parses it
    (custom_model("AudioSpectrogram", [X100], [((1,), F32)], flexbuffers.Dumps(16)), "map"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_spectrogram_refusals(content, match):
    if match in ("not a number", "2..30"):  # LiteRT converts the string; we refuse it. A
        # window above 2**30 makes LiteRT compute a 2**30-point window before failing (~30 s).
        with pytest.raises(wb.ModelError, match=match):
            Interpreter(model_content=content).allocate_tensors()
        return
    assert_refused_like_litert(content, [X100], match=match)


# -- Mfcc --------------------------------------------------------------------------------------
def mfcc_model(spec, rate, options, rate_const=True):
    return custom_model("Mfcc", [spec, np.asarray(rate, I32)], [((1, 1, 1), F32)], options,
                        const=(1,) if rate_const else ())


def mfcc_options(upper=4000, lower=20, channels=40, coefficients=13):
    return dict(upper_frequency_limit=upper, lower_frequency_limit=lower,
                filterbank_channel_count=channels, dct_coefficient_count=coefficients)


def power_spectrum(rng, c, f, bins):
    x = (rng.standard_normal((c, f, bins)) ** 2 * rng.uniform(0.01, 1e4)).astype(F32)
    x[..., ::5] *= 1e-9  # some bins far below the others
    return x


MFCC_CASES = [  # bins, sample rate, upper, lower, channels, coefficients
    (257, 16000, 4000, 20, 40, 13),  # the keyword-spotting setting
    (257, 16000, 4000.0, 20.0, 40, 13),  # floats, as TF's converter writes them
    (129, 8000, 3999.9, 300.7, 20, 20),  # AsInt64 truncates the limits
    (513, 44100, 22050, 0, 80, 30),
    (65, 16000, 8000, 0, 23, 1),  # upper at Nyquist: the last bin is used
    (65, 16000, 8200, 20, 20, 13),  # upper past the last bin: zeros
    (300, 22050, 11000, 100, 1, 1),
    (64, 16000, 7000, 50, 200, 13),  # more channels than bins: empty bands
    (2, 1000, 400, 0, 3, 2),
    (200, 16000, 30, 25, 10, 5),  # no bin in range: every band at the floor
    (257, 1, 1, 0, 4, 4),  # sample rate 1
]


@pytest.mark.parametrize("case", MFCC_CASES, ids=str)
def test_mfcc_is_bit_exact(case):
    bins, rate, up, lo, nch, ncoef = case
    rng = np.random.default_rng(bins + nch)
    spec = power_spectrum(rng, 2, 7, bins)
    content = mfcc_model(spec, [rate], mfcc_options(up, lo, nch, ncoef))
    (got,), (exp,) = both(content, [spec])
    assert got.shape == exp.shape == (2, 7, ncoef)
    np.testing.assert_array_equal(got, exp)


def test_mfcc_fed_sample_rate_and_odd_values():
    rng = np.random.default_rng(5)
    spec = power_spectrum(rng, 1, 5, 129)
    spec[0, 0, 10] = np.inf
    spec[0, 1, 20] = np.nan
    spec[0, 2, 30] = -1.0  # sqrt of a negative: NaN, as LiteRT
    spec[0, 3] = 0.0  # all bands floored at 1e-12
    content = mfcc_model(spec, [1], mfcc_options(3000, 40, 26, 12), rate_const=False)
    ours, ref = Interpreter(model_content=content), litert_interpreter(content)
    for rate in (8000, 11025, 8000, 16000):
        outs = [run(it, [spec, np.array([rate], I32)])[0] for it in (ours, ref)]
        np.testing.assert_array_equal(*outs)


def test_mfcc_after_spectrogram_as_tf_converts_it():
    """The two-op graph TF's converter emits for tf.raw_ops.AudioSpectrogram + Mfcc (with
    allow_custom_ops): a scalar int32 sample-rate constant and float frequency limits."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    x = sg.new_tensor("x", (8000, 1), F32)
    spec = sg.new_tensor("spec", (1, 48, 257), F32)
    rate = sg.new_tensor("rate", (), I32, data=np.array(16000, I32))
    out = sg.new_tensor("mfcc", (1, 48, 13), F32)
    sg.inputs.append(x)
    sg.outputs.extend([spec, out])
    for name, ins, outs, opts in [
            ("AudioSpectrogram", [x], [spec], dict(magnitude_squared=True, stride=160,
                                                   window_size=480)),
            ("Mfcc", [spec, rate], [out], mfcc_options(4000.0, 20.0, 40, 13))]:
        sg.add_operator(Operator(m.opcode(None, name), ins, outs, custom_options=np.frombuffer(
            flexbuffers.Dumps(opts), np.uint8)))
    content = m.to_bytes()
    t = np.arange(8000)[:, None]
    audio = (0.3 * np.sin(t * 0.11) + 0.05 * np.random.default_rng(6).standard_normal(
        (8000, 1))).astype(F32)
    got, exp = both(content, [audio])
    for g, e in zip(got, exp):
        np.testing.assert_array_equal(g, e)


def test_tf_converter_emits_the_custom_ops():
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([4000, 1], tf.float32)])
    def f(x):
        s = tf.raw_ops.AudioSpectrogram(input=x, window_size=256, stride=128,
                                        magnitude_squared=True)
        return tf.raw_ops.Mfcc(spectrogram=s, sample_rate=8000, upper_frequency_limit=3800.0,
                               lower_frequency_limit=40.0, filterbank_channel_count=30,
                               dct_coefficient_count=12)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.allow_custom_ops = True
    content = conv.convert()
    assert [op.name for op in wb.load(content).main.operators] == ["AudioSpectrogram", "Mfcc"]
    x = np.random.default_rng(7).standard_normal((4000, 1)).astype(F32)
    (got,), (exp,) = both(content, [x])
    np.testing.assert_array_equal(got, exp)
    np.testing.assert_allclose(got, f(x).numpy(), rtol=0, atol=1e-4 * float(np.ptp(exp)))


S = np.abs(np.random.default_rng(8).standard_normal((1, 3, 65))).astype(F32)


@pytest.mark.parametrize("options,rate", [
    (mfcc_options(channels=0), 16000),
    (mfcc_options(channels=-4), 16000),
    (mfcc_options(coefficients=21, channels=20), 16000),  # more coefficients than channels
    (mfcc_options(lower=-1), 16000),
    (mfcc_options(upper=20, lower=20), 16000),
    (mfcc_options(upper=20.9, lower=20), 16000),  # truncated to 20: upper == lower
    (mfcc_options(), 0),
    (mfcc_options(), -8000),
    (dict(dct_coefficient_count=13), 16000),  # missing keys are 0
], ids=str)
def test_mfcc_fails_at_invoke_as_litert(options, rate):
    content = mfcc_model(S, [rate], options)
    assert_refused_like_litert(content, [S], invoke=True, match="LiteRT's Mfcc fails")


def test_mfcc_fed_bad_rate_is_an_input_error():
    content = mfcc_model(S, [1], mfcc_options(), rate_const=False)
    assert_refused_like_litert(content, [S, np.array([0], I32)], invoke=True,
                               error=wb.errors.InputError, match="sample rate 0")


def test_mfcc_one_bin_fails_at_invoke():
    content = mfcc_model(S[..., :1], [16000], mfcc_options())
    assert_refused_like_litert(content, [S[..., :1]], invoke=True, match="1 bins")


@pytest.mark.parametrize("options,spec", [
    (mfcc_options(channels=0), S[:, :0]),  # no frame: LiteRT never checks
    (mfcc_options(coefficients=0), S),  # no coefficient: empty output, no failure
    ({}, S),
], ids=["no-frames", "no-coefficients", "empty-map"])
def test_mfcc_empty_outputs_do_not_fail(options, spec):
    (got,), (exp,) = both(mfcc_model(spec, [16000], options), [spec])
    assert got.shape == exp.shape and got.size == 0


@pytest.mark.parametrize("content,match", [
    (mfcc_model(S, [16000], mfcc_options(coefficients=-3)), "negative"),
    (mfcc_model(S[0], [16000], mfcc_options()), "shape"),
    (mfcc_model(S[None], [16000], mfcc_options()), "shape"),
    (mfcc_model(S, [16000, 1], mfcc_options()), "one element"),
    (custom_model("Mfcc", [S, np.array([16000], np.int64)], [((1,), F32)], mfcc_options(),
                  const=(1,)), "int32"),
    (custom_model("Mfcc", [S, np.array([16000.0], F32)], [((1,), F32)], mfcc_options(),
                  const=(1,)), "int32"),
    (custom_model("Mfcc", [S, np.array([16000], I32)], [((1,), np.float16)], mfcc_options(),
                  const=(1,)), "output must be float32"),
    (custom_model("Mfcc", [S], [((1,), F32)], mfcc_options()), "2 inputs"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_mfcc_refusals(content, match):
    assert_refused_like_litert(content, [S], match=match)


def test_mfcc_many_channels_in_several_passes():
    """20000 bands: the rows are processed in passes of 52 (bounded work arrays)."""
    spec = power_spectrum(np.random.default_rng(14), 2, 60, 65)
    (got,), (exp,) = both(mfcc_model(spec, [16000], mfcc_options(8000, 0, 20000, 13)), [spec])
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("channels,coefficients,match", [
    (2**20, 13, "filterbank_channel_count"), (2**16, 2**10, "DCT")])
def test_mfcc_absurd_tables_refused(channels, coefficients, match):
    content = mfcc_model(S, [16000], mfcc_options(channels=channels,
                                                  coefficients=coefficients))
    with pytest.raises(wb.ModelError, match=match):
        Interpreter(model_content=content).allocate_tensors()


# -- NumericVerify -----------------------------------------------------------------------------
def verify_model(x, ref, options, scale=0.05, zp=2, axis=0, const=(), out_dtype=F32):
    quant = None
    if scale is not None:
        quant = QuantParams(scale=np.atleast_1d(np.asarray(scale, F32)),
                            zero_point=np.atleast_1d(np.asarray(zp, np.int64)),
                            quantized_dimension=axis)
    return custom_model("NumericVerify", [x, ref], [(x.shape, out_dtype)], options,
                        const=const, quant=quant)


def quantized(rng, dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", [I8, U8, I16])
@pytest.mark.parametrize("n", [1, 7, 8, 13, 100, 1003])
def test_numeric_verify_differences_bit_exact(dtype, n):
    rng = np.random.default_rng(n)
    x = quantized(rng, dtype, (n,))
    ref = rng.standard_normal(n).astype(F32)
    zp = 131 if dtype == U8 else -3
    content = verify_model(x, ref, dict(tolerance=0.01, log_if_failed=True), 0.0123456, zp)
    (got,), (exp,) = both(content, [x, ref])
    np.testing.assert_array_equal(got, exp)


def test_numeric_verify_per_channel_float16_and_unquantized():
    rng = np.random.default_rng(9)
    x = quantized(rng, I8, (3, 5))
    ref = rng.standard_normal((3, 5)).astype(F32)
    opts = dict(tolerance=0.5, log_if_failed=False)
    cases = [
        (verify_model(x, ref, opts, [0.1, 0.02, 0.3], [1, -2, 0], axis=0), [x, ref]),
        (verify_model(x.astype(U8), ref, opts, [0.1] * 5, [4] * 5, axis=1),
         [x.astype(U8), ref]),
        (verify_model(x, ref, opts, None), [x, ref]),  # no quantization: scale 0
        (verify_model(ref.astype(np.float16), ref, opts, None), [ref.astype(np.float16), ref]),
        (verify_model(x[0], ref, opts), [x[0], ref]),  # a longer reference: its first values
        (verify_model(x.reshape(15), ref, opts), [x.reshape(15), ref]),
    ]
    for content, feeds in cases:
        (got,), (exp,) = both(content, feeds)
        np.testing.assert_array_equal(got, exp)


def close_pair(rng):
    x = quantized(rng, I8, (2, 6))
    ref = ((x.astype(np.float32) - 2) * F32(0.05) + rng.uniform(-0.02, 0.02, x.shape)
           ).astype(F32)  # within 0.4 quantization steps
    far = ref.copy()
    far[1, 3] += 0.3
    return x, ref, far


@pytest.mark.parametrize("options,fails", [
    (dict(tolerance=0.5, log_if_failed=True), True),
    (dict(tolerance=1, log_if_failed=1), True),  # ints read as float / bool
    (dict(tolerance=7.0, log_if_failed=True), False),  # 7 steps allowed
    (dict(tolerance=0.5, log_if_failed=False), False),  # only statistics logged
    (dict(tolerance=0.05, log_if_failed=True), False),  # below 0.1: only statistics
    ({}, False),
], ids=str)
def test_numeric_verify_tolerance(options, fails):
    x, ref, far = close_pair(np.random.default_rng(10))
    content = verify_model(x, far, options)
    if fails:
        assert_refused_like_litert(content, [x, far], invoke=True, error=wb.errors.InputError,
                                   match="mismatch at element 9")
        (got,), (exp,) = both(content, [x, ref])  # within tolerance: passes
    else:
        (got,), (exp,) = both(content, [x, far])
    np.testing.assert_array_equal(got, exp)


def test_numeric_verify_scale_zero_fails_any_difference():
    """Per-channel and float16 inputs have no per-tensor scale: LiteRT's bound is 0."""
    x, ref, _ = close_pair(np.random.default_rng(11))
    opts = dict(tolerance=0.5, log_if_failed=True)
    content = verify_model(x, ref, opts, [0.05, 0.05], [2, 2], axis=0)
    assert_refused_like_litert(content, [x, ref], invoke=True, error=wb.errors.InputError)
    h = ref.astype(np.float16)
    content = verify_model(h, ref, opts, None)
    assert_refused_like_litert(content, [h, ref], invoke=True, error=wb.errors.InputError)
    exact = h.astype(F32)
    (got,), (exp,) = both(content, [h, exact])
    assert not got.any() and not exp.any()


def test_numeric_verify_constant_input_checked_once():
    """LiteRT marks a constant input verified before checking it: the second invoke passes
    and keeps the first output even when the reference changed."""
    x, ref, far = close_pair(np.random.default_rng(12))
    content = verify_model(x, far, dict(tolerance=0.5, log_if_failed=True), const=(0,))
    outs = []
    for it in (Interpreter(model_content=content), litert_interpreter(content)):
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], far)
        with pytest.raises((RuntimeError, wb.errors.InputError)):
            it.invoke()
        it.set_tensor(it.get_input_details()[0]["index"], ref)
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    np.testing.assert_array_equal(outs[0][0], outs[1][0])  # the row LiteRT wrote before failing
    np.testing.assert_array_equal(outs[0].ravel()[:10], outs[1].ravel()[:10])


def test_numeric_verify_per_channel_int16_fails_at_invoke():
    x = quantized(np.random.default_rng(13), I16, (2, 3))
    ref = np.zeros((2, 3), F32)
    content = verify_model(x, ref, dict(tolerance=0.0), [0.1, 0.2], [0, 0], axis=0)
    assert_refused_like_litert(content, [x, ref], invoke=True, match="per-channel")


X8 = np.zeros((2, 3), I8)
R = np.zeros((2, 3), F32)


@pytest.mark.parametrize("content,match", [
    (verify_model(R, R, dict(tolerance=0.5), None), "uint8, int8, int16 or float16"),
    (verify_model(X8.astype(I32), R, dict(tolerance=0.5)), "uint8, int8, int16 or float16"),
    (verify_model(X8.astype(np.uint16), R, dict(tolerance=0.5)), "uint8, int8"),
    (verify_model(X8, R.astype(np.float16), dict(tolerance=0.5)), "reference must be float32"),
    (custom_model("NumericVerify", [X8, R], [], dict(tolerance=0.5)), "1 output"),
    (custom_model("NumericVerify", [X8, R], [((2, 3), F32)] * 2, dict(tolerance=0.5)),
     "1 output"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_numeric_verify_refusals(content, match):
    assert_refused_like_litert(content, [X8, R], match=match)


@pytest.mark.parametrize("content,match", [
    (verify_model(X8, R[:1], dict(tolerance=0.5)), "fewer elements"),  # LiteRT reads past it
    (verify_model(X8, R, b"\x01\x02\x03"), "FlexBuffer"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_numeric_verify_malformed_refused(content, match):
    """Files LiteRT runs with unchecked reads: refused."""
    with pytest.raises(wb.ModelError, match=match):
        Interpreter(model_content=content).allocate_tensors()


def test_numeric_verify_output_retyped_to_float32():
    """TF's quantization debugger stores the output with the input's type: LiteRT's Prepare
    makes it float32."""
    x, ref, _ = close_pair(np.random.default_rng(15))
    content = verify_model(x, ref, dict(tolerance=5.0), out_dtype=I8)
    ours, lite = Interpreter(model_content=content), litert_interpreter(content)
    (got,), (exp,) = run(ours, [x, ref]), run(lite, [x, ref])
    assert got.dtype == exp.dtype == F32
    np.testing.assert_array_equal(got, exp)
    assert ours.get_output_details()[0]["dtype"] is lite.get_output_details()[0]["dtype"]


def test_tf_quantization_debugger_model():
    """TF's QuantizationDebugger inserts NumericVerify after each quantized layer output."""
    tf = pytest.importorskip("tensorflow")
    from tests.litert_oracle import litert_values

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8,), batch_size=1)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(4)(tf.keras.layers.Dense(16)(inp)))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def data():
        for k in range(4):
            yield [np.random.default_rng(k).random((1, 8)).astype(F32)]

    conv.representative_dataset = data
    debugger = tf.lite.experimental.QuantizationDebugger(converter=conv, debug_dataset=data)
    content = debugger.quant_model
    assert [op.name for op in wb.load(content).main.operators].count("NumericVerify") == 2
    x = next(data())[0]
    lite = litert_interpreter(content, preserve_all=True)
    run(lite, [x])
    values = litert_values(lite, content)
    ours = Interpreter(model_content=content)
    ours.allocate_tensors()
    plan = ours._plans[0]
    checked = 0
    for node, kernel in zip(plan.nodes, plan.kernels):
        if node.op.name == "NumericVerify":  # fed LiteRT's inputs: bit-identical
            ins = [t.data if t.data is not None else values[t.index] for t in node.inputs]
            np.testing.assert_array_equal(kernel.eval(ins)[0], values[node.outputs[0].index])
            checked += 1
    assert checked == 2


# -- no custom options: LiteRT crashes -----------------------------------------------------
NO_OPTION_MODELS = {
    "AudioSpectrogram": custom_model("AudioSpectrogram", [X100], [((1,), F32)], NO_OPTIONS),
    "Mfcc": mfcc_model(S, [16000], NO_OPTIONS),
    "NumericVerify": verify_model(X8, R, NO_OPTIONS),
}

_CHILD = """
import sys
from tests.litert_oracle import litert_interpreter
it = litert_interpreter(open(sys.argv[1], "rb").read())
it.allocate_tensors()
"""


def test_missing_custom_options_refused_where_litert_crashes(tmp_path):
    procs = []
    for name, content in NO_OPTION_MODELS.items():
        with pytest.raises(wb.ModelError, match="no custom options"):
            Interpreter(model_content=content).allocate_tensors()
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(content)
        procs.append(subprocess.Popen([sys.executable, "-c", _CHILD, str(path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    codes = [p.wait(timeout=60) for p in procs]
    assert all(c < 0 for c in codes), codes  # killed by a signal (SIGSEGV)
