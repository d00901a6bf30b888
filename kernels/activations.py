"""Float32 activations: RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1, LOGISTIC, TANH, HARD_SWISH,
LEAKY_RELU, ELU, GELU (exact or tanh approximation, per ``GeluOptions.approximate``)."""

from __future__ import annotations

import math

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._float_only import require_float
from .registry import register


class _Unary(Kernel):
    def prepare(self):
        require_float(self.node)
        return [self.node.inputs[0].shape]


@register(Op.RELU)
class Relu(_Unary):
    def eval(self, inputs):
        return [np.maximum(inputs[0], 0)]


@register(Op.RELU6)
class Relu6(_Unary):
    def eval(self, inputs):
        return [np.clip(inputs[0], 0, 6)]


@register(Op.RELU_N1_TO_1)
class ReluN1To1(_Unary):
    def eval(self, inputs):
        return [np.clip(inputs[0], -1, 1)]


@register(Op.RELU_0_TO_1)
class Relu0To1(_Unary):
    def eval(self, inputs):
        return [np.clip(inputs[0], 0, 1)]


@register(Op.LOGISTIC)
class Logistic(_Unary):
    def eval(self, inputs):
        x = inputs[0]
        with np.errstate(over="ignore"):
            return [(1.0 / (1.0 + np.exp(-x))).astype(np.float32)]


@register(Op.TANH)
class Tanh(_Unary):
    def eval(self, inputs):
        return [np.tanh(inputs[0])]


@register(Op.HARD_SWISH)
class HardSwish(_Unary):
    def eval(self, inputs):
        x = inputs[0]
        return [(x * np.clip(x + 3, 0, 6) / 6).astype(np.float32)]


@register(Op.LEAKY_RELU)
class LeakyRelu(_Unary):
    def eval(self, inputs):
        x = inputs[0]
        alpha = np.float32(self.node.options.alpha if self.node.options else 0.2)
        return [np.where(x >= 0, x, x * alpha).astype(np.float32)]


@register(Op.ELU)
class Elu(_Unary):
    def eval(self, inputs):
        x = inputs[0]
        return [np.where(x >= 0, x, np.expm1(np.minimum(x, 0))).astype(np.float32)]


@register(Op.GELU)
class Gelu(_Unary):
    def eval(self, inputs):
        x = inputs[0].astype(np.float64)
        if self.node.options is not None and self.node.options.approximate:
            y = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        else:
            from math import erf

            y = 0.5 * x * (1 + np.vectorize(erf, otypes=[np.float64])(x / math.sqrt(2)))
        return [y.astype(np.float32)]
