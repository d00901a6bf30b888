"""SVDF (singular value decomposition filter, keyword-spotting models), float32 and hybrid (int8
weights, float input), following LiteRT's svdf kernels step by step:

1. the activation state ``[batch, num_filters * memory_size]`` (a variable, carried across
   invokes) is shifted left by one value as a flat buffer;
2. each filter's newest value, the last of its ``memory_size`` row, becomes
   ``weights_feature @ input`` (hybrid: the input quantized per batch row, symmetric or
   ``asymmetric_quantize_inputs``, as in the other hybrid kernels; an all-zero input gives
   zeros);
3. each filter's row is dotted with its ``weights_time`` row (hybrid: weights dequantized once);
4. the output ``[batch, num_filters / rank]`` is the bias plus the sum of each unit's ``rank``
   filters, then the fused activation.

Fully integer SVDF (int8 input, int16 state) is not supported yet."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._hybrid import float_activation
from ._recurrent import F32, Source, State, Weight, optional_vector
from .registry import register


@register(Op.SVDF)
class Svdf(Kernel):
    def prepare(self):
        node = self.node
        x = node.inputs[0]
        if x.dtype != F32:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.tensor.type_name} input (integer SVDF) is not "
                                     "supported yet; float32 and hybrid are")
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
