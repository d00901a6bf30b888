"""XNNPACK, TFLite's default CPU delegate, as LiteRT 2.x applies it (``xnnpack_delegate.cc``).

XNNPACK claims each node it can express and replaces *every* claimed subset (no size or count
limits). Quantized (QS8/QU8) support is on in LiteRT's default build. Float16 and int8
constants behind a DEQUANTIZE (and sparse constants behind DENSIFY) are unpacked at init: those
unpacking nodes join the delegate when all their consumers are delegated.

The reasons are XNNPACK's own log lines (printed with ``XNNPACK_DELEGATE_ENABLE_LOGGING``), with
the node numbers left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.ir.ops import Op

from ._common import (
    ACT_NAMES,
    OK,
    OpView,
    T,
    Verdict,
    dtype,
    is_quantized,
    no,
    rank,
    scale,
    type_name,
    zero_point,
)

OPTIONS: dict[str, Any] = {
    # LiteRT's Python interpreter builds XNNPACK with signed and unsigned 8-bit inference on.
    "quantized": True,
    # Resource variables (VAR_HANDLE/READ_VARIABLE/ASSIGN_VARIABLE) are off by default.
    "variable_ops": False,
}
DEFAULTS: dict[str, Any] = {"min_nodes_per_partition": 1, "max_delegated_partitions": None,
                            "allows_dynamic_tensors": True, "fold_dequant": "fp16+int8"}

UNARY = {Op.ABS, Op.CEIL, Op.COS, Op.ELU, Op.EXP, Op.FLOOR, Op.GELU, Op.HARD_SWISH,
         Op.LEAKY_RELU, Op.LOG, Op.LOGISTIC, Op.NEG, Op.RELU, Op.RELU6, Op.RELU_N1_TO_1,
         Op.ROUND, Op.RSQRT, Op.SIN, Op.SQRT, Op.SQUARE, Op.TANH}
# Unary ops XNNPACK also runs on 8-bit quantized tensors.
UNARY_Q8 = {Op.ELU, Op.LEAKY_RELU, Op.LOGISTIC, Op.TANH}
# ...of which signed only.
UNARY_QS8_ONLY = {Op.ELU}
BINARY = {Op.ADD, Op.DIV, Op.MAXIMUM, Op.MINIMUM, Op.MUL, Op.PRELU, Op.SQUARED_DIFFERENCE,
          Op.SUB}
BINARY_Q8 = {Op.ADD, Op.MUL, Op.SUB}
REDUCE = {Op.MEAN, Op.SUM, Op.REDUCE_MAX, Op.REDUCE_MIN}
SHAPE_ONLY_Q8 = {Op.CONCATENATION, Op.RESHAPE, Op.SLICE, Op.SPLIT,
                 Op.TRANSPOSE, Op.PAD, Op.DEPTH_TO_SPACE, Op.SPACE_TO_DEPTH, Op.EXPAND_DIMS,
                 Op.MAX_POOL_2D, Op.RESIZE_BILINEAR}

UNSUPPORTED = "unsupported operator type {op}"
MAX_DIMS = 6  # XNN_MAX_TENSOR_DIMS


def _rank_ok(v: OpView) -> str | None:
    for t in v.inputs + v.outputs:
        if rank(t) > MAX_DIMS:
            return (f"number of dimensions {rank(t)} must be at most {MAX_DIMS} in {v.name} "
                    "node")
    return None


def _f32_or_q8(v: OpView, t, opts) -> str | None:
    d = dtype(t)
    if d == T.FLOAT32:
        return None
    if d in (T.INT8, T.UINT8) and opts["quantized"]:
        if not is_quantized(t) or len(t.quantization.scale) != 1:
            return f"unsupported quantization type in {v.role(t)} tensor"
        return None
    return f"unsupported type {type_name(t)} in {v.role(t)} tensor"


def _f32(v: OpView, t) -> str | None:
    if dtype(t) == T.FLOAT32:
        return None
    return f"unsupported type {type_name(t)} in {v.role(t)} tensor"


def _activation(v: OpView) -> str | None:
    a = v.activation
    if a in (0, 1, 2, 3):  # NONE, RELU, RELU_N1_TO_1, RELU6: become an output clamp
        return None
    return f"unsupported fused activation ({ACT_NAMES.get(a, a)})"


def _static(v: OpView, t, what: str) -> str | None:
    if t is None or v.is_const(t):
        return None
    return (f"invalid allocation type in {what} tensor in {v.name} node: "
            "expected static read-only tensor")


def _weights(v: OpView, t, qdim: int, opts) -> str | None:
    d = dtype(t)
    if d == T.FLOAT32 or v.is_folded_const(t):
        return None
    if d == T.INT8 and opts["quantized"] and is_quantized(t):
        if len(t.quantization.scale) > 1 and t.quantization.quantized_dimension != qdim:
            return f"unsupported quantized dimension in {v.role(t)} tensor"
        return None
    if d == T.UINT8 and opts["quantized"] and is_quantized(t) and \
            len(t.quantization.scale) == 1:
        return None
    return f"unsupported type {type_name(t)} in {v.role(t)} tensor"


def _tconv_padding(v: OpView) -> str | None:
    w, y, o = v.input(1), v.output(0), v.options
    if rank(w) != 4 or rank(y) != 4:
        return "4D filter and output expected in TRANSPOSE_CONV node"
    kh, kw = w.shape[1], w.shape[2]
    if int(o.padding) == 1:  # VALID
        if kh > y.shape[1] or kw > y.shape[2]:
            return ("output smaller than effective kernel dimensions unsupported with VALID "
                    "padding in TRANSPOSE_CONV node")
    elif kh < o.stride_h or kw < o.stride_w:
        return ("strides larger than effective kernel dimensions unsupported in TRANSPOSE_CONV "
                "node")
    return None


def _binary_scales(v: OpView) -> str | None:
    # XNNPACK's quantized kernels bound the rescaling factors they can represent.
    a, b, y = v.input(0), v.input(1), v.output(0)
    sy = scale(y)
    if v.code in (Op.ADD, Op.SUB):
        for t in (a, b):
            r = scale(t) / sy
            if not 2.0 ** -10 <= r < 2.0 ** 8:
                return (f"unsupported input-to-output scale ratio {r:g} in {v.name} node "
                        "(must be in [2^-10, 2^8))")
    elif v.code == Op.MUL:
        r = scale(a) * scale(b) / sy
        if not 2.0 ** -16 <= r < 2.0 ** 8:
            return (f"unsupported input-product-to-output scale ratio {r:g} in MUL node "
                    "(must be in [2^-16, 2^8))")
    return None


def _first(*errs: str | None) -> Verdict:
    for e in errs:
        if e:
            return no(e)
    return OK


def check(v: OpView, opts: dict[str, Any]) -> Verdict:
    """XNNPACK's verdict for one node."""
    c = v.code
    x, y = v.input(0), v.output(0)
    if c in UNARY or c in BINARY or c in SHAPE_ONLY_Q8 or c in REDUCE or \
            c in (Op.TRANSPOSE, Op.STRIDED_SLICE, Op.SPLIT, Op.DEQUANTIZE, Op.QUANTIZE):
        err = _rank_ok(v)
        if err:
            return no(err)
    if c in UNARY:
        q_ok = c in UNARY_Q8
        if c in UNARY_QS8_ONLY and dtype(x) == T.UINT8:
            return no(f"unsupported type UINT8 in input 0 tensor of {v.name}")
        return _first(_f32_or_q8(v, x, opts) if q_ok else _f32(v, x),
                      _f32_or_q8(v, y, opts) if q_ok else _f32(v, y))
    if c == Op.DEQUANTIZE:
        if dtype(y) != T.FLOAT32:
                return no(f"unsupported type {type_name(y)} in output tensor")
        if dtype(x) in (T.INT8, T.UINT8) and opts["quantized"]:
            return _first(_f32_or_q8(v, x, opts))
        return no(f"unsupported type {type_name(x)} in input tensor")
    if c == Op.QUANTIZE:
        # float -> 8-bit, or a requantization within one 8-bit type whose input/output scale
        # ratio lies in [2^-8, 2^7] (measured against LiteRT's XNNPACK build).
        errs = [_f32_or_q8(v, x, opts), _f32_or_q8(v, y, opts),
                None if dtype(y) in (T.INT8, T.UINT8) else "unsupported output type"]
        if dtype(x) in (T.INT8, T.UINT8) and not any(errs):
            if dtype(x) != dtype(y):
                errs.append(f"unsupported conversion {type_name(x)} -> {type_name(y)} in "
                            "QUANTIZE node")
            elif not 2.0 ** -8 <= scale(x) / scale(y) <= 2.0 ** 7:
                errs.append(f"unsupported input-to-output scale ratio "
                            f"{scale(x) / scale(y):g} in QUANTIZE node")
        return _first(*errs)
    if c in BINARY:
        q_ok = c in BINARY_Q8
        if len(v.inputs) != 2:
            return no(f"unexpected number of inputs ({len(v.inputs)}) in {v.name} node")
        errs = [(_f32_or_q8(v, t, opts) if q_ok else _f32(v, t)) for t in v.inputs + [y]]
        if dtype(y) in (T.INT8, T.UINT8) and not any(errs):
            errs.append(_binary_scales(v))
        if c == Op.PRELU:
            errs.append(_static(v, v.input(1), "slope"))
        return _first(*errs, _activation(v))
    if c in (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D):
        f = _f32(v, x) if c == Op.AVERAGE_POOL_2D else _f32_or_q8(v, x, opts)
        o = v.options
        err = None
        if o.stride_h <= 0 or o.stride_w <= 0 or o.filter_height <= 0 or o.filter_width <= 0:
            err = "invalid pooling parameters"
        elif o.stride_w > o.filter_width or o.stride_h > o.filter_height:
            err = (f"unsupported stride {o.stride_h}x{o.stride_w} exceeding filter "
                   f"{o.filter_height}x{o.filter_width} in {v.name} node")
        elif o.filter_height == 1 and o.filter_width == 1 and (o.stride_h != 1 or
                                                               o.stride_w != 1):
            err = f"unsupported pooling with 1x1 filter and {o.stride_h}x{o.stride_w} stride"
        return _first(f, err, _activation(v))
    if c in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D):
        w, b = v.input(1), v.input(2)
        errs = [_f32_or_q8(v, x, opts), None if rank(x) == 4 else "4D input expected",
                _weights(v, w, 0 if c == Op.CONV_2D else 3, opts), _static(v, w, "filter")]
        if b is None:
            errs.append(f"unsupported {v.name} node without bias")
        else:
            errs.append(_static(v, b, "bias"))
        dq = dtype(x) == T.FLOAT32 and dtype(w) == T.INT8
        if dtype(x) != dtype(y) or (dtype(x) != dtype(w) and not v.is_folded_const(w)
                                    and not (dq and c == Op.CONV_2D)):
            errs.append(f"unsupported mixed types in {v.name} operator")
        return _first(*errs, _f32_or_q8(v, y, opts), _activation(v))
    if c == Op.TRANSPOSE_CONV:
        w, b = v.input(1), v.input(3) if len(v.op.inputs) > 3 else None
        return _first(_f32_or_q8(v, v.input(2), opts), _weights(v, w, 0, opts),
                      _static(v, w, "filter"), _static(v, v.input(0), "output shape"),
                      _static(v, b, "bias"), _f32_or_q8(v, y, opts), _tconv_padding(v))
    if c == Op.FULLY_CONNECTED:
        if v.version == 8:
            return no("Unsupported version 8 of FullyConnected.")
        w, b = v.input(1), v.input(2)
        dq = dtype(x) == T.FLOAT32 and dtype(w) == T.INT8
        errs = [_f32_or_q8(v, x, opts), _weights(v, w, 0, opts), _static(v, w, "filter"),
                _static(v, b, "bias"), _f32_or_q8(v, y, opts)]
        if not dq and dtype(x) != dtype(w) and not v.is_folded_const(w):
            errs.append("unsupported mixed types in FULLY_CONNECTED operator")
        return _first(*errs, _activation(v))
    if c == Op.BATCH_MATMUL:
        a, b = v.input(0), v.input(1)
        # B is "channelwise int8": symmetric (zero point 0); float A with int8 B is quantized
        # dynamically.
        dq = dtype(a) == T.FLOAT32 and dtype(b) == T.INT8
        errs = [_f32_or_q8(v, a, opts), _f32_or_q8(v, y, opts),
                _weights(v, b, rank(b) - 1, opts) if dtype(b) != T.UINT8 else
                f"unsupported type UINT8 in {v.role(b)} tensor"]
        if dtype(b) == T.INT8 and is_quantized(b) and \
                np.any(np.asarray(b.quantization.zero_point) != 0):
            errs.append("unsupported non-zero zero point in input 1 tensor of BATCH_MATMUL")
        if dtype(a) != dtype(b) and not dq:
            errs.append("unsupported mixed types in BATCH_MATMUL operator")
        if rank(a) < 2 or rank(b) < 2:
            errs.append("Unsupported number of dimensions, must be at least 2")
        return _first(*errs)
    if c == Op.SOFTMAX:
        beta = float(v.opt("beta", 1.0))
        return _first(_f32(v, x), _f32(v, y),
                      None if beta == 1.0 else f"unsupported beta value {beta:.7f}")
    if c in REDUCE:
        return _first(_f32_or_q8(v, x, opts), _f32_or_q8(v, y, opts),
                      _static(v, v.input(1), "axes"))
    if c == Op.STRIDED_SLICE:
        o = v.options
        if o.ellipsis_mask or o.new_axis_mask or o.shrink_axis_mask:
            return no("unsupported ellipsis, new-axis or shrink-axis mask in STRIDED_SLICE")
        params = v.op.inputs[1:4]
        errs = [_static(v, t, "parameter") for t in params]
        errs += [None if dtype(t) == T.INT32 and rank(t) == 1 and t.shape[0] == rank(x)
                 else "begin/end/stride tensors must be 1D int32 of the input's rank"
                 for t in params if t is not None]
        st = v.const_value(v.input(3))
        if not any(errs) and (st is None or (st != 1).any()):
            errs.append("STRIDED_SLICE strides must be 1")
        return _first(*errs, _f32_or_q8(v, x, opts), _f32_or_q8(v, y, opts))
    if c == Op.SPLIT:
        n = len(v.op.outputs)
        return _first(None if 2 <= n <= 4 else
                      f"unexpected number of outputs ({n}) in SPLIT node: 2 to 4 supported",
                      _static(v, v.input(0), "axis"), _f32_or_q8(v, v.input(1), opts),
                      *[_f32_or_q8(v, t, opts) for t in v.outputs])
    if c in (Op.SPACE_TO_DEPTH, Op.DEPTH_TO_SPACE) and int(v.opt("block_size", 0)) <= 1:
        return no(f"block size ({v.opt('block_size')}) in {v.name} node must be greater > 1")
    if c in SHAPE_ONLY_Q8:
        errs = [_f32_or_q8(v, t, opts) for t in [x, y]]
        if c == Op.RESHAPE and len(v.op.inputs) > 1 and v.input(1) is not None:
            errs.append(_static(v, v.input(1), "shape"))
        if ((c == Op.RESHAPE and dtype(y) in (T.INT8, T.UINT8)) or
                (c == Op.CONCATENATION and dtype(y) == T.UINT8)) and \
                is_quantized(y) and not any(errs):
            # Quantized copies need identical quantization on both sides (RESHAPE: int8 and
            # uint8; CONCATENATION: uint8).
            for t in v.inputs[:1] if c == Op.RESHAPE else v.inputs:
                if is_quantized(t) and (scale(t) != scale(y) or
                                        zero_point(t) != zero_point(y)):
                    errs.append(f"mismatching quantization across the input and the output "
                                f"for {v.name} operator")
                    break
        if c == Op.RESIZE_BILINEAR:
            errs.append(_static(v, v.input(1), "size"))
        if c in (Op.PAD, Op.TRANSPOSE, Op.EXPAND_DIMS):
            errs.append(_static(v, v.input(1), "parameter"))
        if c in (Op.SLICE, Op.STRIDED_SLICE):
            errs += [_static(v, t, "parameter") for t in v.inputs[1:]]
        if c == Op.CONCATENATION:
            if not 2 <= len(v.inputs) <= 5:
                errs.append(f"unexpected number of inputs ({len(v.inputs)}) in "
                            "CONCATENATION node")
            errs += [_f32_or_q8(v, t, opts) for t in v.inputs]
        return _first(*errs)
    if c == Op.CUSTOM and v.op.opcode.custom_code in (
            "Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D"):
        return _first(*[_f32(v, t) for t in v.inputs[:1] + v.outputs[:1]])
    if c in (Op.VAR_HANDLE, Op.READ_VARIABLE, Op.ASSIGN_VARIABLE):
        if not opts["variable_ops"]:
            return no("variable ops are disabled (TFLITE_XNNPACK_DELEGATE_FLAG_VARIABLE_"
                      "OPERATORS not set)")
        return OK
    return no(UNSUPPORTED.format(op=v.name))


def finalize(views: list[OpView], verdicts: list[Verdict], opts: dict[str, Any]) -> None:
    """Static unpacking nodes (DEQUANTIZE of a constant float16/int8 tensor to float32,
    DENSIFY of a sparse constant, or a DEQUANTIZE of such a DENSIFY's output) join the delegate
    only when every consumer is delegated."""
    quasi: set[int] = set()
    for v in views:
        if _is_static_unpack(v, quasi):
            quasi.add(id(v.output(0)))
    for i, v in enumerate(views):
        if id(v.output(0)) not in quasi:
            continue
        y = v.output(0)
        users = [u for u in views if any(t is y for t in u.op.inputs)]
        if users and all(verdicts[u.index].supported for u in users):
            verdicts[i] = OK
        else:
            verdicts[i] = no("static unpacking node feeds a node XNNPACK does not delegate")


def _is_static_unpack(v: OpView, quasi: set[int]) -> bool:
    x, y = v.input(0), v.output(0)
    if x is None or y is None or len(v.inputs) != 1 or len(v.outputs) != 1:
        return False
    if v.code == Op.DEQUANTIZE:
        return x.sparsity is None and (x.is_constant or id(x) in quasi) and \
            dtype(y) == T.FLOAT32 and \
            (dtype(x) == T.FLOAT16 or (dtype(x) == T.INT8 and is_quantized(x)))
    if v.code == Op.DENSIFY:
        return x.is_constant and x.sparsity is not None and dtype(x) == dtype(y) and \
            dtype(x) in (T.FLOAT16, T.INT8, T.FLOAT32)
    return False
