"""The Hexagon DSP delegate, as ``IsNodeSupportedByHexagon`` (hexagon ``utils.cc``) decides.

Hexagon runs 8-bit quantized ops only (uint8 or int8 inputs), with tensors of rank at most 4,
op versions from an allow-list, and per-op limits (strides <= 3, fused activations limited to
ReLU family, constant paddings/axes/sizes, ...). The delegate itself logs no per-op reason, so
each rejection here names the rule that failed, in the words of the delegate's README where it
has them. Defaults: ``max_delegated_partitions=1``, ``min_nodes_per_partition=2``.
"""

from __future__ import annotations

from typing import Any

from workbench.ir.ops import Op

from ._common import OK, OpView, T, Verdict, dtype, no, rank

OPTIONS: dict[str, Any] = {}
DEFAULTS: dict[str, Any] = {"min_nodes_per_partition": 2, "max_delegated_partitions": 1,
                            "allows_dynamic_tensors": False, "fold_dequant": ""}

Q8 = (T.UINT8, T.INT8)
RANK = "Hexagon only supports ops that have inputs/outputs of <= 4 dimensions."
NOT_SUPPORTED = "Operation is not supported by the Hexagon delegate."
TYPES = "Input types not supported: Hexagon runs 8-bit quantized (uint8/int8) ops only."

_V2 = {Op.ADD, Op.ARG_MAX, Op.ARG_MIN, Op.AVERAGE_POOL_2D, Op.CONCATENATION,
       Op.L2_NORMALIZATION, Op.LOGISTIC, Op.MAXIMUM, Op.MAX_POOL_2D, Op.MEAN, Op.MINIMUM,
       Op.MIRROR_PAD, Op.MUL, Op.PACK, Op.PAD, Op.QUANTIZE, Op.RELU6, Op.RESIZE_BILINEAR,
       Op.RESIZE_NEAREST_NEIGHBOR, Op.SLICE, Op.SOFTMAX, Op.SPACE_TO_DEPTH, Op.SPLIT,
       Op.STRIDED_SLICE, Op.SUB, Op.TANH, Op.TRANSPOSE, Op.TRANSPOSE_CONV}
_SUPPORTED = _V2 | {Op.RELU, Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED,
                    Op.HARD_SWISH, Op.RESHAPE, Op.NEG, Op.DEPTH_TO_SPACE}
_RELU_OR_NONE = (0, 1, 2, 3)  # NONE, RELU, RELU_N1_TO_1, RELU6


def _version_ok(c: int, ver: int) -> tuple[bool, str]:
    if c in _V2:
        return ver <= 2, "<= 2"
    if c == Op.RELU:
        return ver == 2, "== 2 (int8)"
    if c in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D):
        return ver <= 3, "<= 3"
    if c == Op.FULLY_CONNECTED:
        return ver <= 4, "<= 4"
    return ver == 1, "== 1"


def _types(v: OpView, per_input: list[tuple[int, ...]]) -> str | None:
    # Exactly as many inputs as listed; omitted optional inputs are skipped.
    if len(v.op.inputs) != len(per_input):
        return f"{v.name} expects {len(per_input)} inputs, node has {len(v.op.inputs)}."
    for i, allowed in enumerate(per_input):
        t = v.op.inputs[i]
        if t is not None and dtype(t) not in allowed:
            return TYPES if allowed == Q8 else \
                f"Input {i} type {t.type_name} not supported by the Hexagon delegate."
    return None


def _act(v: OpView, relu_ok: bool = True) -> str | None:
    a = v.activation
    if relu_ok and a in _RELU_OR_NONE:
        return None
    if not relu_ok and a == 0:
        return None
    return "Fused activation not supported by the Hexagon delegate " + \
        ("(only ReLU family)." if relu_ok else "(no activation allowed).")


def check(v: OpView, opts: dict[str, Any]) -> Verdict:
    """Hexagon's verdict for one node."""
    c, o = v.code, v.options
    for t in v.inputs + v.outputs:
        if rank(t) > 4:
            return no(RANK)
    if c not in _SUPPORTED:
        return no(NOT_SUPPORTED)
    ok, rule = _version_ok(c, v.version)
    if not ok:
        return no(f"Op version {v.version} not supported by the Hexagon delegate "
                  f"(needs {rule}).")
    err: str | None = None
    if c in (Op.ADD, Op.MUL, Op.SUB):
        err = _types(v, [Q8, Q8]) or _act(v)
    elif c == Op.MEAN:
        err = _types(v, [Q8, (T.INT32,)]) or \
            (None if v.is_const(v.input(1)) else "Mean axes must be constant.")
    elif c == Op.MIRROR_PAD:
        err = _types(v, [Q8, (T.INT32,)]) or \
            (None if v.is_const(v.input(1)) else "Paddings must be constant.")
    elif c == Op.PAD:
        if len(v.op.inputs) != 2:
            err = "Only supports 0 padding (no constant_values input)."
        else:
            err = _types(v, [Q8, (T.INT32,)]) or \
                (None if v.is_const(v.input(1)) else "Paddings must be constant.")
    elif c == Op.FULLY_CONNECTED:
        err = _types(v, [Q8, Q8, (T.INT32,)])
        b = v.input(2)
        if not err and b is not None and not v.is_const(b):
            err = "FullyConnected bias must be constant."
        if not err:
            err = _act(v)
        if not err and o.keep_num_dims:
            err = "FullyConnected with keep_num_dims is not supported."
        if not err and o.weights_format != 0:
            err = "Only the default FullyConnected weights format is supported."
    elif c in (Op.CONCATENATION, Op.PACK):
        if any(dtype(t) not in Q8 for t in v.inputs):
            err = TYPES
    elif c == Op.MAX_POOL_2D or c == Op.AVERAGE_POOL_2D:
        err = _types(v, [Q8]) or _act(v, relu_ok=False)
    elif c == Op.TRANSPOSE_CONV:
        err = _types(v, [(T.INT32,), Q8, Q8])
        if not err and (o.stride_h > 3 or o.stride_w > 3):
            err = "TransposeConv2D stride height/width must be <= 3."
    elif c == Op.CONV_2D:
        err = _types(v, [Q8, Q8, (T.INT32,)]) or _act(v)
        if not err and (o.stride_h > 3 or o.stride_w > 3):
            err = "Conv2D stride width/height must be <= 3."
        if not err and (o.dilation_h_factor != 1 or o.dilation_w_factor != 1):
            err = "Conv2D dilation is not supported."
    elif c == Op.DEPTHWISE_CONV_2D:
        err = _types(v, [Q8, Q8, (T.INT32,)])
        dil = o.dilation_h_factor != 1 or o.dilation_w_factor != 1
        x = v.input(0)
        if not err and dil and (o.stride_h != 1 or o.stride_w != 1):
            err = "DepthwiseConv2D dilation is supported only when stride == 1."
        if not err and not (o.depth_multiplier == 1 or
                            (not dil and rank(x) == 4 and x.shape[3] == 1)):
            err = "DepthwiseConv2D depth_multiplier must be 1 (or input depth 1)."
        if not err:
            err = _act(v)
        if not err and (o.stride_h > 3 or o.stride_w > 3):
            err = "DepthwiseConv2D stride height/width must be <= 3."
    elif c == Op.RESHAPE:
        if len(v.op.inputs) > 2 or dtype(v.input(0)) not in Q8:
            err = TYPES
    elif c in (Op.SOFTMAX, Op.HARD_SWISH, Op.RELU, Op.RELU6, Op.TANH, Op.LOGISTIC, Op.NEG,
               Op.SPACE_TO_DEPTH, Op.DEPTH_TO_SPACE, Op.QUANTIZE):
        err = _types(v, [Q8])
    elif c == Op.RESIZE_NEAREST_NEIGHBOR:
        err = _types(v, [Q8, (T.INT32,)]) or \
            (None if v.is_const(v.input(1)) else "Resize size must be constant.")
    elif c == Op.L2_NORMALIZATION:
        err = _types(v, [Q8]) or _act(v, relu_ok=False)
    elif c in (Op.ARG_MAX, Op.ARG_MIN, Op.TRANSPOSE):
        err = _types(v, [Q8, (T.INT32,)])
    elif c == Op.SPLIT:
        err = _types(v, [(T.INT32,), Q8]) or \
            (None if v.is_const(v.input(0)) else "Split axis must be constant.")
    elif c == Op.RESIZE_BILINEAR:
        err = _types(v, [Q8, (T.INT32,)])
        size = v.const_value(v.input(1)) if not err else None
        if not err and size is None:
            err = "Resize size must be constant."
        elif not err and (size.size != 2 or int(size.reshape(-1)[0]) >= 66 or
                          int(size.reshape(-1)[1]) >= 66):
            err = "Resize Bilinear requested size must be <= 65."
    elif c in (Op.MINIMUM, Op.MAXIMUM):
        err = _types(v, [Q8, Q8])
    elif c == Op.SLICE:
        if not (v.is_const(v.input(1)) and v.is_const(v.input(2))):
            err = "Slice begins and sizes must be constant."
        else:
            err = _types(v, [Q8, (T.INT32, T.INT64), (T.INT32, T.INT64)])
    elif c == Op.STRIDED_SLICE:
        err = _types(v, [Q8, (T.INT32,), (T.INT32,), (T.INT32,)])
        if not err and not all(v.is_const(t) for t in v.inputs[1:4]):
            err = "Strided Slice begin/end/strides must be constant."
        if not err and (o.ellipsis_mask or o.new_axis_mask):
            err = "Strided Slice with ellipsis or new-axis mask is not supported."
    return no(err) if err else OK
