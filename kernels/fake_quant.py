"""FAKE_QUANT (float32): quantize-dequantize through ``num_bits`` levels over ``[min, max]``,
as TensorFlow's FakeQuantWithMinMaxArgs and LiteRT define it. The range is first nudged so
that real zero is exactly representable: ``scale = (max - min) / (qmax - qmin)``, the zero
point ``qmin - min / scale`` rounded half away from zero and kept in ``[qmin, qmax]``, and the
range moved to ``(qmin - zp) * scale .. (qmax - zp) * scale``. Each value is clamped to that
range, shifted by its minimum, multiplied by ``1 / scale``, rounded half away from zero,
scaled back and shifted back, all in float32 in that order. ``qmin`` is 0 and ``qmax``
``2**num_bits - 1``; ``narrow_range`` is refused, as LiteRT refuses it at run time."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._float_only import require_float
from ._qelementwise import round_away
from .registry import register

F32 = np.float32


@register(Op.FAKE_QUANT)
class FakeQuant(Kernel):
    def prepare(self):
        node = self.node
        require_float(node)
        o = node.options
        lo, hi, bits = F32(o.min), F32(o.max), int(o.num_bits)
        if not 2 <= bits <= 16:
            raise node.fail(f"num_bits {bits} is outside [2, 16]")
        if o.narrow_range:  # LiteRT refuses it at run time: meant for weights only
            raise UnsupportedOpError(node.op.name, node.path,
                                     "narrow_range fake quantization (LiteRT runs it for "
                                     "weights only, never at run time)")
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= 0 <= hi and lo < hi):
            raise node.fail(f"range [{float(lo)}, {float(hi)}] must hold 0 and be finite and "
                            "non-empty")
        qmin, qmax = F32(0), F32((1 << bits) - 1)
        scale = F32((hi - lo) / (qmax - qmin))
        zp_from_min = F32(qmin - lo / scale)
        if zp_from_min < qmin:
            zp = qmin
        elif zp_from_min > qmax:
            zp = qmax
        else:
            zp = F32(round_away(zp_from_min))
        self.scale = scale
        self.inv = F32(F32(1) / scale)
        self.lo, self.hi = F32((qmin - zp) * scale), F32((qmax - zp) * scale)
        return [node.inputs[0].shape]

    def eval(self, inputs):
        x = np.asarray(inputs[0], F32)
        # fmax: a NaN becomes the minimum, as std::max(min, NaN) gives in LiteRT
        shifted = (np.minimum(self.hi, np.fmax(self.lo, x)) - self.lo).astype(F32)
        q = round_away((shifted * self.inv).astype(F32))
        return [((q * self.scale).astype(F32) + self.lo).astype(F32)]
