"""SVDF (singular value decomposition filter, keyword-spotting models): float32, hybrid (int8
weights, float input) and integer (int8 input, int16 state; see ``IntegerSvdf``), following
LiteRT's svdf kernels step by step:

1. the activation state ``[batch, num_filters * memory_size]`` (a variable, carried across
   invokes) is shifted left by one value as a flat buffer;
2. each filter's newest value, the last of its ``memory_size`` row, becomes
   ``weights_feature @ input`` (hybrid: the input quantized per batch row, symmetric or
   ``asymmetric_quantize_inputs``, as in the other hybrid kernels; an all-zero input gives
   zeros);
3. each filter's row is dotted with its ``weights_time`` row (hybrid: weights dequantized once);
4. the output ``[batch, num_filters / rank]`` is the bias plus the sum of each unit's ``rank``
   filters, then the fused activation.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import Op
from workbench.quantize.fixed_point import multiply_by_quantized_multiplier as mbqm
from workbench.quantize.fixed_point import quantize_multiplier

from ._common import Kernel
from ._hybrid import float_activation
from ._qconv import scalar_qparams
from ._qelementwise import wrap
from ._recurrent import F32, Source, State, Weight, optional_vector
from .registry import register


@register(Op.SVDF)
class Svdf(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 5 or len(node.outputs) != 1 or node.inputs[4] is None:
            raise node.fail("takes (input, weights_feature, weights_time, bias or -1, state) "
                            "and gives one output")
        x = node.inputs[0]
        if x.dtype == np.int8:
            self.integer = IntegerSvdf(node)
            return [(self.integer.batch, self.integer.units)]
        self.integer = None
        if x.dtype != F32:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.tensor.type_name} input (float32, or int8 for "
                                     "integer SVDF)")
        o = node.options
        self.feature = Weight(node, 1, "weights_feature")
        time = Weight(node, 2, "weights_time")
        if len(self.feature.shape) != 2 or len(time.shape) != 2:
            raise node.fail("weights_feature and weights_time must be 2-D")
        filters, n_in = self.feature.shape
        if time.shape[0] != filters:
            raise node.fail(f"weights_time {list(time.shape)} does not have {filters} rows")
        if len(x.shape) != 2 or x.shape[1] != n_in:
            raise node.fail(f"input {list(x.shape)} must be [batch, {n_in}]")
        rank = int(o.rank)
        if rank <= 0 or filters % rank:
            raise node.fail(f"rank {rank} does not divide the {filters} filters")
        self.batch, self.filters, self.memory = x.shape[0], filters, time.shape[1]
        self.units, self.rank = filters // rank, rank
        self.time = np.asarray(time.elementwise(), F32)
        self.bias = optional_vector(node, 3, self.units, "bias")
        self.state = State(node, 4, (self.batch, filters * self.memory))
        self.act = int(o.fused_activation_function)
        self.asym = bool(o.asymmetric_quantize_inputs)
        return [(self.batch, self.units)]

    def eval(self, inputs):
        if self.integer is not None:
            return self.integer(inputs)
        b, f, m = self.batch, self.filters, self.memory
        flat = self.state.read(inputs).reshape(-1).copy()
        flat[:-1] = flat[1:]  # the flat left shift; the last value stays
        state = flat.reshape(b, f, m)
        src = Source(np.asarray(inputs[0], F32), self.asym)
        state[:, :, m - 1] = self.feature.add_to(np.zeros((b, f), F32), src)
        scratch = np.einsum("bfm,fm->bf", state, self.time, dtype=F32)
        out = scratch.reshape(b, self.units, self.rank).sum(axis=-1, dtype=F32)
        if self.bias is not None:
            out = (out + self.bias).astype(F32)
        self.state.write(inputs, state.reshape(b, f * m))
        return [float_activation(out.astype(F32), self.act)]


class IntegerSvdf:
    """LiteRT's integer SVDF: int8 input and weights_feature, int16 weights_time and state,
    int32 bias, int8 output. The feature product ``sum wf * (x - zx)`` is requantized by
    ``sx * swf / ss`` (float32 products, as the C++ computes them) into the int16 state,
    saturating; the time product ``sum wt * state`` accumulates in int32 (wrapping as C++
    does), each unit sums its ``rank`` filters onto the bias, and the total is requantized by
    ``ss * swt / so`` plus the output zero point, clamped to int8. Both requantizations use
    TFLite's MultiplyByQuantizedMultiplier (double rounding)."""

    def __init__(self, node):
        x, wf, wt = node.inputs[0], node.inputs[1], node.inputs[2]
        bias = node.inputs[3]
        st, out = node.inputs[4], node.outputs[0]
        if wf.dtype != np.int8 or wt.dtype != np.int16 or \
                st.dtype != np.int16 or out.dtype != np.int8 or \
                (bias is not None and bias.dtype != np.int32):
            raise UnsupportedOpError(node.op.name, node.path,
                                     "integer SVDF takes int8 weights_feature, int16 "
                                     "weights_time and state, int32 bias and an int8 output")
        if wf.data is None or wt.data is None or (bias is not None and bias.data is None):
            raise UnsupportedOpError(node.op.name, node.path, "weights computed at run time")
        self.wf = np.asarray(wf.data, np.int64)
        self.wt = np.asarray(wt.data, np.int64)
        if self.wf.ndim != 2 or self.wt.ndim != 2 or self.wt.shape[0] != self.wf.shape[0]:
            raise node.fail(f"weights_feature {list(wf.shape)} / weights_time "
                            f"{list(wt.shape)} do not agree")
        filters, n_in = self.wf.shape
        if len(x.shape) != 2 or x.shape[1] != n_in:
            raise node.fail(f"input {list(x.shape)} must be [batch, {n_in}]")
        rank = int(node.options.rank)
        if rank <= 0 or filters % rank:
            raise node.fail(f"rank {rank} does not divide the {filters} filters")
        if int(node.options.fused_activation_function) != Act.RELU:
            raise UnsupportedOpError(node.op.name, node.path,
                                     "integer SVDF with an activation other than RELU (LiteRT's "
                                     "integer kernel requires RELU)")
        self.batch, self.filters, self.memory = x.shape[0], filters, self.wt.shape[1]
        self.units, self.rank = filters // rank, rank
        self.bias = None if bias is None else np.asarray(bias.data, np.int64).reshape(-1)
        if self.bias is not None and self.bias.size != self.units:
            raise node.fail(f"bias has {self.bias.size} values, expected {self.units}")
        sx, self.zx = scalar_qparams(node, x, "input")
        swf, _ = scalar_qparams(node, wf, "weights_feature")
        swt, _ = scalar_qparams(node, wt, "weights_time")
        ss, _ = scalar_qparams(node, st, "state")
        so, self.zo = scalar_qparams(node, out, "output")
        self.m1 = quantize_multiplier(float(F32(F32(sx) * F32(swf)) / F32(ss)))
        self.m2 = quantize_multiplier(float(F32(F32(ss) * F32(swt)) / F32(so)))
        self.state = State(node, 4, (self.batch, filters * self.memory), np.int16)

    def __call__(self, inputs):
        b, f, m = self.batch, self.filters, self.memory
        flat = self.state.read(inputs).astype(np.int64).reshape(-1)  # a copy
        flat[:-1] = flat[1:]
        state = flat.reshape(b, f, m)
        x = np.asarray(inputs[0], np.int64) - self.zx
        dot = wrap(x @ self.wf.T, 32)  # [b, f]: the C++ int32 accumulator
        state[:, :, m - 1] = np.clip(mbqm(dot, *self.m1), -32768, 32767)
        scratch = np.einsum("bfm,fm->bf", state, self.wt)
        total = scratch.reshape(b, self.units, self.rank).sum(axis=-1)
        if self.bias is not None:
            total = total + self.bias
        out = np.clip(mbqm(wrap(total, 32), *self.m2) + self.zo, -128, 127).astype(np.int8)
        self.state.write(inputs, state.reshape(b, f * m).astype(np.int16))
        return [out]
