"""DILATE: spreads the elements of a tensor (rank >= 1, any fixed-size type) apart, inserting
``dilation - 1`` copies of the padding value between neighbours along each dimension: output
dimension ``(size - 1) * dilation + 1``. ``dilations`` is an int32 vector (one value >= 1 per
dimension); the padding value is the first element of the third input (the input's type).
Values are copied as stored. As in LiteRT, bad dilations (type, shape, a value below 1) fail
the invoke even when constant; an empty dimension dilated by more than 1 (a negative size) is
refused, at prepare for constant dilations."""

from __future__ import annotations

import numpy as np

from workbench.errors import InputError
from workbench.ir.ops import Op

from ._common import Kernel, check_allocation, mark_dynamic
from ._shape import param_value, require_dense
from .registry import register

_INT32_MAX = 2**31 - 1


@register(Op.DILATE)
class Dilate(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 3 or len(node.outputs) != 1:
            raise node.fail(f"expects 3 inputs (input, dilations, padding_value) and 1 output, "
                            f"got {len(node.inputs)} and {len(node.outputs)}")
        x, dil, v = node.inputs
        out = node.outputs[0]
        if x is None or dil is None or v is None or out is None:
            raise node.fail("an input or the output is missing")
        require_dense(node, 0, 2)
        if len(x.shape) == 0:
            raise node.fail("the input must have rank 1 or more")
        if out.dtype != x.dtype:
            raise node.fail(f"output type {out.tensor.type_name} differs from the input type "
                            f"{x.tensor.type_name}")
        if v.dtype != x.dtype:
            raise node.fail(f"padding_value type {v.tensor.type_name} differs from the input "
                            f"type {x.tensor.type_name}")
        if 0 in tuple(v.shape):
            raise node.fail(f"padding_value of shape {list(v.shape)} has no element")
        self.shape = self.ks = None
        d = param_value(node, 1)
        if d is not None and self._valid_form(d) and len(d) == len(x.shape):
            ks = tuple(int(k) for k in d.tolist())
            dims = self._dims(tuple(x.shape), ks, runtime=False)
            if all(k >= 1 for k in ks):
                check_allocation(node, [dims], runtime=False)
                self.shape, self.ks = dims, ks
                return [dims]
            # a dilation below 1 that still gives valid sizes: LiteRT fails the invoke
        mark_dynamic(node)
        return [tuple(out.shape)]

    @staticmethod
    def _valid_form(d) -> bool:
        d = np.asarray(d)
        return d.dtype == np.int32 and d.ndim == 1

    def _dims(self, shape, ks, runtime: bool) -> tuple[int, ...]:
        """The output shape for dilations ``ks``, refusing sizes outside int32 (LiteRT fails
        to size the output, or wraps)."""
        dims = tuple((n - 1) * k + 1 for n, k in zip(shape, ks))
        for i, n in enumerate(dims):
            if n < 0 or n > _INT32_MAX:
                msg = (f"dimension {i} of size {shape[i]} dilated by {ks[i]} gives size {n}, "
                       f"outside [0, {_INT32_MAX}]")
                if runtime:
                    raise InputError(f"{self.node.path}: {msg}")
                raise self.node.fail(msg)
        return dims

    def eval(self, inputs):
        node = self.node
        x = np.asarray(inputs[0])
        dims, ks = self.shape, self.ks
        if dims is None:
            d = np.asarray(inputs[1])
            constant = node.inputs[1].data is not None
            if not self._valid_form(d):
                raise node.fail(f"dilations must be an int32 vector, got "
                                f"{node.inputs[1].tensor.type_name}{list(d.shape)}")
            if d.shape[0] != x.ndim:
                raise node.fail(f"{d.shape[0]} dilations for an input of rank {x.ndim}")
            ks = tuple(int(k) for k in d.tolist())
            if any(k < 1 for k in ks):
                msg = f"dilations {list(ks)} must all be 1 or more"
                if constant:
                    raise node.fail(msg)
                raise InputError(f"{node.path}: {msg}")
            dims = self._dims(x.shape, ks, runtime=not constant)
            check_allocation(node, [dims], runtime=not constant)
        out = np.full(dims, np.asarray(inputs[2]).reshape(-1)[0], dtype=x.dtype)
        if out.size:
            out[tuple(slice(None, None, k) for k in ks)] = x
        return [out]
