"""Hybrid (dynamic-range) kernels: float32 activations with int8 (or packed int4) constant
weights, as TFLite's dynamic-range quantization emits them, and sparse fully-connected weights.

The float kernels dispatch here (``impl = HybridFullyConnected(node); impl.prepare();
self.eval = impl.eval``) when the activation input is float32 and the weights are integers, or
when fully-connected weights carry sparsity metadata.

What LiteRT does, and what we reproduce (the integer part exactly, the float part in the same
operation order, so outputs normally agree to the bit):

1. Quantize the float input at run time, one scale per *row*: per row of ``[-1, K]`` for
   FULLY_CONNECTED and BATCH_MATMUL, per batch image (all of H*W*C) for the convolutions.
   Symmetric: ``scale = max|x| / 127``, values in [-127, 127]. Asymmetric (the
   ``asymmetric_quantize_inputs`` option; always for per-channel convolutions): the range
   ``max(x, 0) - min(x, 0)`` is a float32 difference, then ``scale = range / 255`` and the
   nudged zero point (in [-128, 127]) are double maths; values in [-128, 127]. (Both details
   were pinned down against LiteRT: a double range or a float32 zero point each miss rows.) Rounding is half away from zero, except that LiteRT's vectorized quantizer
   handles the first ``K & ~7`` values of a row by adding +-0.5 in float32 and truncating
   (different for values just below .5); we do the same.
2. Integer matmul of the quantized input with the int8 weights (exact: float64 BLAS on integer
   values whose sums stay far below 2**53), minus ``row_sum(weights) * zero_point`` when the
   input is asymmetric.
3. ``float(acc) * (input_scale * weight_scale[channel]) + bias`` in float32, then the fused
   activation (FULLY_CONNECTED applies every activation, TANH and SIGN_BIT included; the
   convolutions clamp to the activation range).

Weights keep their zero points ignored (LiteRT assumes symmetric int8 weights here); uint8
weights are reinterpreted as int8 bytes, as LiteRT's hybrid kernels read them.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import ActivationFunctionType as Act
from workbench.ir.ops import DimensionType, TensorType

from ._common import Kernel, conv_window, mark_dynamic, patches

F32 = np.float32
_INT_WEIGHTS = (TensorType.INT8, TensorType.UINT8, TensorType.INT4)

# -- packed and sparse constants -----------------------------------------------------------------


def unpack_int4(raw: np.ndarray, shape) -> np.ndarray:
    """INT4 tensor data (two values per byte, the low nibble first, sign-extended) as an int8
    array of ``shape``. An odd element count leaves the last high nibble unused."""
    raw = np.asarray(raw).reshape(-1).view(np.uint8)
    n = math.prod(shape)
    if raw.size * 2 < n:
        raise ValueError(f"{raw.size} bytes hold fewer than the {n} int4 values of "
                         f"{list(shape)}")
    lo = (raw & 0x0F).astype(np.int8)
    hi = (raw >> 4).astype(np.int8)
    out = np.empty(raw.size * 2, np.int8)
    out[0::2] = lo
    out[1::2] = hi
    out = np.where(out >= 8, out - 16, out).astype(np.int8)
    return out[:n].reshape(tuple(shape))


def pack_int4(values: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unpack_int4`: int values in [-8, 7] -> packed uint8 bytes."""
    v = np.asarray(values).reshape(-1).astype(np.int64)
    if v.size and (v.min() < -8 or v.max() > 7):
        raise ValueError("int4 values must lie in [-8, 7]")
    nib = (v & 0x0F).astype(np.uint8)
    if nib.size % 2:
        nib = np.append(nib, np.uint8(0))
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def densify(values: np.ndarray, shape, sparsity) -> np.ndarray:
    """Expand TFLite's sparse format (traversal order, block map, DENSE / SPARSE_CSR dimension
    metadata; see the schema's ``SparsityParameters``) to a dense array of ``shape``.

    The ``n = rank + len(block_map)`` traversal dimensions are walked in ``traversal_order``:
    a DENSE level multiplies every parent position by its size, a SPARSE_CSR level keeps, for
    each parent position ``p``, the indices ``array_indices[segments[p]:segments[p + 1]]``. The
    leaves are the stored values, in order. Block dimension ``rank + i`` is the inner block
    coordinate of original dimension ``block_map[i]``."""
    rank = len(shape)
    order = list(sparsity.traversal_order)
    block_map = list(sparsity.block_map)
    n = len(order)
    sizes = list(shape)
    for i, d in enumerate(block_map):
        sizes[d] //= sparsity.dim_metadata[rank + i].dense_size
    sizes += [sparsity.dim_metadata[rank + i].dense_size for i in range(len(block_map))]
    # coords[k]: the traversal-dimension-k coordinate of every position reached so far.
    coords = np.zeros((n, 1), np.int64)
    for level, dm in enumerate(sparsity.dim_metadata):
        dim = order[level]
        count = coords.shape[1]
        if dm.format == DimensionType.DENSE:
            size = sizes[dim]
            coords = np.repeat(coords, size, axis=1)
            coords[dim] = np.tile(np.arange(size, dtype=np.int64), count)
        else:
            seg = np.asarray(dm.array_segments[1], np.int64)
            idx = np.asarray(dm.array_indices[1], np.int64)
            per = np.diff(seg[:count + 1])
            coords = np.repeat(coords, per, axis=1)
            coords[dim] = idx[seg[0]:seg[count]] if count else idx[:0]
    vals = np.asarray(values).reshape(-1)
    if vals.size != coords.shape[1]:
        raise ValueError(f"sparse tensor stores {vals.size} values but its metadata describes "
                         f"{coords.shape[1]}")
    # Original coordinate of dimension d: block index * block size + inner coordinate.
    full = coords[:rank].copy()
    for i, d in enumerate(block_map):
        full[d] = full[d] * sparsity.dim_metadata[rank + i].dense_size + coords[rank + i]
    out = np.zeros(tuple(shape), vals.dtype)
    if vals.size:
        out[tuple(full)] = vals
    return out


def constant_values(node, t) -> np.ndarray | None:
    """The value of a constant input as its numpy dtype: int4 unpacked to int8, sparse
    tensors densified. None for tensors computed at run time."""
    if t is None or t.data is None:
        return None
    tensor = t.tensor
    raw = t.data
    if int(tensor.dtype) == TensorType.INT4:
        if tensor.sparsity is not None:
            raise UnsupportedOpError(node.op.name, node.path, "sparse int4 tensors")
        return unpack_int4(raw, t.shape)
    if tensor.sparsity is not None:
        dt = tensor.numpy_dtype
        if dt is None:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"sparse {tensor.type_name} tensors")
        return densify(np.frombuffer(np.ascontiguousarray(raw).tobytes(), dt), t.shape,
                       tensor.sparsity)
    return np.asarray(raw)


# -- run-time input quantization -------------------------------------------------------------------

def _round_rows(y: np.ndarray) -> np.ndarray:
    """Round float32 rows ``[R, K]`` to int64 as LiteRT's vectorized quantizers do: the first
    ``K & ~7`` values of each row by adding +-0.5 in float32 and truncating, the rest half away
    from zero (exact in float64)."""
    k = y.shape[-1]
    head = k & ~7
    out = np.empty(y.shape, np.int64)
    if head:
        yh = y[:, :head]
        half = np.where(yh < 0, F32(-0.5), F32(0.5))
        out[:, :head] = np.trunc(yh + half)
    if head < k:
        yt = y[:, head:].astype(np.float64)
        out[:, head:] = np.trunc(yt + np.copysign(0.5, yt))
    return out


def quantize_symmetric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of float32 ``x [R, K]`` -> (int64 values in [-127, 127], float32 scale per row)."""
    x = np.asarray(x, F32)
    r = x.shape[0]
    if x.shape[1] == 0:
        return np.zeros(x.shape, np.int64), np.ones(r, F32)
    rng = np.maximum(np.abs(x.min(axis=1)), np.abs(x.max(axis=1))).astype(F32)
    zero = rng == 0
    safe = np.where(zero, F32(1), rng).astype(F32)
    scale = np.where(zero, F32(1), safe / F32(127)).astype(F32)
    inv = (F32(127) / safe).astype(F32)
    q = np.clip(_round_rows((x * inv[:, None]).astype(F32)), -127, 127)
    q[zero] = 0
    return q, scale


def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.trunc(v + np.copysign(0.5, v))


def quantize_asymmetric(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of float32 ``x [R, K]`` -> (int64 values in [-128, 127], float32 scale, int64 zero
    point per row), as LiteRT's AsymmetricQuantizeFloats (range always includes 0)."""
    x = np.asarray(x, F32)
    r = x.shape[0]
    if x.shape[1] == 0:
        return np.zeros(x.shape, np.int64), np.ones(r, F32), np.zeros(r, np.int64)
    rmin32 = np.minimum(x.min(axis=1), F32(0)).astype(F32)
    rmax32 = np.maximum(x.max(axis=1), F32(0)).astype(F32)
    rmin, rmax = rmin32.astype(np.float64), rmax32.astype(np.float64)
    same = rmin == rmax
    # The range is a float32 difference; the scale and zero point are then double maths.
    width = (rmax32 - rmin32).astype(F32).astype(np.float64)
    scale_d = np.where(same, 1.0, width / 255.0)
    lo, hi = rmin / scale_d, rmax / scale_d
    zp_min, zp_max = -128.0 - lo, 127.0 - hi
    err_min, err_max = 128.0 + np.abs(lo), 127.0 + np.abs(hi)
    zpd = np.where(err_min < err_max, zp_min, zp_max)
    zp = np.where(zpd <= -128.0, -128.0, np.where(zpd >= 127.0, 127.0, _round_half_away(zpd)))
    zp = np.where(same, 0, zp).astype(np.int64)
    scale = np.where(same, F32(1), scale_d.astype(F32)).astype(F32)
    with np.errstate(divide="ignore"):
        inv = np.where(scale == 0, 0.0, 1.0 / scale.astype(np.float64)).astype(F32)
    q = np.clip(_round_rows((x * inv[:, None]).astype(F32)) + zp[:, None], -128, 127)
    q[same] = 0
    return q, scale, zp


# -- shared pieces ---------------------------------------------------------------------------------

def int_matmul(a: np.ndarray, b_t: np.ndarray) -> np.ndarray:
    """Exact integer ``a [M, K] @ b_t [K, N]`` for int8-range operands, through float64 BLAS
    (every partial sum is an integer below K * 255 * 255 < 2**53 for any realistic K)."""
    return np.asarray(a, np.float64) @ np.asarray(b_t, np.float64)


def float_activation(x: np.ndarray, act: int) -> np.ndarray:
    """LiteRT's ApplyActivationToVector on float32 (hybrid FULLY_CONNECTED / BATCH_MATMUL)."""
    act = int(act)
    if act == Act.NONE:
        return x
    if act == Act.RELU:
        return np.maximum(x, F32(0), out=x)
    if act == Act.RELU_N1_TO_1:
        return np.clip(x, F32(-1), F32(1), out=x)
    if act == Act.RELU6:
        return np.clip(x, F32(0), F32(6), out=x)
    if act == Act.TANH:
        return np.tanh(x, out=x)
    if act == Act.SIGN_BIT:
        return np.signbit(x).astype(F32)
    raise ValueError(f"unknown fused activation {act}")


def clamp_activation(x: np.ndarray, act: int) -> np.ndarray:
    """The float activation *range* the hybrid convolutions clamp to (TANH etc.: none)."""
    act = int(act)
    if act == Act.RELU:
        return np.maximum(x, F32(0), out=x)
    if act == Act.RELU6:
        return np.clip(x, F32(0), F32(6), out=x)
    if act == Act.RELU_N1_TO_1:
        return np.clip(x, F32(-1), F32(1), out=x)
    return x


def _weights(node, index: int, what: str = "weights", int4: bool = False):
    """(int8 weight values, TensorInfo) of an integer weight input; refuses the unsupported
    (INT4 only where LiteRT's hybrid kernel takes it: ``int4=True``)."""
    t = node.inputs[index]
    if t is None:
        raise node.fail(f"missing {what}")
    tt = int(t.tensor.dtype)
    if tt not in _INT_WEIGHTS or (tt == TensorType.INT4 and not int4):
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"hybrid {what} of type {t.tensor.type_name}")
    q = t.quantization
    if q is None or q.scale.size == 0:
        raise node.fail(f"integer {what} without a quantization scale")
    w = constant_values(node, t)
    if w is None:
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"hybrid {what} computed at run time (only constants)")
    if w.dtype == np.uint8:  # LiteRT reads uint8 hybrid weights as int8 bytes
        w = w.view(np.int8)
    return np.asarray(w, np.int8), t


def _float_input(node, index: int = 0):
    t = node.inputs[index]
    if t is None or t.dtype != np.float32:
        raise node.fail("hybrid kernels need a float32 activation input")
    return t


def _float_bias(node, index: int, n: int) -> np.ndarray | None:
    b = node.inputs[index] if len(node.inputs) > index else None
    if b is None:
        return None
    if b.dtype != np.float32:
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"{b.tensor.type_name} bias with float32 input (hybrid)")
    if math.prod(b.shape) != n:
        raise node.fail(f"bias has {math.prod(b.shape)} values for {n} output channels")
    return None if b.data is None else np.asarray(b.data, F32).reshape(n)


def _channel_scales(node, t, axis: int, n: int) -> tuple[np.ndarray, bool]:
    """(float32 scale per output channel, per_channel?) of a weight tensor."""
    q = t.quantization
    scale = np.asarray(q.scale, F32)
    if scale.size == 1:
        return np.full(n, scale[0], F32), False
    if scale.size != n or q.quantized_dimension != axis:
        raise node.fail(f"weights have {scale.size} scales along axis {q.quantized_dimension}; "
                        f"expected 1 or {n} along axis {axis}")
    return scale, True


def _bias_at_eval(inputs, index, n):
    if len(inputs) > index and inputs[index] is not None:
        return np.asarray(inputs[index], F32).reshape(n)
    return None


# -- FULLY_CONNECTED ------------------------------------------------------------------------------

class _MatrixHybrid:
    """``out[r, n] = bias[n] + float(acc[r, n]) * (input_scale[r] * weight_scale[n])`` with the
    input quantized per row (LiteRT's EvalHybridDense / MatrixBatchVectorMultiplyAccumulate)."""

    def __init__(self, w: np.ndarray, scales: np.ndarray, per_channel: bool, asymmetric: bool):
        self.units, self.k = w.shape
        self.w_t = np.ascontiguousarray(w.T, np.float64)
        self.row_sums = w.astype(np.int64).sum(axis=1)
        self.scales = scales
        self.per_channel = per_channel
        self.asymmetric = asymmetric

    def __call__(self, x2d: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        rows = x2d.shape[0]
        out = np.zeros((rows, self.units), F32) if bias is None else \
            np.broadcast_to(bias, (rows, self.units)).astype(F32)
        if rows == 0 or not np.any(x2d):  # LiteRT skips the product for an all-zero input
            return out
        if self.asymmetric:
            q, sf, zp = quantize_asymmetric(x2d)
        else:
            q, sf = quantize_symmetric(x2d)
            zp = None
        acc = int_matmul(q, self.w_t)  # exact integers as float64
        if zp is not None:
            # LiteRT: dotprod -= row_sum * (float)offset, in float32, truncated back to int32.
            corr = (self.row_sums.astype(F32)[None, :] * zp.astype(F32)[:, None]).astype(F32)
            acc = np.trunc((acc.astype(F32) - corr).astype(F32)).astype(np.float64)
        if self.per_channel:
            scale = (sf[:, None] * self.scales[None, :]).astype(F32)
        else:
            scale = (sf * self.scales[0]).astype(F32)[:, None]
        out += (acc.astype(F32) * scale).astype(F32)
        return out


class _Block16Hybrid(_MatrixHybrid):
    """LiteRT's sparse hybrid FULLY_CONNECTED (weights in 1x16 blocks, EvalSparseHybridImpl):
    the asymmetric zero-point term is subtracted from the bias first, in float
    (``bias - (scale * zero_point) * channel_scale * row_sum``), then each row adds
    ``float(q . w) * (scale * channel_scale)``."""

    def __call__(self, x2d: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        rows = x2d.shape[0]
        out = np.zeros((rows, self.units), F32) if bias is None else \
            np.broadcast_to(bias, (rows, self.units)).astype(F32)
        if rows == 0 or not np.any(x2d):
            return out
        if self.asymmetric:
            q, sf, zp = quantize_asymmetric(x2d)
        else:
            q, sf = quantize_symmetric(x2d)
            zp = None
        if not self.per_channel:
            sf = (sf * self.scales[0]).astype(F32)
        pcs = self.scales if self.per_channel else None
        if zp is not None:
            scaled_zp = (sf * zp.astype(F32)).astype(F32)[:, None]
            scale = (scaled_zp * pcs).astype(F32) if pcs is not None else scaled_zp
            out = (out - (scale * self.row_sums.astype(F32)).astype(F32)).astype(F32)
        acc = int_matmul(q, self.w_t).astype(F32)
        scale = (sf[:, None] * pcs).astype(F32) if pcs is not None else sf[:, None]
        out += (acc * scale).astype(F32)
        return out


def _is_block16(sparsity) -> bool:
    """The only sparse layout LiteRT's hybrid FULLY_CONNECTED reads: [units, in] in 1x16 blocks
    (rows DENSE, block columns SPARSE_CSR, a DENSE block of 16)."""
    dm = sparsity.dim_metadata
    return (tuple(sparsity.traversal_order) == (0, 1, 2) and tuple(sparsity.block_map) == (1,)
            and len(dm) == 3 and dm[0].format == DimensionType.DENSE
            and dm[1].format == DimensionType.SPARSE_CSR
            and dm[2].format == DimensionType.DENSE and dm[2].dense_size == 16)


def _fc_output_shape(node, x, k: int, units: int):
    total = math.prod(x.shape)
    if k == 0 or total % k:
        raise node.fail(f"input {list(x.shape)} does not flatten into rows of {k}")
    if node.options.keep_num_dims:
        if x.shape[-1] != k:
            raise node.fail(f"last input dimension {x.shape[-1]} != weights' {k}")
        return tuple(x.shape[:-1]) + (units,)
    return (total // k, units)


class _Int4Matrix:
    """LiteRT's optimized 4-bit FULLY_CONNECTED (x86/ARM ``optimized_4bit``), taken for
    constant INT4 weights when ``K`` is even, ``K >= 32`` and there are at least 4 units.

    Inputs are quantized symmetrically per row with plain rounding (no asymmetric option),
    weights are stored unsigned as ``w + 7``, and the zero point is folded back in float:
    ``out = bias + (sum(q) * -7 * s) * ws  +  (q . (w + 7)) * s * ws``. Bit-exact with LiteRT for
    weights in [-7, 7]. A weight of -8 does not fit that unsigned form and LiteRT's packing
    corrupts it and a neighbouring value (they come out as +8); we keep the true -8 there, so
    such models differ from LiteRT (a LiteRT defect, not reproduced)."""

    DEPTH, WIDTH, ZERO = 32, 4, -7

    @classmethod
    def applies(cls, w: np.ndarray) -> bool:
        units, k = w.shape
        return k % 2 == 0 and k >= cls.DEPTH and units >= cls.WIDTH

    def __init__(self, w: np.ndarray, scales: np.ndarray):
        units, k = w.shape
        self.units, self.k = units, k
        self.w_t = np.ascontiguousarray((w.astype(np.int64) - self.ZERO).T, np.float64)
        self.scales = scales

    def __call__(self, x2d: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        rows = x2d.shape[0]
        absmax = np.abs(x2d).max(axis=1).astype(np.float64) if self.k else np.zeros(rows)
        zero = absmax == 0
        safe = np.where(zero, 1.0, absmax)
        inv = np.where(zero, 0.0, 127.0 / safe).astype(F32)
        sf = (absmax / 127.0).astype(F32)
        y = (x2d * inv[:, None]).astype(np.float64)
        q = np.trunc(y + np.copysign(0.5, y))
        offsets = (q.sum(axis=1) * self.ZERO).astype(F32)
        ws = self.scales[None, :]
        val = (offsets * sf).astype(F32)[:, None]
        out = (val * ws).astype(F32)
        if bias is not None:
            out = (out + bias).astype(F32)
        dst = (q @ self.w_t).astype(F32)
        out += ((dst * sf[:, None]).astype(F32) * ws).astype(F32)
        return out


class HybridFullyConnected(Kernel):
    """FULLY_CONNECTED with float32 input and int8/uint8/int4 weights (dense or sparse)."""

    def prepare(self):
        node = self.node
        x = _float_input(node)
        w, wt = _weights(node, 1, int4=True)
        if w.ndim != 2:
            raise node.fail(f"weights {list(w.shape)} must be 2-D [units, in]")
        units, k = w.shape
        o = node.options
        scales, per_channel = _channel_scales(node, wt, 0, units)
        asym = bool(getattr(o, "asymmetric_quantize_inputs", False)) if o is not None else False
        if (int(wt.tensor.dtype) == TensorType.INT4 and wt.tensor.sparsity is None
                and _Int4Matrix.applies(w)):
            self.mm = _Int4Matrix(w, scales)
        elif wt.tensor.sparsity is not None and _is_block16(wt.tensor.sparsity):
            self.mm = _Block16Hybrid(w, scales, per_channel, asym)
        else:
            self.mm = _MatrixHybrid(w, scales, per_channel, asym)
        self.bias = _float_bias(node, 2, units)
        self.act = o.fused_activation_function if o is not None else Act.NONE
        self.out_shape = _fc_output_shape(node, x, k, units)
        return [self.out_shape]

    def eval(self, inputs):
        x = np.asarray(inputs[0], F32)
        bias = self.bias if self.bias is not None else _bias_at_eval(inputs, 2, self.mm.units)
        out = self.mm(x.reshape(-1, self.mm.k), bias)
        return [float_activation(out, self.act).reshape(self.out_shape)]


class SparseFullyConnected(Kernel):
    """FULLY_CONNECTED whose weights carry sparsity metadata: float32 weights (densified once,
    then the float product) or int8 weights with float input (the hybrid product; in 1x16
    blocks with LiteRT's sparse float order). LiteRT reads other int8 layouts as if they were
    1x16 blocks and returns wrong values; we compute them like dense weights."""

    def prepare(self):
        node = self.node
        x = _float_input(node)
        wt = node.inputs[1]
        if wt is None or wt.data is None:
            raise node.fail("sparse weights must be constant")
        o = node.options
        self.act = o.fused_activation_function if o is not None else Act.NONE
        if int(wt.tensor.dtype) == TensorType.FLOAT32:
            w = constant_values(node, wt)
            if w.ndim != 2:
                raise node.fail(f"weights {list(w.shape)} must be 2-D [units, in]")
            self.w_t = np.ascontiguousarray(w.T, F32)
            self.hybrid = None
            units, k = w.shape
            self.bias = _float_bias(node, 2, units)
        else:
            self.hybrid = HybridFullyConnected(node)
            shapes = self.hybrid.prepare()
            self.out_shape = shapes[0]
            return shapes
        self.units, self.k = units, k
        self.out_shape = _fc_output_shape(node, x, k, units)
        return [self.out_shape]

    def eval(self, inputs):
        if self.hybrid is not None:
            return self.hybrid.eval(inputs)
        x = np.asarray(inputs[0], F32).reshape(-1, self.k)
        out = np.ascontiguousarray(x @ self.w_t, dtype=F32)
        bias = self.bias if self.bias is not None else _bias_at_eval(inputs, 2, self.units)
        if bias is not None:
            out += bias
        return [clamp_activation(out, self.act).reshape(self.out_shape)]


# -- BATCH_MATMUL ---------------------------------------------------------------------------------

class HybridBatchMatMul(Kernel):
    """BATCH_MATMUL of a float32 lhs ``[..., M, K]`` by constant int8 rhs ``[..., K, N]``: each
    lhs row quantized on its own (symmetric, or asymmetric with the option), per-tensor or
    per-channel (along N) weight scales, ``out = float(acc) * (row_scale * channel_scale)``."""

    def prepare(self):
        node = self.node
        a = _float_input(node)
        w, wt = _weights(node, 1, "rhs")
        o = node.options
        self.adj_x = bool(o.adj_x) if o is not None else False
        self.adj_y = bool(o.adj_y) if o is not None else False
        self.asym = bool(getattr(o, "asymmetric_quantize_inputs", False)) if o else False
        if not (2 <= len(a.shape) <= 5 and 2 <= w.ndim <= 5):
            raise node.fail(f"operands {list(a.shape)} and {list(w.shape)} must have rank 2-5")
        m, k = (a.shape[-1], a.shape[-2]) if self.adj_x else (a.shape[-2], a.shape[-1])
        wk = np.swapaxes(w, -1, -2) if self.adj_y else w  # [..., K, N]
        k2, n = wk.shape[-2], wk.shape[-1]
        if k != k2:
            raise node.fail(f"contraction sizes differ: {list(a.shape)} and {list(w.shape)}")
        try:
            batch = tuple(np.broadcast_shapes(a.shape[:-2], wk.shape[:-2]))
        except ValueError:
            raise node.fail(f"batch dims of {list(a.shape)} and {list(w.shape)} do not "
                            "broadcast") from None
        q = wt.quantization
        scale = np.asarray(q.scale, F32)
        n_axis = w.ndim - 2 if self.adj_y else w.ndim - 1
        if scale.size == 1:
            self.scales, self.per_channel = np.full(n, scale[0], F32), False
        elif scale.size == n and q.quantized_dimension == n_axis:
            self.scales, self.per_channel = scale, True
        else:
            raise node.fail(f"rhs has {scale.size} scales along axis {q.quantized_dimension}; "
                            f"expected 1 or {n} along axis {n_axis}")
        self.wk = np.ascontiguousarray(wk, np.float64)
        self.row_sums = wk.astype(np.int64).sum(axis=-2)  # [..., N]
        self.m, self.k, self.n = m, k, n
        self.out_shape = (*batch, m, n)
        return [self.out_shape]

    def eval(self, inputs):
        a = np.asarray(inputs[0], F32)
        if self.adj_x:
            a = np.swapaxes(a, -1, -2)
        rows = a.reshape(-1, self.k)
        if self.asym:
            q, sf, zp = quantize_asymmetric(rows)
        else:
            q, sf = quantize_symmetric(rows)
            zp = np.zeros(rows.shape[0], np.int64)
        lead = a.shape[:-1]
        q = q.reshape(*lead, self.k).astype(np.float64)
        acc = np.matmul(q, self.wk)  # [..., M, N], exact integers
        sf_b = sf.reshape(lead)[..., None]
        zp_b = zp.reshape(lead)[..., None].astype(F32)
        corr = (self.row_sums.astype(F32)[..., None, :] * zp_b).astype(F32)
        acc = np.trunc((acc.astype(F32) - corr).astype(F32))
        if self.per_channel:
            scale = (sf_b * self.scales).astype(F32)
        else:
            scale = (sf_b * self.scales[0]).astype(F32)
        out = (acc * scale).astype(F32)
        return [np.ascontiguousarray(np.broadcast_to(out, self.out_shape), dtype=F32)]


# -- CONV_2D / DEPTHWISE_CONV_2D ------------------------------------------------------------------

def _conv_geometry(node, x_shape, kh, kw):
    """``(geom, np.pad widths, taps, crop)``: ``_common.conv_window`` (taps reading padding
    alone dropped; ``crop`` applies to the quantized image, whose scale is the whole input's)."""
    geom, ((pt, pb), (pl, pr)), taps, crop = conv_window(node.options, x_shape[1], x_shape[2],
                                                         kh, kw)
    return geom, ((0, 0), (pt, pb), (pl, pr), (0, 0)), taps, crop


def _windows(xp, geom):
    """Strided view [N, OH, OW, KH, KW, C] of a padded input."""
    return patches(xp, *geom)


def _quantize_images(x: np.ndarray, asymmetric: bool):
    """Quantize each batch image of NHWC ``x`` as one row; returns (values - zero point as
    float64 NHWC, scale per image, zero point per image)."""
    rows = x.reshape(x.shape[0], -1)
    if asymmetric:
        q, sf, zp = quantize_asymmetric(rows)
    else:
        q, sf = quantize_symmetric(rows)
        zp = np.zeros(x.shape[0], np.int64)
    centered = (q - zp[:, None]).astype(np.float64).reshape(x.shape)
    return centered, sf, zp


class HybridConv2D(Kernel):
    """CONV_2D with float32 input and int8 filter ``[OC, KH, KW, IC]``.

    Per-channel filters (scales that are not all equal) take LiteRT's EvalHybridPerChannel:
    each image quantized asymmetrically, padding at the zero point,
    ``float(acc) * (channel_scale * image_scale) + bias``. Otherwise EvalHybrid: symmetric per
    image, ``float(acc) * (image_scale * filter_scale)``, plus bias. Grouped convolutions run the
    per-channel reference order ``float(acc) * channel_scale * image_scale + bias``."""

    def prepare(self):
        node = self.node
        x = _float_input(node)
        w, wt = _weights(node, 1, "filter")
        if len(x.shape) != 4 or w.ndim != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        n, h, wd, c = x.shape
        oc, kh, kw, ic = w.shape
        if ic == 0 or c == 0 or c % ic or oc % (c // ic):
            raise node.fail(f"input channels {c} do not group filter {list(w.shape)}")
        self.groups = c // ic
        scales, per_channel = _channel_scales(node, wt, 0, oc)
        self.per_channel = self.groups != 1 or (per_channel and np.any(scales != scales[0]))
        self.scales = scales
        self.geom, self.pads, self.taps, self.crop = _conv_geometry(node, x.shape, kh, kw)
        if self.taps is not None:
            w = w[self.taps]
        self.w = w
        self.w_t = np.ascontiguousarray(w.reshape(oc, -1).T, np.float64)
        self.bias = _float_bias(node, 2, oc)
        self.act = node.options.fused_activation_function
        self.oc = oc
        _, _, _, _, _, _, oh, ow = self.geom
        return [(n, oh, ow, oc)]

    def _acc(self, centered):
        """Integer accumulators [N, OH, OW, OC] (float64) of the zero-point-free input."""
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        if self.crop is not None:
            centered = centered[self.crop]
        xp = np.pad(centered, self.pads) if any(p != (0, 0) for p in self.pads) else centered
        cols = _windows(xp, self.geom)
        n = centered.shape[0]
        if self.groups == 1:
            return (cols.reshape(n * oh * ow, -1) @ self.w_t).reshape(n, oh, ow, self.oc)
        g, c = self.groups, centered.shape[3]
        icg, ocg = c // g, self.oc // g
        acc = np.empty((n, oh, ow, self.oc), np.float64)
        for gi in range(g):
            cg = cols[..., gi * icg:(gi + 1) * icg].reshape(n * oh * ow, kh * kw * icg)
            wg = self.w[gi * ocg:(gi + 1) * ocg].reshape(ocg, -1).astype(np.float64)
            acc[..., gi * ocg:(gi + 1) * ocg] = (cg @ wg.T).reshape(n, oh, ow, ocg)
        return acc

    def eval(self, inputs):
        x = np.asarray(inputs[0], F32)
        bias = self.bias if self.bias is not None else _bias_at_eval(inputs, 2, self.oc)
        centered, sf, _ = _quantize_images(x, asymmetric=self.per_channel)
        acc = self._acc(centered).astype(F32)
        sf4 = sf[:, None, None, None]
        if self.groups != 1:  # reference kernel: acc * channel_scale * image_scale
            out = ((acc * self.scales).astype(F32) * sf4).astype(F32)
        elif self.per_channel:
            out = (acc * (self.scales * sf4).astype(F32)).astype(F32)
        else:
            out = (acc * (sf4 * self.scales[0]).astype(F32)).astype(F32)
        if bias is not None:
            out += bias
        return [clamp_activation(out, self.act)]


class HybridDepthwiseConv2D(Kernel):
    """DEPTHWISE_CONV_2D with float32 input and int8 filter ``[1, KH, KW, C*M]``: each image
    quantized asymmetrically, integer taps on the zero-point-free values (padding contributes
    nothing), then LiteRT's store order: channels in whole groups of four compute
    ``float(acc) * channel_scale * image_scale``, the remaining ones
    ``float(acc) * image_scale * channel_scale``; plus bias, clamped."""

    def prepare(self):
        node = self.node
        x = _float_input(node)
        w, wt = _weights(node, 1, "filter")
        if len(x.shape) != 4 or w.ndim != 4:
            raise node.fail(f"input {list(x.shape)} and filter {list(w.shape)} must be 4-D")
        n, h, wd, c = x.shape
        _, kh, kw, oc = w.shape
        if c == 0 or oc % c:
            raise node.fail(f"filter channels {oc} are not a multiple of input channels {c}")
        self.mult = oc // c
        self.scales, _ = _channel_scales(node, wt, 3, oc)
        self.geom, self.pads, self.taps, self.crop = _conv_geometry(node, x.shape, kh, kw)
        if self.taps is not None:
            w = w[self.taps]
        self.w = w[0].astype(np.float64)  # [KH, KW, OC] of the kept taps
        self.bias = _float_bias(node, 2, oc)
        self.act = node.options.fused_activation_function
        self.oc = oc
        self.vec = oc & ~3  # channels LiteRT stores four at a time
        _, _, _, _, _, _, oh, ow = self.geom
        return [(n, oh, ow, oc)]

    def eval(self, inputs):
        x = np.asarray(inputs[0], F32)
        bias = self.bias if self.bias is not None else _bias_at_eval(inputs, 2, self.oc)
        centered, sf, _ = _quantize_images(x, asymmetric=True)
        if self.crop is not None:
            centered = centered[self.crop]
        xp = np.pad(centered, self.pads) if any(p != (0, 0) for p in self.pads) else centered
        if self.mult > 1:
            xp = np.repeat(xp, self.mult, axis=3)
        kh, kw, sh, sw, dh, dw, oh, ow = self.geom
        n = x.shape[0]
        acc = np.zeros((n, oh, ow, self.oc), np.float64)
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, i * dh:i * dh + (oh - 1) * sh + 1:sh,
                         j * dw:j * dw + (ow - 1) * sw + 1:sw, :]
                acc += tap * self.w[i, j]
        acc = acc.astype(F32)
        sf4 = sf[:, None, None, None].astype(F32)
        out = np.empty(acc.shape, F32)
        v = self.vec
        out[..., :v] = ((acc[..., :v] * self.scales[:v]).astype(F32) * sf4).astype(F32)
        out[..., v:] = ((acc[..., v:] * sf4).astype(F32) * self.scales[v:]).astype(F32)
        if bias is not None:
            out += bias
        return [clamp_activation(out, self.act)]


# -- TRANSPOSE_CONV -------------------------------------------------------------------------------

class HybridTransposeConv(Kernel):
    """TRANSPOSE_CONV with float32 input and int8 weights ``[OC, KH, KW, IC]`` (inputs:
    output_shape, weights, input, optional bias). LiteRT quantizes each image asymmetrically
    and scales per output channel; the integer part is reproduced exactly, the float part as
    ``float(acc) * (channel_scale * image_scale) + bias``. LiteRT accumulates this path in
    another float order, so outputs agree within float32 rounding (about 1e-7 relative), not
    bit for bit."""

    def prepare(self):
        node = self.node
        if len(node.inputs) < 3:
            raise node.fail(f"expects 3 or 4 inputs, got {len(node.inputs)}")
        shape_t = node.inputs[0]
        x = _float_input(node, 2)
        w, wt = _weights(node, 1)
        if len(x.shape) != 4 or w.ndim != 4:
            raise node.fail(f"input {list(x.shape)} and weights {list(w.shape)} must be 4-D")
        if w.shape[3] != x.shape[3]:
            raise node.fail(f"input channels {x.shape[3]} != weights' {w.shape[3]}")
        if 0 in x.shape[1:]:  # as the float and integer TRANSPOSE_CONV (LiteRT's check)
            raise node.fail(f"input {list(x.shape)} has an empty height, width or channels")
        if shape_t.dtype != np.int32 or tuple(shape_t.shape) != (4,):
            raise node.fail("output_shape must be int32 [4]")
        o = node.options
        if o.stride_h < 1 or o.stride_w < 1:
            raise node.fail(f"strides must be >= 1, got {o.stride_h}x{o.stride_w}")
        self.oc = w.shape[0]
        self.scales, _ = _channel_scales(node, wt, 0, self.oc)
        self.w_taps = np.ascontiguousarray(np.transpose(w, (1, 2, 0, 3)), np.float64)
        self.bias = _float_bias(node, 3, self.oc)
        self.out_shape = None
        if shape_t.data is not None:
            self.out_shape = self._check_shape(shape_t.data)
            return [self.out_shape]
        mark_dynamic(node)  # runtime output_shape: known at eval
        return [node.outputs[0].shape]

    def _check_shape(self, value):
        shape = tuple(int(v) for v in np.asarray(value).reshape(-1))
        n = self.node.inputs[2].shape[0]
        if len(shape) != 4 or any(d < 0 for d in shape) or shape[0] != n or \
                shape[3] != self.oc:
            raise self.node.fail(f"output_shape {list(shape)} does not match batch {n} and "
                                 f"{self.oc} filters")
        return shape

    def eval(self, inputs):
        from ._conv import conv_transpose, transpose_pads

        o = self.node.options
        out_shape = self.out_shape or self._check_shape(inputs[0])
        x = np.asarray(inputs[2], F32)
        centered, sf, _ = _quantize_images(x, asymmetric=True)
        kernel, strides, dil = self.w_taps.shape[:2], (o.stride_h, o.stride_w), (1, 1)
        pads = transpose_pads(o.padding, out_shape[1:3], kernel, strides, dil)
        acc = conv_transpose(centered, self.w_taps, strides, dil, pads, out_shape[1:3])
        sf4 = sf[:, None, None, None]
        out = (acc.astype(F32) * (self.scales * sf4).astype(F32)).astype(F32)
        bias = self.bias if self.bias is not None else _bias_at_eval(inputs, 3, self.oc)
        if bias is not None:
            out += bias
        return [clamp_activation(out, o.fused_activation_function)]
