"""Activations on float32 (and float16 where LiteRT has a half kernel: LOGISTIC, TANH, GELU,
computed in float32): RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LOGISTIC, TANH, HARD_SWISH,
LEAKY_RELU, ELU, GELU (exact erf form, or the tanh approximation when
``GeluOptions.approximate``). Quantized int8/uint8/int16 inputs are not supported yet."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._elementwise import UnaryKernel
from .registry import register

F32_F16 = (np.float32, np.float16)


@register(Op.RELU)
class Relu(UnaryKernel):
    @staticmethod
    def fn(x):
        return np.maximum(x, 0)


@register(Op.RELU6)
class Relu6(UnaryKernel):
    @staticmethod
    def fn(x):
        return np.clip(x, 0, 6)


@register(Op.RELU_N1_TO_1)
class ReluN1To1(UnaryKernel):
    @staticmethod
    def fn(x):
        return np.clip(x, -1, 1)


@register(Op.RELU_0_TO_1)
class Relu0To1(UnaryKernel):
    @staticmethod
    def fn(x):
        return np.clip(x, 0, 1)


@register(Op.LOGISTIC)
class Logistic(UnaryKernel):
    dtypes = F32_F16

    @staticmethod
    def fn(x):
        return np.float32(1) / (np.float32(1) + np.exp(-x))


@register(Op.TANH)
class Tanh(UnaryKernel):
    dtypes = F32_F16
    fn = staticmethod(np.tanh)


@register(Op.HARD_SWISH)
class HardSwish(UnaryKernel):
    @staticmethod
    def fn(x):
        return x * (np.clip(x + 3, 0, 6) / 6)  # no overflow near FLT_MAX


@register(Op.LEAKY_RELU)
class LeakyRelu(UnaryKernel):
    def prepare(self):
        opts = self.node.options
        self.alpha = np.float32(opts.alpha if opts is not None else 0.2)
        return super().prepare()

    def eval(self, inputs):
        x = inputs[0]
        with np.errstate(over="ignore"):
            return [np.where(x > 0, x, x * self.alpha).astype(np.float32)]


@register(Op.ELU)
class Elu(UnaryKernel):
    @staticmethod
    def fn(x):
        return np.where(x < 0, np.expm1(np.minimum(x, 0)), x)


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


@register(Op.GELU)
class Gelu(UnaryKernel):
    dtypes = F32_F16

    def prepare(self):
        opts = self.node.options
        self.approximate = bool(opts.approximate) if opts is not None else False
        return super().prepare()

    def eval(self, inputs):
        x = inputs[0].astype(np.float64)
        with np.errstate(all="ignore"):  # +-inf inputs
            if self.approximate:
                y = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
            else:
                y = 0.5 * x * (1 + erf(x / math.sqrt(2)))
        return [y.astype(self.node.outputs[0].dtype)]
