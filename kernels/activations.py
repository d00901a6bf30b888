"""Activations on float32 (and float16 where LiteRT has a half kernel: TANH computed in
float32; LOGISTIC and GELU in half arithmetic as LiteRT, bit-identical): RELU, RELU6,
RELU_N1_TO_1, RELU_0_TO_1, LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, ELU, GELU (exact erf form,
or the tanh approximation when ``GeluOptions.approximate``); quantized int8/uint8/int16
wherever LiteRT has a kernel, bit-exact.

Quantized maths (in ``_qelementwise``):

* RELU, RELU6 (int8/uint8/int16), RELU_N1_TO_1, RELU_0_TO_1 (int8/uint8): requantize and clamp;
* LOGISTIC, TANH, GELU (int8/uint8), ELU (int8): 256-entry tables computed in float32 with the C
  library's functions; GELU int16: LiteRT's 513-entry interpolated table; LOGISTIC/TANH int16:
  LiteRT's interpolated sigmoid table, or for power-of-two input scales (2**-12, and 2**-11 for
  TANH) gemmlowp's 16-bit fixed-point functions;
* HARD_SWISH (int8/uint8): TFLite's 16-bit fixed-point formulation;
* LEAKY_RELU (int8/uint8/int16): two requantizations.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from workbench.ir.ops import Op

from . import _qelementwise as q
from ._elementwise import UnaryKernel
from .registry import register

F32_F16 = (np.float32, np.float16)
Q8 = (np.int8, np.uint8)
Q8_16 = (np.int8, np.uint8, np.int16)


class _ReluX(UnaryKernel):
    quantized = Q8
    bounds = (0.0, math.inf)
    int16_ok = False

    def prepare_quantized(self, x, out):
        return q.prepare_relu(self.node, x, out, *self.bounds, self.int16_ok)


@register(Op.RELU)
class Relu(_ReluX):
    quantized = Q8_16
    int16_ok = True

    @staticmethod
    def fn(x):
        return np.maximum(x, 0)


@register(Op.RELU6)
class Relu6(_ReluX):
    quantized = Q8_16
    bounds = (0.0, 6.0)
    int16_ok = True

    @staticmethod
    def fn(x):
        return np.clip(x, 0, 6)


@register(Op.RELU_N1_TO_1)
class ReluN1To1(_ReluX):
    bounds = (-1.0, 1.0)

    @staticmethod
    def fn(x):
        return np.clip(x, -1, 1)


@register(Op.RELU_0_TO_1)
class Relu0To1(_ReluX):
    bounds = (0.0, 1.0)

    @staticmethod
    def fn(x):
        return np.clip(x, 0, 1)


def _sigmoid_f32(v):
    return np.float32(1) / (np.float32(1) + q.cmath("expf", -v))


def _all_halves() -> np.ndarray:
    """Every float16 value, indexed by its bit pattern (tables below are read with
    ``x.view(np.uint16)``)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.float16)


def _read_only(table: np.ndarray) -> np.ndarray:
    table.flags.writeable = False
    return table


@functools.cache
def _logistic_half_table() -> np.ndarray:
    """LOGISTIC of all 65536 float16 values as LiteRT's half kernel (Eigen's logistic) computes
    it: ``e / (1 + e)`` with ``e = exp(x)``, every operation rounded to half, and 1 where ``e``
    overflows. Bit-identical with LiteRT on every half value (a test checks all of them); the
    float32 formula rounded once differs by 1-2 half steps on ~14% of them."""
    h = np.float16
    with np.errstate(all="ignore"):
        e = q.cmath("expf", _all_halves().astype(np.float32)).astype(h)
        y = (e / (h(1) + e).astype(h)).astype(h)
    y[np.isinf(e)] = h(1)
    return _read_only(y)


@register(Op.LOGISTIC)
class Logistic(UnaryKernel):
    dtypes = F32_F16
    quantized = Q8_16

    @staticmethod
    def fn(x):
        return np.float32(1) / (np.float32(1) + np.exp(-x))

    def eval(self, inputs):
        if self.qfn is None and inputs[0].dtype == np.float16:  # every half value, looked up
            return [_logistic_half_table()[inputs[0].view(np.uint16)]]
        return super().eval(inputs)

    def prepare_quantized(self, x, out):
        if x.dtype == np.int16:
            return q.prepare_logistic_int16(self.node, x, out)
        if q.qparams(out)[0] != 1.0 / 256:
            raise self.node.fail("8-bit LOGISTIC output scale must be 1/256")
        return q.prepare_lut8(self.node, x, out, _sigmoid_f32)


@register(Op.TANH)
class Tanh(UnaryKernel):
    dtypes = F32_F16
    quantized = Q8_16
    fn = staticmethod(np.tanh)

    def prepare_quantized(self, x, out):
        if x.dtype == np.int16:
            return q.prepare_tanh_int16(self.node, x, out)
        return q.prepare_lut8(self.node, x, out, lambda v: q.cmath("tanhf", v))


@register(Op.HARD_SWISH)
class HardSwish(UnaryKernel):
    quantized = Q8_16

    @staticmethod
    def fn(x):
        # LiteRT's order, in float32: (x * (1/6)) * relu6(x + 3); any other order differs in
        # the last bit, which a following int16 QUANTIZE turns into a whole step.
        # In place after two fresh arrays (0-d ones too: ``out=`` keeps them arrays).
        relu6 = np.add(x, np.float32(3), out=np.empty_like(x))
        np.clip(relu6, 0, 6, out=relu6)
        y = np.multiply(x, np.float32(1 / 6), out=np.empty_like(x))
        return np.multiply(y, relu6, out=y)

    def prepare_quantized(self, x, out):
        return q.prepare_hard_swish(self.node, x, out)


@register(Op.LEAKY_RELU)
class LeakyRelu(UnaryKernel):
    quantized = Q8_16

    def prepare(self):
        opts = self.node.options
        self.alpha = np.float32(opts.alpha if opts is not None else 0.2)
        return super().prepare()

    def prepare_quantized(self, x, out):
        return q.prepare_leaky_relu(self.node, x, out, float(self.alpha))

    def eval(self, inputs):
        if self.qfn is not None:
            return [self.qfn(inputs[0])]
        x = inputs[0]
        with np.errstate(over="ignore"):
            return [np.where(x > 0, x, x * self.alpha).astype(np.float32)]


@register(Op.ELU)
class Elu(UnaryKernel):
    quantized = Q8_16

    @staticmethod
    def fn(x):
        return np.where(x < 0, np.expm1(np.minimum(x, 0)), x)

    def prepare_quantized(self, x, out):
        if x.dtype != np.int8:
            raise q.unsupported(self.node, f"LiteRT has no {x.dtype} ELU kernel (int8 only)")
        return q.prepare_lut8(self.node, x, out, lambda v: np.where(
            v < np.float32(0), q.cmath("expm1f", v), v).astype(np.float32))


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorized error function in float64 (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7,
    ample for float32 results)."""
    x = np.asarray(x, dtype=np.float64)
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                        + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


@functools.cache
def _gelu_half_table(approximate: bool) -> np.ndarray:
    """GELU of all 65536 float16 values, as LiteRT's half kernel computes it: every operation
    rounded to half, the transcendental in the C library's float (``erfcf`` / ``tanhf``):
    ``0.5x * erfc(-x * sqrt(1/2))``, or ``0.5x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``
    (products and sums left to right). Bit-identical with LiteRT on every half value (a test
    checks all of them)."""
    h = np.float16
    x = _all_halves()
    with np.errstate(all="ignore"):
        half_x = (h(0.5) * x).astype(h)
        if approximate:
            t = ((x * x).astype(h) * x).astype(h)
            t = (x + (t * h(0.044715)).astype(h)).astype(h)
            t = (t * h(math.sqrt(2 / math.pi))).astype(h)
            t = (h(1) + q.cmath("tanhf", t.astype(np.float32)).astype(h)).astype(h)
        else:
            t = (x * h(math.sqrt(0.5))).astype(h)
            t = q.cmath("erfcf", -t.astype(np.float32)).astype(h)
        return _read_only((half_x * t).astype(h))


@register(Op.GELU)
class Gelu(UnaryKernel):
    dtypes = F32_F16
    quantized = Q8_16

    def prepare(self):
        opts = self.node.options
        self.approximate = bool(opts.approximate) if opts is not None else False
        return super().prepare()

    def prepare_quantized(self, x, out):
        if x.dtype == np.int16:
            return q.prepare_lut16(self.node, x, out, q.gelu_transform(self.approximate))
        return q.prepare_lut8(self.node, x, out, q.gelu_transform(self.approximate))

    def eval(self, inputs):
        if self.qfn is not None:
            return [self.qfn(inputs[0])]
        if inputs[0].dtype == np.float16:  # every half value's result, looked up
            return [_gelu_half_table(self.approximate)[inputs[0].view(np.uint16)]]
        x = inputs[0].astype(np.float64)
        with np.errstate(all="ignore"):  # +-inf inputs
            if self.approximate:
                y = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
            else:
                y = 0.5 * x * (1 + erf(x / math.sqrt(2)))
        return [y.astype(self.node.outputs[0].dtype)]
