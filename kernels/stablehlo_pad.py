"""STABLEHLO_PAD: XLA's Pad of a rank 1-8 tensor of any fixed-size type by the scalar
``padding_value`` input (one element, the input's type), with ``StablehloPadOptions``:
per dimension ``edge_padding_low``/``edge_padding_high`` (negative values crop) and
``interior_padding`` (non-negative, inserted between elements). Output dimension
``low + size + max(size - 1, 0) * interior + high``; as in LiteRT, when any of these is 0 or
negative the output has every dimension 0, option vectors shorter than the rank are padded
with zeros, and values are copied as stored (quantized tensors are not rescaled)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op, StablehloPadOptions

from ._common import Kernel, check_allocation
from ._shape import require_dense
from .registry import register

#: TFLITE_STABLEHLO_PAD_PARAMS_MAX_DIMENSION_COUNT: the longest option vector LiteRT parses
#: and the largest rank it pads.
MAX_RANK = 8
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


@register(Op.STABLEHLO_PAD)
class StablehloPad(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or len(node.outputs) != 1:
            raise node.fail(f"expects 2 inputs (operand, padding_value) and 1 output, got "
                            f"{len(node.inputs)} and {len(node.outputs)}")
        x, v = node.inputs
        out = node.outputs[0]
        if x is None or v is None or out is None:
            raise node.fail("an input or the output is missing")
        require_dense(node, 0, 1)
        if v.dtype != x.dtype:
            raise node.fail(f"padding_value type {v.tensor.type_name} differs from the input "
                            f"type {x.tensor.type_name}")
        nv = int(np.prod(v.shape, dtype=object))
        if nv != 1:
            raise node.fail(f"padding_value must hold one element, shape {list(v.shape)}")
        if out.dtype != x.dtype:
            raise node.fail(f"output type {out.tensor.type_name} differs from the input type "
                            f"{x.tensor.type_name}")
        opts = node.stored_options
        if not isinstance(opts, StablehloPadOptions):
            raise node.fail("StablehloPadOptions are missing (LiteRT cannot parse the op)")
        vecs = []
        for name in ("edge_padding_low", "edge_padding_high", "interior_padding"):
            vec = getattr(opts, name)
            if vec is None:
                raise node.fail(f"option {name} is missing (LiteRT cannot parse the op)")
            vec = [int(a) for a in np.asarray(vec).reshape(-1).tolist()]
            if len(vec) > MAX_RANK:
                raise node.fail(f"option {name} has {len(vec)} values, more than LiteRT's "
                                f"{MAX_RANK}")
            vecs.append(vec)
        shape = tuple(int(d) for d in x.shape)
        rank = len(shape)
        if not 1 <= rank <= MAX_RANK:
            raise node.fail(f"input rank {rank} is outside [1, {MAX_RANK}]")
        dims = []
        for i, d in enumerate(shape):
            lo, hi, it = (vec[i] if i < len(vec) else 0 for vec in vecs)
            if it < 0:
                raise node.fail(f"interior_padding[{i}] = {it} is negative")
            n = d + max(d - 1, 0) * it + lo + hi
            if it >= _INT64_MAX or abs(max(d - 1, 0) * (it + 1)) > _INT64_MAX \
                    or abs(n) > _INT64_MAX:
                raise node.fail(f"dimension {i}: the padded size overflows int64")
            dims.append((n, lo, it + 1))
        if any(n <= 0 for n, _, _ in dims):
            self.plan = None  # LiteRT zeroes every dimension
            return [(0,) * rank]
        for i, (n, _, _) in enumerate(dims):
            if n > _INT32_MAX:
                raise node.fail(f"dimension {i}: padded size {n} does not fit in int32")
        out_shape = tuple(n for n, _, _ in dims)
        check_allocation(node, [out_shape], runtime=False)
        # Where the input lands: input j of a dimension goes to lo + j * step; keep those
        # inside [0, n).
        src, dst = [], []
        for d, (n, lo, step) in zip(shape, dims):
            j0 = max(0, -(lo // step))  # ceil(-lo / step)
            j1 = min(d - 1, (n - 1 - lo) // step)
            if j0 > j1:
                src = None
                break
            src.append(slice(j0, j1 + 1))
            dst.append(slice(lo + j0 * step, lo + j1 * step + 1, step))
        self.plan = (out_shape, None if src is None else (tuple(src), tuple(dst)))
        return [out_shape]

    def eval(self, inputs):
        x, v = np.asarray(inputs[0]), np.asarray(inputs[1])
        if self.plan is None:
            return [np.zeros((0,) * x.ndim, x.dtype)]
        shape, copy = self.plan
        out = np.full(shape, v.reshape(-1)[0], dtype=x.dtype)
        if copy is not None:
            src, dst = copy
            out[dst] = x[src]
        return [out]
