"""Integer helpers shared by the quantized CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
TRANSPOSE_CONV and BATCH_MATMUL kernels.

A quantized convolution or matmul computes the exact integer accumulator
``acc = sum((x - zx) * (w - zw)) + bias`` and requantizes it:
``out = clamp(M(acc) + zo, act_min, act_max)`` where ``M`` is a fixed-point multiplier for
``s_x * s_w / s_o`` (per output channel when the weights are per-channel). All float maths
(multipliers, clamp range, weight sums, the choice of GEMM precision) happens in prepare; eval
runs integer numpy plus a BLAS GEMM whose exactness is proven in prepare.

LiteRT's kernels round ``M`` in four ways (measured against LiteRT 2.x with
``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` on x86; see each kernel for which one it uses):

* ``UPWARD`` — the optimized GEMM path (ruy on x86): rounding high multiply, then a right shift
  rounding ties toward +inf (:func:`fixed_point.multiply_by_quantized_multiplier_upward`);
* ``GEMMLOWP`` — the reference kernels and scalar loops: the same, with ties of the right
  shift rounded away from zero (:func:`fixed_point.multiply_by_quantized_multiplier`). Kernels
  whose output stage is vectorized over blocks of channels (or of flat values) round ties
  upward inside the blocks and away from zero in the leftover scalar loop: ``Requantizer``'s
  ``upward`` mask and :func:`requantize_blocked` reproduce that;
* ``INT64`` — 16x8 kernels with int64 accumulators
  (:func:`fixed_point.multiply_by_quantized_multiplier_int64`);
* ``SINGLE`` — one rounding of ``acc * q`` (int16 FULLY_CONNECTED,
  :func:`fixed_point.multiply_by_quantized_multiplier_single`).

:class:`Requantizer` applies any of them, bit-identical to the ``fixed_point`` functions
(``tests/kernels/test_quant_conv.py`` checks both of its implementations against them).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import TensorType
from workbench.quantize.fixed_point import activation_range, quantize_multipliers

from . import _jit

UPWARD = "upward"
GEMMLOWP = "gemmlowp"
INT64 = "int64"
SINGLE = "single"

#: Activation dtypes of the integer paths.
INT_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_WEIGHT_INTS = (np.dtype(np.int8), np.dtype(np.uint8))

_F32_EXACT = 2**24
_F64_EXACT = 2**53


# -- dispatch of float-activation / integer-weight ("hybrid") and sparse nodes ------------------
def is_hybrid(x, w) -> bool:
    """Float32 activations with integer (int8/uint8/int4) weights: dynamic-range quantization."""
    if x is None or w is None or x.dtype != np.float32:
        return False
    if w.dtype in _WEIGHT_INTS:
        return True
    return w.dtype is None and int(w.tensor.dtype) == TensorType.INT4


def int4_weights_as_int8(node, index: int) -> None:
    """LiteRT's int8 CONV_2D and FULLY_CONNECTED take constant INT4 weights (two per byte, low
    nibble first) by unpacking them to int8 once in Prepare and then running their int8
    arithmetic. Do the same: with an int8 input, the node's INT4 weight input ``index`` is
    presented to the kernel as its int8 values (the model is unchanged)."""
    x, w = node.inputs[0], node.inputs[index]
    if x is None or w is None or x.dtype != np.int8 or w.dtype is not None \
            or int(w.tensor.dtype) != TensorType.INT4:
        return
    if w.tensor.sparsity is not None:
        raise UnsupportedOpError(node.op.name, node.path, "sparse int4 weights")
    if w.data is None:
        raise UnsupportedOpError(node.op.name, node.path, "int4 weights computed at run time")
    from ._hybrid import unpack_int4

    try:
        values = unpack_int4(w.data, w.shape)
    except ValueError as e:
        raise node.fail(f"int4 weights {w.name!r}: {e}") from None
    node.inputs[index] = dataclasses.replace(w, dtype=np.dtype(np.int8), data=values)


def delegate(kernel, class_name: str, what: str):
    """Hand a node to ``kernels/_hybrid.py``'s ``class_name`` (imported lazily: that module may
    be absent); the kernel's ``eval`` becomes the delegate's. Returns the output shapes."""
    node = kernel.node
    try:
        from . import _hybrid
    except ImportError:
        _hybrid = None
    cls = getattr(_hybrid, class_name, None)
    if cls is None:
        raise UnsupportedOpError(node.op.name, node.path, f"{what} is not supported yet")
    impl = cls(node)
    shapes = impl.prepare()
    kernel.eval = impl.eval
    return shapes


# -- quantization parameters -------------------------------------------------------------------
def qparams(node, t, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(scales float32, zero points int64) of a quantized tensor; a model error if absent."""
    q = t.quantization
    if q is None or q.scale.size == 0:
        raise node.fail(f"{what} {t.name!r} ({t.dtype}) has no quantization parameters")
    zp = q.zero_point if q.zero_point.size else np.zeros(q.scale.size, np.int64)
    if zp.size == 1 and q.scale.size > 1:
        zp = np.repeat(zp, q.scale.size)
    return q.scale.astype(np.float32), zp.astype(np.int64)


def scalar_qparams(node, t, what: str) -> tuple[np.float32, int]:
    s, z = qparams(node, t, what)
    if s.size != 1:
        raise node.fail(f"{what} {t.name!r} must be quantized per tensor, has {s.size} scales")
    return s[0], int(z[0])


def channel_scales(node, w, channels: int, axis: int) -> np.ndarray:
    """Weight scales broadcast to ``channels`` (per-tensor) or checked along ``axis``."""
    s, _ = qparams(node, w, "weights")
    if s.size == 1:
        return np.repeat(s, channels)
    q = w.quantization
    if s.size != channels or q.quantized_dimension % max(len(w.shape), 1) != axis:
        raise node.fail(f"weights have {s.size} scales on axis {q.quantized_dimension}, "
                        f"expected {channels} on axis {axis}")
    return s


def per_channel_multipliers(sx, sw, so) -> np.ndarray:
    """``s_x * s_w[c] / s_o`` in double from float32 scales (PopulateConvolutionQuantization-
    Params and the per-channel FULLY_CONNECTED path)."""
    return (np.float64(np.float32(sx)) * np.asarray(sw, np.float32).astype(np.float64)
            / np.float64(np.float32(so)))


def legacy_multiplier(sx, sw, so) -> float:
    """``float(s_x * s_w) / s_o``: the scale product taken in float32 first, as LiteRT's
    GetQuantizedConvolutionMultipler does (per-tensor FULLY_CONNECTED, uint8 CONV_2D,
    BATCH_MATMUL)."""
    return float(np.float64(np.float32(sx) * np.float32(sw)) / np.float64(np.float32(so)))


def check_bias_type(node, bias, declared) -> None:
    """The options' ``quantized_bias_type`` (0 = unset), when set, must be the bias's type."""
    if bias is None or not declared:
        return
    from workbench.ir.ops import TensorType, numpy_dtype, type_name

    if declared not in (TensorType.INT32, TensorType.INT64):
        raise node.fail(f"quantized_bias_type {type_name(declared)} is not INT32 or INT64")
    if np.dtype(numpy_dtype(declared)) != bias.dtype:
        raise node.fail(f"bias is {bias.dtype} but the options declare "
                        f"{np.dtype(numpy_dtype(declared))}")


def check_operand_types(node, x, w, out, b, *, weights: str = "filter", outs=None,
                        int16_bias=(np.int64, np.int32), int16_weights=False) -> None:
    """The integer operand types of conv / depthwise / transpose conv / fully connected: uint8
    input with uint8 weights, int8 and int16 inputs with int8 weights (``int16_weights``: an
    int16 input may also take int16 weights), an output of ``outs`` (default: the input's
    type), and an int32 bias (``int16_bias`` types for int16 inputs) that matches the options'
    declared ``quantized_bias_type`` when there is one."""
    want_w = (np.uint8,) if x.dtype == np.uint8 else (np.int8,)
    if int16_weights and x.dtype == np.int16:
        want_w = (np.int8, np.int16)
    if w.dtype not in want_w or out.dtype not in (outs or (x.dtype,)):
        raise UnsupportedOpError(node.op.name, node.path,
                                 f"{x.dtype} input with {w.dtype or w.tensor.type_name} "
                                 f"{weights} and {out.dtype} output is not supported")
    bias_types = int16_bias if x.dtype == np.int16 else (np.int32,)
    if b is not None and b.dtype not in bias_types:
        raise node.fail(f"bias must be {' or '.join(np.dtype(t).name for t in bias_types)}"
                        f" for {x.dtype} input, got {b.dtype}")
    check_bias_type(node, b, getattr(node.options, "quantized_bias_type", 0))


def clamp_range(node, out_dtype, so, zo) -> tuple[int, int]:
    act = getattr(node.options, "fused_activation_function", 0) or 0
    return activation_range(act, np.float32(so), zo, out_dtype)


def raw_max(dtype) -> int:
    """Largest |value| of an integer dtype (the bound used for GEMM exactness)."""
    info = np.iinfo(dtype)
    return max(abs(int(info.min)), abs(int(info.max)))


# -- requantization ----------------------------------------------------------------------------
_EXACT = 2**52  # margin below 2**53: every float64 intermediate of the fast path stays exact
# Per-channel constants are repeated to rows of about this many values: numpy's broadcast
# loops restart once per row, so rows of a few dozen channels cost ~15% of a requantization.
# (A float32 evaluation that recomputes in float64 only the values within a proven error bound
# of a rounding boundary was measured slower than this float64 path: finding those values
# takes as many numpy passes as the halved width saves.)
_TILE_ROW = 1024
#: Accumulator arrays from this size on check the run-time bound (``Requantizer``).
_RUN_TIME_CHECK_MIN = 4096


def _squeeze(a):
    """A per-channel int64 vector, or a Python int when all channels agree (faster numpy)."""
    a = np.asarray(a, np.int64).reshape(-1)
    return int(a[0]) if a.size and np.all(a == a[0]) else a


def _channel_vector(v, channels: int, dtype) -> np.ndarray:
    """A scalar or per-channel value as a contiguous ``dtype`` vector of ``channels``."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype).reshape(-1), (channels,)))


class Requantizer:
    """``clamp(M(acc + offset) + zero_point, lo, hi)`` as ``dtype``, with per-channel multipliers
    (and ``offset``) along the last axis.

    Every rounding variant is one floor of a rational: ``floor((a * mul + add) / 2**total)``
    with ``a = acc + offset`` (for ``GEMMLOWP``, ``add`` is lowered by ``2**31`` where
    ``a * mul + 2**30 < 0``: its ties of negative values go away from zero). For ``UPWARD`` and
    ``GEMMLOWP`` that is the rounding high multiply followed by the rounding right shift by
    ``r``: ``floor((floor((a*q + 2**30) / 2**31) + c) / 2**r) == floor((a*q + 2**30 + c*2**31)
    / 2**(31 + r))`` for an integer ``c``. When prepare bounds ``|a * mul|`` below 2**52, eval
    computes that in float64 exactly (the numerator is an integer below 2**53, the divisor a
    power of two): a multiply-add with the zero point and ``-lo`` folded in, a clamp to
    ``[0, hi - lo]`` and a truncating cast (the floor of a non-negative value). Otherwise it
    runs the same formula in int64 (with C++'s int32 wrap-arounds where they can happen).
    """

    def __init__(self, multipliers, rounding: str, zero_point: int, lo: int, hi: int, dtype,
                 wrap_acc: bool = False, upward=None, offset=None, bound: int | None = None):
        """``upward``: with ``GEMMLOWP``, a per-channel bool mask of channels whose ties round
        upward instead (LiteRT kernels that vectorize over blocks of channels). ``offset``: an
        int64 per-channel vector added to ``acc`` first. ``bound``: a proven bound on ``|acc|``
        (enables the float64 path). ``wrap_acc``: wrap ``acc + offset`` to int32 first, as
        C++'s int32 accumulator would (when prepare could not bound it below 2**31)."""
        m = np.asarray(multipliers, np.float64).reshape(-1)
        qm, shift = quantize_multipliers(m)
        if rounding not in (UPWARD, GEMMLOWP, INT64, SINGLE):
            raise ValueError(f"unknown rounding {rounding!r}")
        self.rounding = rounding
        self.zero_point, self.lo, self.hi = int(zero_point), int(lo), int(hi)
        self.dtype = np.dtype(dtype)
        self.wrap_acc = wrap_acc
        self.offset = None if offset is None else _squeeze(offset)
        left = np.zeros_like(shift)
        fix = np.zeros(shift.shape, bool)
        if rounding == SINGLE:
            mul, total = qm, 31 - shift
            add = np.int64(1) << (total - 1)
        elif rounding == INT64:
            mul = np.where(qm < 0x7FFF0000, (qm + (1 << 15)) >> 16, 0x7FFF)
            total = 15 - shift
            add = np.int64(1) << (total - 1)
        else:
            left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
            mul, total = qm, 31 + right
            add = (np.int64(1) << 30) + (((np.int64(1) << right) >> 1) << 31)
            if rounding == GEMMLOWP:
                fix = right > 0
                if upward is not None:
                    fix = np.broadcast_to(fix, np.shape(upward)) & ~np.asarray(upward, bool)
        # Results beyond int32 are truncated by C++ (INT64 / SINGLE casts).
        self.wrap_out = rounding in (INT64, SINGLE)
        self.left = _squeeze(left) if np.any(left) else 0
        self.mul, self.total, self.add = _squeeze(mul), _squeeze(total), _squeeze(add)
        self.fix = bool(fix.reshape(-1)[0]) if fix.size and np.all(fix == fix.reshape(-1)[0]) \
            else fix
        self.fast = self._prepare_float(mul, total, add, bound)
        #: With a proven bound too loose for the float64 path (``fast`` False), the largest
        #: ``|acc|`` the float64 path is exact for: eval checks the actual float accumulators
        #: against it (two reductions) before taking the slower int64 path.
        self.run_time_limit = None
        if not self.fast and bound is not None and \
                self._float_num(mul, total, add, 0, True) is not None:
            good, bad = 0, 2**32  # bisect the largest bound _float_num accepts
            while bad - good > 1:
                mid = (good + bad) // 2
                ok = self._float_num(mul, total, add, mid, True) is not None
                good, bad = (mid, bad) if ok else (good, mid)
            self._prepare_float(mul, total, add, good, run_time=True)
            self.run_time_limit = good

    def _float_num(self, mul, total, add, bound: int, run_time: bool = False) -> int | None:
        """The largest numerator ``|a * mul| + |add|`` of the float64 path for ``|acc| <=
        bound`` (the accumulator before the offset), or None when that path is not exact there.
        ``run_time``: the bound is checked on the actual accumulators, which then also proves
        the int32 wrap C++ could do (``wrap_acc``) does not happen."""
        offset = np.asarray(self.offset if self.offset is not None else 0, np.int64)
        a_max = int(bound) + int(np.abs(offset).max(initial=0))
        if self.wrap_acc and (not run_time or a_max >= 2**31):
            return None
        if a_max * 2 ** int(np.max(self.left)) >= 2**31 and np.any(self.left):
            return None  # C++ wraps the left-shifted accumulator
        mul_eff = np.asarray(mul, object) * (2 ** np.asarray(self.left, np.int64)).astype(object)
        num = a_max * int(np.max(mul_eff)) + int(np.max(np.abs(add)))
        if num >= _EXACT or self.wrap_out and num // 2 ** int(np.min(total)) >= 2**31 - 1:
            return None
        return num

    def _prepare_float(self, mul, total, add, bound, run_time: bool = False) -> bool:
        num = None if bound is None else self._float_num(mul, total, add, bound, run_time)
        if num is None:
            return False
        offset = np.asarray(self.offset if self.offset is not None else 0, np.int64)
        mul_eff = np.asarray(mul, object) * (2 ** np.asarray(self.left, np.int64)).astype(object)
        zp_part = abs(self.zero_point - self.lo) * 2 ** int(np.max(total))
        self.zp_inside = num + zp_part < _EXACT
        scale = np.ldexp(1.0, -np.asarray(total, np.int64))
        mul_f = np.asarray(mul_eff, np.float64)  # exact: < 2**53
        self.a_f = mul_f * scale
        base = offset.astype(object) * mul_eff + np.asarray(add, object)  # exact Python ints
        b = np.asarray(base, np.float64) * scale
        # t = (a * mul + add) / 2**total + zp - lo is >= 0 once clamped, so a truncating cast
        # is the floor; lo is added back in integers (or by flipping the sign bit).
        zp = self.zero_point - self.lo if self.zp_inside else 0
        self.b_f = b + zp
        # GEMMLOWP: a * mul + 2**30 < 0  <=>  t < (add - 2**30) / 2**total + zp
        self.thr_f = (np.asarray(add, np.float64) - 2.0**30) * scale + zp
        self.step_f = 2.0**31 * scale
        if not isinstance(self.fix, bool):
            self.thr_f = np.where(self.fix, self.thr_f, -np.inf)
        for name in ("a_f", "b_f", "thr_f", "step_f"):
            v = np.asarray(getattr(self, name), np.float64).reshape(-1)
            setattr(self, name, float(v[0]) if v.size and np.all(v == v[0]) else v)
        self.plain = consts = (self.a_f, self.b_f, self.thr_f, self.step_f)
        sizes = {np.size(c) for c in consts if np.ndim(c)}
        # channels: the length of the per-channel vectors (0 when every constant is a scalar)
        self.channels = sizes.pop() if len(sizes) == 1 else 0
        self.rep = max(1, _TILE_ROW // self.channels) if self.channels else 1
        self.tiled = tuple(np.tile(c, self.rep) if np.ndim(c) else c for c in consts) \
            if self.rep > 1 else consts
        return True

    def _channel_blocks(self, t: np.ndarray):
        """``(view, (a, b, thr, step))`` pairs covering the C-contiguous ``t [..., C]``: the
        leading whole groups of ``rep`` rows as rows of ``rep * C`` values with the tiled
        constants (same channel at every position, so the same values), the leftover rows
        with the plain ones."""
        plain = self.plain
        c = self.channels
        # Fewer than two whole tiles: the split's own overhead outweighs the gain.
        if not c or t.size < 2 * self.rep * c or t.shape[-1] != c:
            return ((t, plain),)
        flat = t.reshape(-1, c)  # a view: t is C-contiguous
        m = flat.shape[0] - flat.shape[0] % self.rep
        if m == flat.shape[0]:
            return ((flat.reshape(-1, c * self.rep), self.tiled),)
        return ((flat[:m].reshape(-1, c * self.rep), self.tiled), (flat[m:], plain))

    @staticmethod
    def _wrap32(a: np.ndarray) -> np.ndarray:
        a += 2**31
        a &= 0xFFFFFFFF
        a -= 2**31
        return a

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        """``acc``: exact integers (int64, or float32/float64 from an exact GEMM); an int64
        ``acc`` may be overwritten."""
        if self.fast:
            return self._call_float(acc)
        limit = self.run_time_limit
        # (Small tensors: the two reductions cost about what the int64 path would.)
        if limit is not None and acc.dtype.kind == "f" and acc.size >= _RUN_TIME_CHECK_MIN and \
                max(-float(acc.min()), float(acc.max())) <= limit:
            return self._call_float(acc)
        return self._call_int(acc)

    def _call_float(self, acc: np.ndarray) -> np.ndarray:
        # Convert first, then multiply in place: numpy's mixed-type multiply casts in small
        # buffered chunks and is ~2x slower. Same values: acc holds exact integers.
        t = acc.astype(np.float64, order="C")  # a fresh C-contiguous copy: views below
        for v, (a, b, thr, step) in self._channel_blocks(t):
            v *= a
            v += b
            if self.fix is not False:
                np.subtract(v, step, out=v, where=v < thr)
        if not self.zp_inside:  # rare: a huge 2**total; floor, then the zero point in ints
            np.floor(t, out=t)
            np.clip(t, self.lo - self.zero_point, self.hi - self.zero_point, out=t)
            return (t.astype(np.int64) + self.zero_point).astype(self.dtype)
        # t = result - lo: clamp to [0, hi - lo]; the truncating cast is then the floor.
        # (The method: np.clip's Python-level wrapper costs ~1.5 us more per call.)
        t.clip(0, self.hi - self.lo, out=t)
        lo = self.lo
        if lo == 0:
            return t.astype(self.dtype)
        if self.dtype.itemsize <= 2 and lo == np.iinfo(self.dtype).min:
            unsigned = np.dtype(f"u{self.dtype.itemsize}")  # u - 2**(bits-1): flip the top bit
            top = unsigned.type(1 << (8 * unsigned.itemsize - 1))
            return (t.astype(unsigned) ^ top).view(self.dtype)
        u = t.astype(np.int32 if self.dtype.itemsize <= 2 else np.int64)
        u += lo
        return u.astype(self.dtype)

    def loop_params(self, channels: int) -> tuple:
        """The parameters of ``_call_int`` for the compiled loops (``_loops.requantize_value``),
        every per-channel value expanded to a vector of ``channels``: ``(offset, left, mul,
        fix, add, total, flags, zero_point, lo, hi)``; ``flags`` bit 0 wrap_acc, bit 1 a left
        shift, bit 2 wrap_out."""
        def vec(v, dtype=np.int64):
            return _channel_vector(v, channels, dtype)
        has_left = not isinstance(self.left, int) or bool(self.left)
        flags = int(self.wrap_acc) | (2 if has_left else 0) | (4 if self.wrap_out else 0)
        off = 0 if self.offset is None else self.offset
        return (vec(off), vec(self.left), vec(self.mul), vec(self.fix, np.bool_),
                vec(self.add), vec(self.total), np.int64(flags), np.int64(self.zero_point),
                np.int64(self.lo), np.int64(self.hi))

    def loop_params_float(self, channels: int) -> tuple | None:
        """The parameters of ``_call_float`` for the compiled loops
        (``_loops.requantize_value_float``): ``(a, b, thr, step, span, lo)``, vectors of
        ``channels`` float64 and two scalars; None unless prepare proved the float64 form exact
        for every accumulator (``fast``) with the zero point inside (``zp_inside``)."""
        if not self.fast or not self.zp_inside:
            return None
        thr = self.thr_f if self.fix is not False else -np.inf
        return (*(_channel_vector(v, channels, np.float64)
                  for v in (self.a_f, self.b_f, thr, self.step_f)),
                np.float64(self.hi - self.lo), np.int64(self.lo))

    def _call_int(self, acc: np.ndarray) -> np.ndarray:
        acc = np.asarray(acc)
        acc = acc.astype(np.int64) if acc.dtype != np.int64 else acc
        if self.offset is not None:
            acc += self.offset
        if self.wrap_acc:
            self._wrap32(acc)
        if not isinstance(self.left, int) or self.left:
            acc <<= self.left
            self._wrap32(acc)
        acc *= self.mul  # |acc| < 2**31 and 0 <= mul < 2**31: no int64 overflow
        if self.fix is not False:
            neg = acc < -(2**30)
            if self.fix is not True:
                neg &= self.fix
            acc -= neg.astype(np.int64) << 31
        acc += self.add
        acc >>= self.total
        if self.wrap_out:
            self._wrap32(acc)
        acc += self.zero_point
        np.clip(acc, self.lo, self.hi, out=acc)
        return acc.astype(self.dtype)


def requantize_blocked(acc: np.ndarray, head: Requantizer, tail: Requantizer,
                       block: int) -> np.ndarray:
    """LiteRT's flat vectorized output stages: the first ``size - size % block`` values of the
    flattened ``acc`` go through ``head`` (the vector loop), the rest through ``tail`` (its
    scalar leftover loop)."""
    flat = acc.reshape(-1)
    n = flat.size - flat.size % block
    out = np.empty(flat.size, head.dtype)
    out[:n] = head(flat[:n])
    out[n:] = tail(flat[n:])
    return out.reshape(acc.shape)


# -- exact integer GEMM ------------------------------------------------------------------------
def _gemm_dtype(bound: int):
    if bound < _F32_EXACT:
        return np.float32
    if bound < _F64_EXACT:
        return np.float64
    return np.int64


class ExactMatmul:
    """``x @ w`` for integer ``x [M, K]`` (|x| <= ``x_max``) and constant integer
    ``w [K, N]``, exact, through BLAS.

    Every partial sum of a row of ``x @ w`` is bounded by ``x_max * max_n sum_k |w[k, n]|``.
    Products and sums of integers stay exact in float32 below 2**24 and in float64 below 2**53
    whatever order BLAS sums in, so the GEMM runs in the narrowest float type the bound allows
    (int64 numpy matmul otherwise) and its result converts back to int64 exactly."""

    def __init__(self, w: np.ndarray, x_max: int):
        w = np.asarray(w, np.int64)
        col = np.abs(w).sum(axis=0) if w.size else np.zeros(0, np.int64)
        self.bound = int(x_max) * int(col.max(initial=0))
        self.dtype = _gemm_dtype(self.bound)
        self.w = np.ascontiguousarray(w, self.dtype)

    def dot(self, x: np.ndarray) -> np.ndarray:
        """``x`` of shape [..., K] (any integer dtype, any strides) -> [prod(...), N] holding
        exact integers in the GEMM's own dtype (float32, float64 or int64)."""
        k = self.w.shape[0]
        xf = np.asarray(x).astype(self.dtype, copy=False).reshape(-1, k)
        return np.matmul(xf, self.w)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Like :meth:`dot`, as int64."""
        return self.dot(x).astype(np.int64)


class VnniGemm:
    """``requant(x @ w.T)`` for int8 ``x`` rows and constant int8 ``w [N, K]`` on AVX-512 VNNI
    (:mod:`._avx512`), exact: the micro-kernel sums ``(x + 128) * w`` in int32 (prepare proved
    the bound), the fused loop adds ``- 128 sum_k w`` per channel, and the kernel's own
    requantizer (the BLAS path's, offset and all) takes the very integer the BLAS path
    gives it."""

    @classmethod
    def build(cls, w, requant: Requantizer) -> VnniGemm | None:
        """None where the VNNI GEMM does not apply: no VNNI CPU, compiled loops off, not int8
        weights, or a micro-kernel accumulator bound of 2**31 or more."""
        vn = _jit.int8_gemm()
        w = np.asarray(w)
        if vn is None or w.dtype != np.int8 or w.ndim != 2 or not w.size:
            return None
        packed = vn.PackedWeights(w)
        if packed.bound >= 2**31:
            return None
        return cls(vn, packed, requant)

    def __init__(self, vn, packed, requant: Requantizer):
        self.vn, self.packed, self.dtype = vn, packed, requant.dtype
        self.n, self.k, self.kp = packed.n, packed.k, 4 * packed.k_steps
        self.pre = -128 * packed.colsum
        fq = requant.loop_params_float(packed.n)
        # The fused float32/float64 form (int8 outputs, its constants in a RequantBlock padded
        # to whole panels); else the int64 form through a tile
        self.fq = None if fq is None or self.dtype != np.int8 else \
            vn.RequantBlock(self.pre, fq, packed.n, packed.width)
        self.rq = requant.loop_params(packed.n) if self.fq is None else None

    def rows(self, x: np.ndarray, m: int) -> np.ndarray:
        """``x`` (``m * K`` values, row after row, in any shape and layout) as a C-contiguous
        int8 ``[m, K']`` whose rows the micro-kernel may read up to ``kp`` bytes: a view when
        ``x`` is contiguous and ``K`` a multiple of 4, else a zero-padded copy."""
        k, kp = self.k, self.kp
        if x.dtype != np.int8 or x.size != m * k:
            raise ValueError(f"{x.dtype} {list(x.shape)} is not {m} int8 rows of {k} values")
        if k == kp and x.flags.c_contiguous:
            return x.reshape(m, k)
        buf = np.empty((m, kp), np.int8)
        buf[:, k:] = 0
        try:  # (a view of the buffer in x's shape: one copy, not two)
            buf[:, :k].reshape(x.shape, copy=False)[...] = x
        except ValueError:
            buf[:, :k] = x.reshape(m, k)
        return buf

    def __call__(self, x: np.ndarray, out: np.ndarray) -> None:
        """``out [M, N]`` (C-contiguous, ``self.dtype``) from int8 ``x`` holding ``M`` rows of
        ``K`` values (see :meth:`rows`)."""
        m = out.shape[0]
        if out.shape != (m, self.n) or not out.flags.c_contiguous or out.dtype != self.dtype:
            raise ValueError(f"output {out.dtype} {list(out.shape)} for {self.n} channels")
        a = self.rows(x, m)
        p = self.packed
        fq = self.fq
        if fq is not None:
            self.vn.gemm_requantize_float(a, m, a.shape[1], p.packed, p.offsets, p.widths,
                                          p.k_steps, self.n, fq.block, fq.width, fq.span, fq.lo,
                                          fq.ties, out)
        else:
            tile = np.empty(self.vn.MR * self.vn.PANEL, np.int32)
            self.vn.gemm_requantize(a, m, a.shape[1], p.packed, p.offsets, p.widths,
                                    p.k_steps, self.n, self.pre, self.rq, out, tile)


def row_chunks(rows: int, row_elems: int, target: int = 1 << 18):
    """``(start, stop)`` ranges over ``rows`` so that each chunk holds about ``target``
    elements (keeps a kernel's temporaries bounded and cache-friendly)."""
    step = max(1, target // max(1, row_elems))
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


def exact_matmul(a: np.ndarray, b: np.ndarray, a_max: int, b_max: int) -> np.ndarray:
    """Exact ``a @ b`` (batched, numpy broadcasting) of integer arrays bounded by ``a_max`` and
    ``b_max`` -> int64."""
    k = a.shape[-1]
    dt = _gemm_dtype(int(k) * int(a_max) * int(b_max))
    return np.matmul(a.astype(dt), b.astype(dt)).astype(np.int64)


def acc_bound(x_max: int, w: np.ndarray | None, bias, k: int, w_max: int) -> int:
    """Bound on |acc| (products plus bias): from the constant weights' column sums when known,
    else ``k * x_max * w_max``; a bias of unknown value counts as 2**31."""
    if w is not None and np.size(w):
        col = int(np.abs(np.asarray(w, np.int64)).sum(axis=0).max(initial=0))
    else:
        col = int(k) * int(w_max)
    if bias is None:
        b = 0
    elif isinstance(bias, np.ndarray):
        b = int(np.abs(bias.astype(np.int64)).max(initial=0))
    else:
        b = 2**31
    return int(x_max) * col + b
