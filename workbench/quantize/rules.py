"""Per-operator quantization rules: what LiteRT's integer kernels require of each op.

Each :class:`OpRule` says which inputs are activations, which are weights (and on which axis
they are quantized per channel), which is a bias, how the output's parameters are chosen, and
whether LiteRT has a 16x8 kernel. The facts come from LiteRT's kernels and the quantization
spec (https://ai.google.dev/edge/litert/models/quantization_spec) and were checked against the
files TensorFlow 2.21's converter writes (tests/test_quantizer.py compares op versions with it).

Output rules:

``calibrated``
    The kernel requantizes, so the output gets its own calibrated range.
``same``
    The kernel moves or selects values without requantizing (pooling, reshapes, gathers,
    resizes, pads): the output must carry its (first activation) input's parameters.
``same_inputs``
    Every activation input must carry the output's parameters (CONCATENATION, MAXIMUM/MINIMUM,
    PACK: the kernels copy or compare raw values). The quantizer gives a calibrated producer
    that feeds only this op the output's range (as TF's converter does); other inputs get a
    requantizing QUANTIZE.
``fixed``
    The kernel's output scale and zero point are fixed by the op (SOFTMAX, LOGISTIC, TANH,
    LOG_SOFTMAX).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.ir.graph import Operator
from workbench.ir.ops import BuiltinOperator as B
from workbench.ir.ops import TensorType as T


@dataclass(frozen=True)
class OpRule:
    """How one op type is quantized (see the module docstring)."""

    #: Input indices holding float activations (or constants treated like activations).
    acts: tuple[int, ...] = (0,)
    #: Weight input index -> per-channel axis (symmetric int8 weights; must be constant).
    weights: dict[int, int] = field(default_factory=dict)
    #: Bias input index (int32 in int8 mode, int64 in 16x8; scale = s_act * s_weight).
    bias: int | None = None
    output: str = "calibrated"
    #: Fixed output ``(scale, zero_point)`` for int8 and int16, when ``output == "fixed"``.
    fixed: dict[int, tuple[float, int]] = field(default_factory=dict)
    #: LiteRT has a 16x8 (int16 activation) kernel for this op.
    int16: bool = True


_CONV = OpRule(acts=(0,), weights={1: 0}, bias=2)
_SAME = OpRule(output="same")
_SAME8 = OpRule(output="same", int16=False)
_CAL = OpRule()
_CAL8 = OpRule(int16=False)
_BIN = OpRule(acts=(0, 1))

RULES: dict[int, OpRule] = {
    B.CONV_2D: _CONV,
    B.DEPTHWISE_CONV_2D: OpRule(acts=(0,), weights={1: 3}, bias=2),
    B.FULLY_CONNECTED: _CONV,
    B.TRANSPOSE_CONV: OpRule(acts=(2,), weights={1: 0}, bias=3),
    B.BATCH_MATMUL: _BIN,
    B.ADD: _BIN,
    B.SUB: _BIN,
    B.MUL: _BIN,
    B.SQUARED_DIFFERENCE: OpRule(acts=(0, 1), int16=False),
    B.MEAN: _CAL,
    B.SUM: _CAL,
    B.RSQRT: _CAL,
    B.RELU: _CAL,
    B.RELU6: _CAL,
    B.RELU_N1_TO_1: _CAL8,
    B.LEAKY_RELU: _CAL,
    B.HARD_SWISH: _CAL8,
    B.GELU: _CAL,
    B.ELU: _CAL8,
    B.EXP: _CAL,
    B.LOG: _CAL,
    B.ABS: _CAL,
    B.REDUCE_PROD: _CAL,
    B.PRELU: OpRule(acts=(0, 1), int16=False),
    # LiteRT's int8 and int16 concat kernels copy bytes: every input must share the output's
    # parameters (checked in its Prepare).
    B.CONCATENATION: OpRule(acts=None, output="same_inputs"),
    B.MAXIMUM: OpRule(acts=(0, 1), output="same_inputs"),
    B.MINIMUM: OpRule(acts=(0, 1), output="same_inputs"),
    B.PACK: OpRule(acts=None, output="same_inputs"),
    B.LOGISTIC: OpRule(output="fixed", fixed={T.INT8: (1 / 256, -128), T.INT16: (1 / 32768, 0)}),
    B.TANH: OpRule(output="fixed", fixed={T.INT8: (1 / 128, 0), T.INT16: (1 / 32768, 0)}),
    B.SOFTMAX: OpRule(output="fixed", fixed={T.INT8: (1 / 256, -128), T.INT16: (1 / 32768, 0)}),
    B.LOG_SOFTMAX: OpRule(output="fixed", fixed={T.INT8: (16 / 256, 127)}, int16=False),
    B.MAX_POOL_2D: _SAME,
    B.AVERAGE_POOL_2D: _SAME,
    B.REDUCE_MAX: _SAME,
    B.REDUCE_MIN: _SAME,
    B.RESHAPE: _SAME,
    B.SQUEEZE: _SAME,
    B.EXPAND_DIMS: _SAME,
    B.TRANSPOSE: _SAME,
    B.SLICE: _SAME,
    B.STRIDED_SLICE: _SAME,
    B.GATHER: _SAME,
    B.PAD: _SAME,
    B.MIRROR_PAD: _SAME,
    B.SPACE_TO_DEPTH: _SAME8,
    B.DEPTH_TO_SPACE: _SAME8,
    B.SPACE_TO_BATCH_ND: _SAME,
    B.BATCH_TO_SPACE_ND: _SAME,
    B.RESIZE_BILINEAR: _SAME,
    B.RESIZE_NEAREST_NEIGHBOR: _SAME,
    B.TILE: _SAME,
    B.BROADCAST_TO: _SAME,
    B.SPLIT: OpRule(acts=(1,), output="same"),
    B.SPLIT_V: _SAME,
    B.UNPACK: _SAME,
}

#: Dynamic-range (hybrid) kernels: op -> (weight input index, per-channel axis). LiteRT
#: quantizes the float activation at run time and multiplies by int8 weights.
HYBRID: dict[int, tuple[int, int]] = {
    B.CONV_2D: (1, 0),
    B.DEPTHWISE_CONV_2D: (1, 3),
    B.FULLY_CONNECTED: (1, 0),
    B.TRANSPOSE_CONV: (1, 0),
}

#: Weights that ``weight_only`` (and ``float16``) store compressed, dequantized at load.
WEIGHT_OPS: dict[int, tuple[int, int]] = {**HYBRID, B.BATCH_MATMUL: (1, -1), B.GATHER: (0, -1),
                                         B.EMBEDDING_LOOKUP: (1, -1)}


def acts_of(rule: OpRule, op: Operator) -> tuple[int, ...]:
    """The activation input indices of ``op`` under ``rule`` (``None`` means every input)."""
    if rule.acts is None:
        return tuple(range(len(op.inputs)))
    return rule.acts


def _t(op: Operator, i: int, outputs: bool = False) -> int:
    ts = op.outputs if outputs else op.inputs
    if i >= len(ts) or ts[i] is None:
        return -1
    return int(ts[i].dtype)


def op_version(op: Operator) -> int:
    """The op version LiteRT needs for ``op``'s tensor types, following the rules of TFLite's
    ``tools/versioning/op_version.cc`` for the ops this quantizer rewrites. Callers keep the
    larger of this and the float model's version, which already accounts for the non-type
    features (dilation, ``keep_num_dims``, ranks) that the same rules version.

    16x8 CONV_2D/FULLY_CONNECTED/TRANSPOSE_CONV declare ``quantized_bias_type`` (versions 8,
    11, 5). Where op_version.cc's int16 branches test a combination nobody emits (int16
    *weights* for DEPTHWISE_CONV_2D), the 16x8 op gets the int8 version, as TensorFlow 2.21's
    converter writes it.
    """
    c = op.code
    i0, i1, o0 = _t(op, 0), _t(op, 1), _t(op, 0, outputs=True)
    if c == B.QUANTIZE:
        if op.outputs[0].quantization is not None and op.outputs[0].quantization.per_channel:
            return 3
        return 2 if o0 == T.INT16 else 1
    if c == B.DEQUANTIZE:
        if i0 in (T.INT16, T.FLOAT16):
            return 3
        if i0 == T.INT8:
            q = op.inputs[0].quantization
            return 5 if q is not None and q.per_channel else 2
        return 1
    if c in (B.CONV_2D, B.FULLY_CONNECTED, B.TRANSPOSE_CONV) and i0 == T.INT16 and \
            getattr(op.options, "quantized_bias_type", 0):
        return {B.CONV_2D: 8, B.FULLY_CONNECTED: 11, B.TRANSPOSE_CONV: 5}[c]
    if c == B.CONV_2D:
        if i0 == T.FLOAT32 and i1 == T.INT8:
            return 5 if op.inputs[1].quantization.per_channel else 2
        return 3 if i0 in (T.INT8, T.INT16) else 1
    if c == B.DEPTHWISE_CONV_2D:
        if i0 == T.FLOAT32 and i1 == T.INT8:
            return 6 if op.inputs[1].quantization.per_channel else 4
        return 3 if i0 in (T.INT8, T.INT16) else 1
    if c == B.FULLY_CONNECTED:
        if i0 == T.FLOAT32 and i1 == T.INT8:
            if op.inputs[1].quantization.per_channel:
                return 12
            return 9 if op.options.asymmetric_quantize_inputs else 3
        return 4 if i0 in (T.INT8, T.INT16) else 1
    if c == B.TRANSPOSE_CONV:
        if len(op.inputs) == 4 and op.inputs[3] is not None:
            return 3
        return 2 if i1 == T.INT8 else 1
    if c == B.MUL:
        if i0 == T.INT16:
            return 4
        if i0 == T.INT8:
            s = [float(t.quantization.scale[0]) for t in (op.inputs[0], op.inputs[1],
                                                            op.outputs[0])]
            return 3 if s[0] * s[1] / s[2] >= 1.0 else 2
        return 1
    if c in (B.ADD, B.SUB):
        if i0 == T.INT16:
            return 3 if c == B.ADD else 5  # pot_scale_int16 = False (general scales)
        return 2 if i0 == T.INT8 else 1
    if c in (B.EXP, B.LOG, B.REDUCE_PROD):
        return 2 if i0 in (T.INT8, T.INT16) else 1
    if c == B.ABS:
        return {T.INT8: 2, T.INT16: 3}.get(i0, 1)
    if c == B.GATHER:
        if i0 == T.INT16:
            return 4
        return 2 if i0 == T.INT8 else 1
    if c in (B.MAX_POOL_2D, B.AVERAGE_POOL_2D, B.RESIZE_BILINEAR, B.RESIZE_NEAREST_NEIGHBOR,
             B.SPACE_TO_BATCH_ND, B.BATCH_TO_SPACE_ND, B.SOFTMAX, B.MEAN, B.MIRROR_PAD,
             B.REDUCE_MAX, B.REDUCE_MIN, B.RELU6, B.RSQRT, B.CONCATENATION, B.PAD,
             B.TRANSPOSE, B.SLICE, B.PACK, B.MAXIMUM, B.MINIMUM, B.TANH, B.LOGISTIC, B.RELU,
             B.SPLIT, B.UNPACK, B.LEAKY_RELU, B.BATCH_MATMUL, B.TILE, B.BROADCAST_TO,
             B.SUM, B.LOG_SOFTMAX, B.SQUARED_DIFFERENCE, B.SPACE_TO_DEPTH, B.DEPTH_TO_SPACE,
             B.STRIDED_SLICE, B.SPLIT_V, B.GELU):
        x = op.inputs[1] if c == B.SPLIT else op.inputs[0]
        xt = int(x.dtype) if x is not None else -1
        if xt == T.INT16:
            return _INT16_VERSION.get(c, 1)
        if xt == T.INT8:
            return _INT8_VERSION.get(c, 2)
        return 1
    return 1


#: op_version.cc's int8 versions that are not 2.
_INT8_VERSION = {B.TILE: 3, B.BROADCAST_TO: 3}
#: op_version.cc's int16 versions (ops absent here have no int16 branch there: version 1).
_INT16_VERSION = {
    B.MAX_POOL_2D: 3, B.AVERAGE_POOL_2D: 3, B.RESIZE_BILINEAR: 4, B.RESIZE_NEAREST_NEIGHBOR: 4,
    B.SPACE_TO_BATCH_ND: 4, B.BATCH_TO_SPACE_ND: 4, B.SOFTMAX: 3, B.MEAN: 3, B.MIRROR_PAD: 3,
    B.REDUCE_MAX: 3, B.REDUCE_MIN: 3, B.RELU6: 3, B.RSQRT: 3, B.CONCATENATION: 3, B.PAD: 3,
    B.TRANSPOSE: 5, B.SLICE: 4, B.PACK: 3, B.MAXIMUM: 4, B.MINIMUM: 4, B.TANH: 3,
    B.LOGISTIC: 3, B.RELU: 3, B.SPLIT: 4, B.UNPACK: 4, B.LEAKY_RELU: 2, B.BATCH_MATMUL: 3,
    B.BROADCAST_TO: 3,
}


def multiplier_limit(op: Operator) -> str | None:
    """Why LiteRT would abort preparing the quantized ``op`` (its Prepare computes some
    multipliers with ``QuantizeMultiplierSmallerThanOneExp``, a hard CHECK that the real
    multiplier is below 1), or None. ADD: ``2 * max(s1, s2) / (2**left_shift * s_out)`` with
    left_shift 20 (int8) or 15 (int16); SQUARED_DIFFERENCE: ``(2 * max(s1, s2))**2 /
    (2**14 * s_out)``; HARD_SWISH: ``(s_in / 128) / s_out``. (SUB computes
    the same ADD-like multiplier but LiteRT 2.3 does not abort on it: measured.) A tensor
    whose calibrated range is empty (scale 1) can break these."""
    def s(t) -> float:
        return float(t.quantization.scale[0])

    if op.code == B.ADD and len(op.inputs) == 2:
        shift = 15 if op.outputs[0].dtype == T.INT16 else 20
        m = 2 * max(s(op.inputs[0]), s(op.inputs[1])) / (2**shift * s(op.outputs[0]))
        if not m < 1:
            return (f"LiteRT needs 2 * max(input scales) < 2**{shift} * output scale "
                    f"(multiplier {m:.3g}; an input with an empty calibrated range?)")
    if op.code == B.SQUARED_DIFFERENCE and len(op.inputs) == 2:
        m = (2 * max(s(op.inputs[0]), s(op.inputs[1]))) ** 2 / (2**14 * s(op.outputs[0]))
        if not m < 1:
            return f"LiteRT needs (2 * max(input scales))**2 < 2**14 * output scale ({m:.3g})"
    if op.code == B.HARD_SWISH:
        m = s(op.inputs[0]) / 128 / s(op.outputs[0])
        if not m < 1:
            return f"LiteRT needs input scale / 128 < output scale (multiplier {m:.3g})"
    return None
