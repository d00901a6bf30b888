"""N-d convolution geometry shared by CONV_3D, TRANSPOSE_CONV and CONV_3D_TRANSPOSE.

Layouts are channels-last: data ``[N, *spatial, C]``. A forward convolution gathers each output's
window as a strided view (im2col without a copy until the GEMM); a transposed convolution does
one GEMM from input channels to (taps x output channels) and then scatters every tap back with
strided slice-adds (col2im), cropping the padding TFLite computes from the *output* size.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from workbench.ir.ops import ActivationFunctionType

from ._common import same_or_valid

_RANGES = {
    # An infinite bound rather than None: numpy's clip with one open side (or np.maximum) runs a
    # slower loop, ~3x here. The values are the same, NaN included.
    ActivationFunctionType.RELU: (0.0, np.inf),
    ActivationFunctionType.RELU6: (0.0, 6.0),
    ActivationFunctionType.RELU_N1_TO_1: (-1.0, 1.0),
}


def fused_activation(x: np.ndarray, act: int) -> np.ndarray:
    """A fused activation as the float kernels of conv, depthwise, fully connected, pooling and
    transposed/3-D conv apply it: a clamp to TFLite's activation range (in place). TANH and
    SIGN_BIT have no range there (unbounded), so LiteRT leaves the values unchanged."""
    lo, hi = _RANGES.get(int(act), (None, None))
    if lo is None and hi is None:
        return x
    return np.clip(x, lo, hi, out=x)


def activation_range(act: int, dtype=np.float32) -> tuple:
    """The clamp ``(lo, hi)`` of a fused activation as ``dtype`` scalars: infinite bounds for
    NONE, TANH and SIGN_BIT (no range, see :func:`fused_activation`)."""
    lo, hi = _RANGES.get(int(act), (-np.inf, np.inf))
    return dtype(lo), dtype(hi)


#: Largest tiled bias row (values) :func:`bias_row` builds: an output wider than any real
#: image (a fuzzed width of 2**30) would otherwise tile gigabytes at prepare.
_BIAS_ROW_LIMIT = 1 << 20


def bias_row(bias, width: int) -> np.ndarray | None:
    """A constant float32 bias ``[C]`` tiled ``width`` times (``[width * C]``) for
    :func:`add_bias`, or None when the bias is absent, computed at run time, not float32, or
    the row would exceed ``_BIAS_ROW_LIMIT`` values (``add_bias`` then broadcasts)."""
    if bias is None or bias.data is None or bias.data.dtype != np.float32 or bias.data.ndim != 1:
        return None
    if width * bias.data.size > _BIAS_ROW_LIMIT:
        return None
    return np.tile(bias.data, width)


def add_bias(out: np.ndarray, bias: np.ndarray | None, row: np.ndarray | None = None) -> None:
    """``out [..., W, C] += bias`` in place (float32 adds, the same values either way).

    With ``row`` (the bias tiled along W, see :func:`bias_row`) numpy's inner loop runs over
    ``W * C`` contiguous values instead of ``C`` broadcast ones: about 1.5x faster for the small
    channel counts of mobile nets. Falls back to the broadcast add when ``out``'s last two axes
    cannot be viewed as one."""
    if bias is None:
        return
    if row is not None and out.ndim >= 2 and out.shape[-2] * out.shape[-1] == row.size:
        flat = out.view()
        try:
            flat.shape = (*out.shape[:-2], row.size)  # raises rather than copy
        except AttributeError:
            pass
        else:
            flat += row
            return
    out += bias


def forward_geometry(padding: int, sizes, kernel, strides, dilations):
    """Per spatial dim: (output sizes, (pad before, pad after) pairs) as TFLite computes them."""
    outs, pads = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        o, before, after = same_or_valid(padding, n, k, s, d)
        outs.append(o)
        pads.append((before, after))
    return tuple(outs), tuple(pads)


def transpose_pads(padding: int, out_sizes, kernel, strides, dilations):
    """Leading pad per spatial dim of a transposed conv: the forward conv's padding computed
    with the transposed conv's output as the forward input (TFLite's ComputePadding*)."""
    return tuple(same_or_valid(padding, o, k, s, d)[1]
                 for o, k, s, d in zip(out_sizes, kernel, strides, dilations))


def windows(x: np.ndarray, kernel, strides, dilations, out) -> np.ndarray:
    """Strided view ``[N, *out, *kernel, C]`` of an already padded ``[N, *spatial, C]`` input."""
    nd = len(kernel)
    st = x.strides
    shape = (x.shape[0], *out, *kernel, x.shape[-1])
    strides_ = (st[0], *(st[1 + i] * strides[i] for i in range(nd)),
                *(st[1 + i] * dilations[i] for i in range(nd)), st[-1])
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides_, writeable=False)


def conv_forward(x: np.ndarray, w2d: np.ndarray, kernel, strides, dilations, pads, out
                 ) -> np.ndarray:
    """Float convolution: ``x [N, *spatial, C]``, ``w2d [prod(kernel) * C, OC]`` (taps major,
    channels minor) -> ``[N, *out, OC]`` float32."""
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, ((0, 0), *pads, (0, 0)))
    n, c, oc = x.shape[0], x.shape[-1], w2d.shape[1]
    if math.prod(out) == 0 or n == 0:
        return np.zeros((n, *out, oc), np.float32)
    cols = windows(x, kernel, strides, dilations, out).reshape(n * math.prod(out),
                                                              math.prod(kernel) * c)
    return np.ascontiguousarray((cols @ w2d).reshape(n, *out, oc), dtype=np.float32)


def scatter_taps(cols: np.ndarray, strides, dilations, pads, out, dtype) -> np.ndarray:
    """The col2im of a transposed convolution: ``cols [N, *in, *kernel, OC]`` (each input
    position's product with every tap) added into ``[N, *out, OC]`` of ``dtype``, where input
    ``i`` and tap ``k`` land on ``i * stride + k * dilation - pad``. Each tap adds the inputs
    landing inside the output as one strided slice-add, taps in row-major order (the float sums
    keep that order); contributions outside the output (the cropped padding) are never
    written, so no canvas of the uncropped extent (``(in-1) * stride + (k-1) * dilation``,
    unbounded for a huge stride, dilation or an output_shape at odds with the input) is built."""
    nd = len(strides)
    n, ins, kernel, oc = cols.shape[0], cols.shape[1:1 + nd], cols.shape[1 + nd:1 + 2 * nd], \
        cols.shape[-1]
    canvas = np.zeros((n, *out, oc), dtype)
    if cols.size == 0:
        return canvas
    # Per dimension, each tap landing anywhere inside: (tap, input slice, output slice).
    landing = []
    for k, d, i, s, p, o in zip(kernel, dilations, ins, strides, pads, out):
        taps = []
        for t in range(k):
            off = t * d - p  # output position of input 0 through this tap
            lo = max(0, -(off // s))  # first input landing at or after 0: ceil(-off / s)
            hi = min(i, -(-(o - off) // s))  # one past the last landing before o
            if hi > lo:
                taps.append((t, slice(lo, hi), slice(lo * s + off, (hi - 1) * s + off + 1, s)))
        landing.append(taps)
    whole = (slice(None),)
    for combo in itertools.product(*landing):
        src = whole + tuple(c[1] for c in combo) + tuple(c[0] for c in combo)
        canvas[whole + tuple(c[2] for c in combo)] += cols[src]
    return canvas


def conv_transpose(x: np.ndarray, w_taps: np.ndarray, strides, dilations, pads, out
                   ) -> np.ndarray:
    """Float transposed convolution.

    ``x [N, *in, IC]``; ``w_taps [*kernel, OC, IC]``; ``pads`` the leading crop per dim; ``out``
    the output spatial sizes. Output element ``o`` receives ``x[i] * w[k]`` for every input
    position ``i`` and tap ``k`` with ``o = i * stride + k * dilation - pad``
    (:func:`scatter_taps`).
    """
    nd = len(strides)
    n, ins, ic = x.shape[0], x.shape[1:-1], x.shape[-1]
    kernel, oc = w_taps.shape[:nd], w_taps.shape[nd]
    if not (x.size and w_taps.size):
        return np.zeros((n, *out, oc), np.float32)
    cols = (x.reshape(-1, ic) @ w_taps.reshape(-1, ic).T).reshape(n, *ins, *kernel, oc)
    return scatter_taps(cols, strides, dilations, pads, out, np.float32)
