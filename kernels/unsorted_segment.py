"""UNSORTED_SEGMENT_SUM / _PROD / _MAX / _MIN: inputs (data, segment_ids int32, num_segments
(one int32)); ``segment_ids`` has the shape of a prefix of ``data``'s dimensions and
``out[s] = op(data[i] for every i with segment_ids[i] == s)``, so the output shape is
``[num_segments] + data.shape[segment_ids.ndim:]``. As LiteRT: float32 or int32 data;
segments that receive nothing hold the op's identity (0, 1, the type's lowest value for MAX,
its largest for MIN); negative ids are skipped; an id >= num_segments fails. Elements are
combined in index order (float rounding as LiteRT), and MAX/MIN keep the running value when
the new element is NaN (``std::max`` / ``std::min``)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types, runtime_error
from ._shape import ParamKernel, param_value
from .registry import register


class _UnsortedSegment(ParamKernel, Kernel):
    #: numpy ufunc combining the running value with a new element
    ufunc = None

    def identity(self, dt):
        raise NotImplementedError

    def prepare(self):
        node = self.node
        if len(node.inputs) != 3 or any(t is None for t in node.inputs):
            raise node.fail("takes (data, segment_ids, num_segments)")
        check_types(node, (np.float32, np.int32))
        data, ids, num = node.inputs
        if ids.dtype != np.int32 or num.dtype != np.int32:
            raise node.fail("segment_ids and num_segments must be int32")
        if len(num.shape) > 1 or int(np.prod(num.shape)) != 1:
            raise node.fail("num_segments must be a scalar or a one-element vector")
        k = len(ids.shape)
        if k == 0 or tuple(ids.shape) != tuple(data.shape[:k]):
            raise node.fail(f"segment_ids shape {list(ids.shape)} is not a prefix of the data "
                            f"shape {list(data.shape)}")
        if node.outputs[0].dtype != data.dtype:
            raise node.fail("output type differs from the data type")
        return super().prepare()

    def params(self, inputs):
        n = param_value(self.node, 2, inputs)
        if n is None:
            return None
        return int(np.asarray(n).reshape(-1)[0])

    def shapes(self, n):
        data, ids = self.node.inputs[0], self.node.inputs[1]
        return [(n,) + tuple(data.shape[len(ids.shape):])]

    def run(self, n, inputs):
        data, ids, _ = inputs
        k = ids.ndim
        ids = ids.reshape(-1)
        if ids.size and int(ids.max()) >= n:
            raise runtime_error(self.node, f"segment id {int(ids.max())} is not below "
                                f"num_segments {n}")
        rows = data.reshape((ids.size,) + data.shape[k:])
        out = np.full((n,) + rows.shape[1:], self.identity(data.dtype), data.dtype)
        keep = ids >= 0
        with np.errstate(over="ignore", invalid="ignore"):
            self.ufunc.at(out, ids[keep], rows[keep])  # unbuffered, in index order
        return [out]


@register(Op.UNSORTED_SEGMENT_SUM)
class UnsortedSegmentSum(_UnsortedSegment):
    ufunc = np.add

    def identity(self, dt):
        return 0


@register(Op.UNSORTED_SEGMENT_PROD)
class UnsortedSegmentProd(_UnsortedSegment):
    ufunc = np.multiply

    def identity(self, dt):
        return 1


@register(Op.UNSORTED_SEGMENT_MAX)
class UnsortedSegmentMax(_UnsortedSegment):
    ufunc = np.fmax  # std::max(acc, x) keeps acc when x is NaN; acc is never NaN

    def identity(self, dt):
        return np.finfo(dt).min if dt.kind == "f" else np.iinfo(dt).min


@register(Op.UNSORTED_SEGMENT_MIN)
class UnsortedSegmentMin(_UnsortedSegment):
    ufunc = np.fmin

    def identity(self, dt):
        return np.finfo(dt).max if dt.kind == "f" else np.iinfo(dt).max
