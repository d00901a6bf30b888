"""Shared geometry of 2-D pooling (Pool2DOptions): windows as a strided view over the input
padded with a neutral value. TFLite pools only over the in-bounds part of each window.

Quantized int8/uint8/int16 (MAX and AVERAGE): TFLite does not rescale (the output keeps the
input's parameters), pools the stored integers and clamps to the fused activation's range
quantized with the output parameters (``fixed_point.activation_range``)."""

from __future__ import annotations

import numpy as np

from workbench.quantize.fixed_point import activation_range

from ._common import Kernel, PadBuffer, pad_nhwc, patches, window_geometry
from ._conv import fused_activation
from ._float_only import require_float
from ._qelementwise import QUANT_TYPES, qparams


def clip_window(size: int, f: int, s: int, out: int, before: int) -> tuple[int, int, int]:
    """``(filter, pad before, pad after)`` of one dimension, with a window larger than needed
    cut down to what can reach the input. TFLite pools each output over the in-bounds part
    ``[max(0, o*s - before), min(size, o*s - before + f))`` of its window; padding that every
    window starts in (more than ``(out - 1) * s`` before) or ends in (a window reaching past
    the input from its first position) changes none of those parts, so it is dropped with the
    taps it adds. Exact; a filter far beyond the input (up to 2**31) then costs at most two
    input sizes of taps instead of hanging on the padding."""
    if out == 0:
        return max(1, min(f, size)), 0, 0
    pb = min(before, (out - 1) * s)
    f = min(f - (before - pb), size + pb)
    return f, pb, max(0, (out - 1) * s - pb + f - size)


def _in_bounds(size: int, k: int, s: int, d: int, out: int, before: int) -> np.ndarray:
    """For each of ``out`` windows along one dimension (taps at ``o*s - before + t*d``,
    ``t < k``), how many taps fall inside ``[0, size)``."""
    start = np.arange(out, dtype=np.int64) * s - before
    first = -(-np.maximum(0, -start) // d)  # ceil
    stop = np.minimum(k, -(-(size - start) // d))
    return np.maximum(0, stop - first)


class PoolKernel(Kernel):
    #: Whether the op has quantized kernels in LiteRT (MAX and AVERAGE do, L2 does not).
    has_quantized = True

    def prepare(self):
        node = self.node
        x = node.inputs[0]
        self.qrange = None
        if x.dtype in QUANT_TYPES and self.has_quantized:
            out = node.outputs[0]
            if out.dtype != x.dtype:
                raise node.fail(f"input {x.dtype} and output {out.dtype} types differ")
            act = node.options.fused_activation_function if node.options is not None else 0
            self.qrange = activation_range(int(act), *qparams(out), out.dtype)
        else:
            require_float(node)
        if len(x.shape) != 4:
            raise node.fail(f"input {list(x.shape)} must be 4-D NHWC")
        o = node.options
        n, h, w, c = x.shape
        geom, pads = window_geometry(o, h, w, o.filter_height, o.filter_width)
        kh, kw, sh, sw, dh, dw, oh, ow = geom
        kh, *pads_h = clip_window(h, kh, sh, oh, pads[0][0])
        kw, *pads_w = clip_window(w, kw, sw, ow, pads[1][0])
        self.geom, self.pads = (kh, kw, sh, sw, dh, dw, oh, ow), (tuple(pads_h), tuple(pads_w))
        # In-bounds taps per window row and column (the count of a window is their product):
        # O(OH + OW) at prepare, the [1, OH, OW, 1] counts only when eval first needs them.
        self._axis_counts = None
        self._counts = None
        if self.pads != ((0, 0), (0, 0)):
            self._axis_counts = (_in_bounds(h, kh, sh, dh, oh, self.pads[0][0]),
                                 _in_bounds(w, kw, sw, dw, ow, self.pads[1][0]))
        self.pad = self.pad_buffer(x.dtype)
        return [(n, oh, ow, c)]

    @property
    def counts(self) -> np.ndarray | None:
        """In-bounds elements of each window, ``[1, OH, OW, 1]`` float32; None when no window
        reaches the padding (every count is ``FH * FW``)."""
        if self._counts is None and self._axis_counts is not None:
            ch, cw = self._axis_counts
            self._counts = (ch[:, None] * cw[None, :]).astype(np.float32)[None, :, :, None]
        return self._counts

    def pad_buffer(self, dtype) -> PadBuffer:
        """The padded input kept across invokes, filled with the op's neutral value (what
        ``eval`` reads through ``self.pad``); AVERAGE: 0."""
        return PadBuffer(*self.pads, value=0)

    def windows(self, x: np.ndarray, pad_value) -> np.ndarray:
        """[N, OH, OW, FH, FW, C] view of the padded input."""
        return patches(pad_nhwc(x, *self.pads, value=pad_value), *self.geom)

    def window_counts(self) -> np.ndarray | int:
        """Number of in-bounds elements of each window ([1, OH, OW, 1], or a scalar)."""
        if self.counts is None:
            return self.geom[0] * self.geom[1]
        return self.counts.astype(np.int64)

    def finish(self, out: np.ndarray) -> list[np.ndarray]:
        out = np.ascontiguousarray(out, dtype=np.float32)
        return [fused_activation(out, self.node.options.fused_activation_function)]

    def finish_quantized(self, out: np.ndarray) -> list[np.ndarray]:
        dt = self.node.outputs[0].dtype
        return [np.clip(out, *self.qrange).astype(dt)]
