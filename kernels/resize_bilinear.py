"""RESIZE_BILINEAR for float32, uint8, int8 and int16, each as LiteRT's built-in kernel computes
it (resizing does not requantize: input and output share their quantization).

Source rows/cols per output index: ``lo = max(floor(v), 0)``, ``hi = min(ceil(v), in - 1)`` with
the fraction ``v - lo`` (negative or > 1 at a clamped border, as in TFLite).

- float32: float32 coordinates (``_resize.float_scale``), then the bilinear blend.
- uint8: the same float coordinates; the four weights are float32 products summed in the order
  (y0,x0), (y0,x1), (y1,x0), (y1,x1), plus 0.5, then truncated.
- int8 / int16: integer coordinates in 1/1024 units (scale rounded to nearest), the weighted sum
  in int64, rounded half away from zero by 2^20.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._resize import F32, ResizeKernel, float_scale
from .registry import register

DTYPES = (np.float32, np.uint8, np.int8, np.int16)


@register(Op.RESIZE_BILINEAR)
class ResizeBilinear(ResizeKernel):
    def check_dtype(self, dtype) -> None:
        if dtype not in DTYPES:
            raise UnsupportedOpError(self.node.op.name, self.node.path,
                                     f"{dtype} inputs are not supported")

    def float_axis(self, in_size: int, out_size: int):
        scale = float_scale(in_size, out_size, self.align)
        i = np.arange(out_size, dtype=F32)
        v = (i + F32(0.5)) * scale - F32(0.5) if self.half else i * scale
        lo = np.maximum(np.floor(v).astype(np.int64), 0)
        hi = np.minimum(np.ceil(v).astype(np.int64), in_size - 1)
        return lo, hi, (v - lo.astype(F32)).astype(F32)

    def int_axis(self, in_size: int, out_size: int):
        if self.align and out_size > 1:
            scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
        else:
            scale = ((1 << 10) * in_size + out_size // 2) // out_size
        i = np.arange(out_size, dtype=np.int64)
        v = i * scale + scale // 2 - (1 << 9) if self.half else i * scale
        lo = np.maximum(v // 1024, 0)  # v >= -512, so floor and C++ truncation agree after max
        hi = np.minimum((v + 1023) // 1024, in_size - 1)  # v + 1023 > 0
        return lo, hi, v - 1024 * lo  # fraction in 1/1024 units

    def plan(self, in_h, in_w, out_h, out_w):
        if self.node.inputs[0].dtype in (np.int8, np.int16):
            return self.int_axis(in_h, out_h), self.int_axis(in_w, out_w)
        return self.float_axis(in_h, out_h), self.float_axis(in_w, out_w)

    def resize(self, x, plan):
        (y0, y1, dy), (x0, x1, dx) = plan
        if x.dtype == np.float32:
            dy = dy[None, :, None, None]
            dx = dx[None, None, :, None]
            top, bot = x[:, y0], x[:, y1]
            left = top[:, :, x0] * (1 - dy) + bot[:, :, x0] * dy
            right = top[:, :, x1] * (1 - dy) + bot[:, :, x1] * dy
            return np.ascontiguousarray(left * (1 - dx) + right * dx, dtype=np.float32)
        if x.dtype == np.uint8:
            return self._uint8(x, y0, y1, dy, x0, x1, dx)
        return self._integer(x, y0, y1, dy, x0, x1, dx)

    @staticmethod
    def _uint8(x, y0, y1, dy, x0, x1, dx):
        dy, dx = dy[:, None], dx[None, :]
        xf = x.astype(F32)
        top, bot = xf[:, y0], xf[:, y1]
        terms = [(top, x0, (1 - dy) * (1 - dx)), (top, x1, (1 - dy) * dx),
                 (bot, x0, dy * (1 - dx)), (bot, x1, dy * dx)]
        acc = None
        for rows, cols, w in terms:  # float32, summed in TFLite's order, rounding offset last
            term = rows[:, :, cols] * w.astype(F32)[None, :, :, None]
            acc = term if acc is None else acc + term
        return (acc + F32(0.5)).astype(np.uint8)

    @staticmethod
    def _integer(x, y0, y1, dy, x0, x1, dx):
        xi = x.astype(np.int64)
        wy0, wy1 = (1024 - dy)[None, :, None, None], dy[None, :, None, None]
        wx0, wx1 = (1024 - dx)[None, None, :, None], dx[None, None, :, None]
        top, bot = xi[:, y0], xi[:, y1]
        acc = (top[:, :, x0] * wy0 * wx0 + bot[:, :, x0] * wy1 * wx0 +
               top[:, :, x1] * wy0 * wx1 + bot[:, :, x1] * wy1 * wx1)
        rounded = acc + np.where(acc > 0, 1 << 19, -(1 << 19))
        q = np.sign(rounded) * (np.abs(rounded) >> 20)  # C++ division truncates toward zero
        return q.astype(x.dtype)
