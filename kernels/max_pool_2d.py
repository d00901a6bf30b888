"""MAX_POOL_2D: float32, and quantized int8/uint8/int16 (the stored integers, clamped to the
fused activation's quantized range)."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import PadBuffer
from ._pool import PoolKernel
from .registry import register


@register(Op.MAX_POOL_2D)
class MaxPool2D(PoolKernel):
    def eval(self, inputs):
        x = inputs[0]
        # Tap by tap (a running maximum over strided views of the padded input): a few ufunc
        # passes instead of numpy's reduce over a 6-D window view (several times faster).
        if self.qrange is not None:
            return self.finish_quantized(self._running_max(self.pad(x), x.dtype))
        return self.finish(self._running_max(self.pad(x), np.float32))

    def pad_buffer(self, dtype) -> PadBuffer:
        """Padding never wins a maximum: the type's lowest value, -inf for floats."""
        low = np.iinfo(dtype).min if self.qrange is not None else -np.inf
        return PadBuffer(*self.pads, value=low)

    def _running_max(self, xp, dtype) -> np.ndarray:
        """LiteRT's running maximum: floats start from the type's lowest finite value and take
        each in-bounds value that compares greater, so NaNs never win (``fmax``) and a window
        of NaNs or -infs gives the lowest float, not NaN or -inf."""
        fh, fw, sh, sw, dh, dw_, oh, ow = self.geom
        floats = np.dtype(dtype).kind == "f"
        out = None
        for i in range(fh):
            for j in range(fw):
                tap = xp[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                         j * dw_:j * dw_ + (ow - 1) * sw + 1:sw]
                if out is None:
                    out = np.fmax(tap, np.finfo(dtype).min, dtype=dtype) if floats else \
                        np.array(tap, dtype=dtype)
                elif floats:
                    np.fmax(out, tap, out=out)
                else:
                    np.maximum(out, tap, out=out)
        return out

