"""The NNAPI delegate (Android), as ``NNAPIDelegateKernel::Validate`` decides per node.

Rules depend on the device's Android API level (27 = NNAPI 1.0, 28 = 1.1, 29 = 1.2,
30 = 1.3) and on whether an accelerator is named (``accelerator_name``): a few limits are
lifted then. Every failed expectation carries the delegate's own message, e.g. "Android sdk
version less than 29", "OP Version higher than 2", "Input should be Float or Quant8". Below API
27 NNAPI does not exist and nothing is delegated. The delegate keeps the 3 largest partitions by
default (``max_number_delegated_partitions``).

What we cannot know offline: the NNAPI driver's own ``getSupportedOperations`` answer for a
named accelerator; ops the rules accept may still be refused by a particular driver.
"""

from __future__ import annotations

from typing import Any

from workbench.errors import InputError
from workbench.ir.ops import Op

from ._common import (
    OK,
    OpView,
    T,
    Verdict,
    dtype,
    is_quantized,
    no,
    per_channel,
    rank,
    scale,
    zero_point,
)

OPTIONS: dict[str, Any] = {
    "android_api": 30,
    # StatefulNnApiDelegate::Options::accelerator_name (None: let NNAPI choose).
    "accelerator_name": None,
    # Accelerators the device exposes (None: unknown, assume a real one). With only
    # "nnapi-reference" (NNAPI's CPU implementation) and disallow_nnapi_cpu, nothing runs.
    "device_accelerators": None,
    # Options::disallow_nnapi_cpu, on by default.
    "disallow_nnapi_cpu": True,
}
DEFAULTS: dict[str, Any] = {"min_nodes_per_partition": 1, "max_delegated_partitions": 3,
                            "allows_dynamic_tensors": False, "fold_dequant": ""}

NNAPI10, NNAPI11, NNAPI12, NNAPI13 = 27, 28, 29, 30


def validate(opts: dict[str, Any]) -> None:
    """Reject option values the delegate could not be given."""
    api = opts["android_api"]
    if isinstance(api, bool) or not isinstance(api, int) or not 1 <= api <= 100:
        raise InputError(f"android_api must be an Android API level (e.g. 29), got {api!r}")
    name = opts["accelerator_name"]
    if name is not None and not isinstance(name, str):
        raise InputError(f"accelerator_name must be a string or None, got {name!r}")
    acc = opts["device_accelerators"]
    if acc is not None and (isinstance(acc, str) or
                            not all(isinstance(a, str) for a in acc)):
        raise InputError(f"device_accelerators must be a list of names or None, got {acc!r}")
    if name is not None and acc is not None and name not in acc:
        raise InputError(f"accelerator_name {name!r} is not among the device's accelerators "
                         f"{list(acc)}")

_TN = {T.FLOAT16: "kTfLiteFloat16", T.FLOAT32: "kTfLiteFloat32", T.INT32: "kTfLiteInt32",
       T.UINT8: "kTfLiteUInt8", T.INT8: "kTfLiteInt8", T.BOOL: "kTfLiteBool",
       T.INT64: "kTfLiteInt64"}


class _V:
    """Collects the first failed expectation, like NNAPI's OpValidationContext."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def expect(self, cond: bool, msg: str) -> bool:
        if not cond:
            self.errors.append(msg)
        return bool(cond)

    def max_version(self, v: int, mx: int) -> None:
        self.expect(v <= mx, f"OP Version higher than {mx}")

    def op_version(self, v: int, mx: int) -> None:
        self.expect(v <= mx, f"OP Version different from {mx}")

    def min_sdk(self, api: int, mn: int) -> None:
        self.expect(api >= mn, f"Android sdk version less than {mn}")

    def type_in(self, t: int | None, *allowed: int) -> None:
        self.expect(t in allowed, ", ".join(_TN[a] for a in allowed))


def _is_float(t) -> bool:
    return dtype(t) == T.FLOAT32


def _is_q(t) -> bool:
    return dtype(t) in (T.UINT8, T.INT8)


def _hybrid(v: OpView) -> bool:
    # Float activations with 8-bit weights (dynamic-range quantized).
    x = v.input(0)
    w = v.input(1) if v.code in (Op.CONV_2D, Op.FULLY_CONNECTED, Op.DEPTHWISE_CONV_2D) else \
        v.input(2 if v.code == Op.LSTM and len(v.op.inputs) == 5 else 4)
    return _is_float(x) and w is not None and _is_q(w)


def _restricted_scales(val: _V, v: OpView) -> None:
    x, w, y = v.input(0), v.input(1), v.output(0)
    if is_quantized(x) and is_quantized(w) and is_quantized(y):
        val.expect(scale(x) * scale(w) < scale(y),
                   "When using NN API version 1.0 or 1.1, input_scale * filter_scale < "
                   "output_scale.")


def check(v: OpView, opts: dict[str, Any]) -> Verdict:
    """NNAPI's verdict for one node."""
    api = int(opts["android_api"])
    accel = bool(opts["accelerator_name"])
    if api < NNAPI10:
        return no(f"NNAPI is not available below Android API {NNAPI10} (device has {api}).")
    acc = opts["device_accelerators"]
    if acc is not None and not accel and opts["disallow_nnapi_cpu"] and api >= NNAPI12 and \
            not [a for a in acc if a != "nnapi-reference"]:
        # Only NNAPI's CPU reference implementation exists and the delegate refuses it.
        return no("Though NNAPI delegate is explicitly applied, the model graph will not be "
                  "executed by the delegate (only nnapi-reference is available and "
                  "disallow_nnapi_cpu is set).")
    val = _V()
    c, ver = v.code, v.version
    x, y = v.input(0), v.output(0)
    tx = dtype(x)
    o = v.options

    def float_or_q8() -> None:
        val.expect(tx == T.FLOAT32 or _is_q(x), "Input should be Float or Quant8")

    def float_only() -> None:
        val.expect(tx == T.FLOAT32, "Input should be Float")

    def float_or_u8() -> None:
        val.expect(tx in (T.FLOAT32, T.UINT8), "Input should be Float or UINT8")

    if c in (Op.ADD, Op.MUL):
        val.max_version(ver, 3 if (c == Op.MUL and accel) else 2)
        if api >= NNAPI13:
            val.expect(tx == T.FLOAT32 or _is_q(x) or tx == T.INT32,
                       "Input should be Float, Quant8, or Int32")
            if tx == T.INT32:
                val.expect(v.activation == 0, "No activation function supported")
        else:
            float_or_q8()
    elif c in (Op.ARG_MAX, Op.ARG_MIN):
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT16, T.FLOAT32, T.INT32, T.UINT8, T.INT8)
        ax = v.input(1)
        if dtype(ax) == T.INT64:
            d = v.const_value(ax)
            val.expect(d is not None and -2**31 <= int(d.reshape(-1)[0]) < 2**31,
                       "NNAPI only supports axis as int32. If the axis type is int64 and "
                       "constant we can convert it to int32 if the value isn't too large.")
        else:
            val.expect(dtype(ax) == T.INT32, "Axis should be Int32")
        val.expect(int(getattr(o, "output_type", T.INT64)) == T.INT32,
                   "NNAPI only supports int32 output.")
    elif c == Op.AVERAGE_POOL_2D:
        val.max_version(ver, 2)
        float_or_q8()
        if _is_q(x):
            val.expect(accel or o.filter_width * o.filter_height <= 256,
                       "Large filter window would overflow on the reference CPU path")
    elif c == Op.MAX_POOL_2D:
        val.max_version(ver, 2)
        float_or_q8()
    elif c == Op.L2_POOL_2D:
        val.op_version(ver, 1)
        float_only()
        if api < NNAPI12:
            val.expect(v.activation == 0, "Before NNAPI 1.2 fused activation for l2_pool may "
                       "not be supported.")
    elif c == Op.CONV_2D:
        val.max_version(ver, 5)
        if api < NNAPI12:
            val.expect(not _hybrid(v), "Hybrid operators not supported before NNAPI 1.2")
            float_or_u8()
            val.expect(not per_channel(v.input(1)),
                       "Per-channel quantized convolution not supported before NNAPI 1.2.")
            if tx == T.UINT8:
                _restricted_scales(val, v)
        val.expect(len(v.op.inputs) == 3 and v.input(2) is not None,
                   "Conv2D with omitted bias not supported")
        if o.dilation_w_factor != 1 or o.dilation_h_factor != 1:
            val.expect(api >= NNAPI12, "NNAPI supports dilated Conv2D since NNAPI 1.2.")
    elif c == Op.DEPTHWISE_CONV_2D:
        val.max_version(ver, 3)
        if api < NNAPI12:
            float_or_u8()
            if tx == T.UINT8:
                _restricted_scales(val, v)
            val.expect(o.dilation_w_factor == 1 and o.dilation_h_factor == 1,
                       "dilation_width_factor and dilation_height_factor expected to be equal "
                       "to 1")
    elif c == Op.FULLY_CONNECTED:
        val.max_version(ver, 5)
        val.expect(dtype(y) != T.INT16, "Unsupported output of type kTfLiteInt16")
        if api < NNAPI12:
            val.expect(not _hybrid(v), "Hybrid operators not supported before NNAPI 1.2")
            float_or_u8()
            if tx == T.UINT8:
                _restricted_scales(val, v)
        if o.keep_num_dims:
            val.min_sdk(api, NNAPI13)
    elif c == Op.HARD_SWISH:
        float_or_q8()
    elif c == Op.SOFTMAX:
        val.op_version(ver, 2)
        float_or_q8()
        val.expect(dtype(y) in (T.FLOAT32, T.UINT8, T.INT8),
                   "Output type should be one of kTfLiteFloat32, kTfLiteUInt8, kTfLiteInt8.")
        val.expect(rank(x) <= 4, "Input rank should be <= 4")
        if api < NNAPI12:
            val.expect(rank(x) in (2, 4), "Before API level 29 only 2D and 4D input tensors "
                       "were supported.")
    elif c == Op.RESHAPE:
        val.op_version(ver, 1)
        float_or_q8()
        if len(v.op.inputs) >= 2 and v.input(1) is not None:
            val.expect(v.is_const(v.input(1)), "The shape input tensor must be constant.")
        else:
            ns = tuple(getattr(o, "new_shape", None) or ())
            n = 0 if ns in ((), (0,)) else len(ns)
            val.expect(n > 0, "New shape rank should be > 0")
    elif c in (Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR):
        val.max_version(ver, 3)
        if c == Op.RESIZE_BILINEAR:
            val.expect(rank(x) == 4, "Input should have rank 4")
        else:
            val.min_sdk(api, NNAPI12)
        float_or_q8()
        val.expect(len(v.op.inputs) >= 2, "Expected at least 2 inputs")
        if len(v.op.inputs) >= 2:
            val.expect(v.is_const(v.input(1)), "The size input tensor must be constant.")
        if c == Op.RESIZE_BILINEAR and api < NNAPI12:
            val.expect(rank(y) == 4 and y.shape[1] == y.shape[2],
                       "Require width == height due to driver differences in NNAPI < 1.2")
        if api <= NNAPI12:
            val.expect(not o.align_corners, "NNAPI does not support align_corners == true.")
            val.expect(not o.half_pixel_centers,
                       "NNAPI does not support half_pixel_centers == true.")
        if c == Op.RESIZE_BILINEAR and api < NNAPI12:
            val.expect(tx == T.FLOAT32, "NNAPI 1.0 & 1.1 only supports float input.")
    elif c == Op.SQUEEZE:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI11)
        if api == NNAPI11:
            val.expect(bool(getattr(o, "squeeze_dims", None)),
                       "NNAPI 1.1 does not support null squeeze_dims properly.")
    elif c == Op.UNIDIRECTIONAL_SEQUENCE_LSTM:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.expect(not (_is_float(x) and _is_q(v.input(4))),
                   "Hybrid version of this op is not supported by NN API.")
        val.expect(len(v.op.inputs) in (20, 24), "Supporting only operation with 20 or 24 "
                   "inputs")
    elif c == Op.L2_NORMALIZATION:
        val.max_version(ver, 2)
        if api < NNAPI12:
            float_only()
            val.expect(rank(x) == 4, "Expected 4 inputs")
        val.expect(v.activation == 0, "Expected no activation")
    elif c == Op.LOCAL_RESPONSE_NORMALIZATION:
        val.op_version(ver, 1)
    elif c == Op.LSH_PROJECTION:
        val.op_version(ver, 1)
        if int(getattr(o, "type", 0)) == 1:  # SPARSE
            val.expect(api >= NNAPI12, "NNAPI does not support sparse projection correctly "
                       "pre-Q")
            val.expect(len(v.op.inputs) == 2, " NNAPI does not support weights for sparse "
                       "projects.")
    elif c == Op.CONCATENATION:
        val.max_version(ver, 2)
        val.expect(v.activation == 0, "No activation function supported")
        val.expect(rank(x) <= 4, "Input rank should be less than 4")
        val.type_in(tx, T.FLOAT16, T.FLOAT32, T.UINT8, T.INT8)
        if tx == T.UINT8 and api < NNAPI12:
            first = (scale(x), zero_point(x)) if is_quantized(x) else None
            for t in v.inputs[1:]:
                q = (scale(t), zero_point(t)) if is_quantized(t) else None
                if not val.expect(q == first, "NNAPI 1.0-1 only supported concatenating "
                                  "quantized tensor of the same scale and offset."):
                    break
    elif c == Op.DEQUANTIZE:
        if api >= NNAPI13 and tx == T.FLOAT16 and not x.is_constant:
            return OK
        val.expect(ver in (1, 2), "Supported op versions are 1 and 2 only")
        if api < NNAPI12:
            val.type_in(tx, T.UINT8)
        else:
            val.type_in(tx, T.UINT8, T.INT8)
            if api == NNAPI12 and tx == T.INT8 and is_quantized(x):
                val.expect(zero_point(x) == 0, "NN API supports int8 type since version 1.2 "
                           "but only for symmetric quantization.")
    elif c == Op.DENSIFY:
        if api >= NNAPI13 and x.is_constant:
            return OK
        return no("DENSIFY is delegated only for constant inputs from NNAPI 1.3 (API 30).")
    elif c == Op.FLOOR:
        val.op_version(ver, 1)
    elif c in (Op.RELU, Op.RELU_N1_TO_1, Op.RELU6, Op.LOGISTIC):
        val.max_version(ver, 2)
        float_or_q8()
    elif c == Op.TANH:
        val.max_version(ver, 2)
        val.expect(tx == T.FLOAT32 or (_is_q(x) and api >= NNAPI12),
                   " NNAPI only support float tanh.")
    elif c == Op.SUB:
        val.max_version(ver, 3)
        val.expect((api >= NNAPI11 and tx == T.FLOAT32) or (api >= NNAPI12 and _is_q(x)) or
                   (api >= NNAPI13 and tx == T.INT32), "NNAPI only support float sub.")
        if tx == T.INT32:
            val.expect(v.activation == 0, "No activation function supported")
        val.expect(rank(x) <= 4 and rank(v.input(1)) <= 4, "Input rank must be <= 4")
    elif c == Op.DIV:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI11)
        val.expect(tx == T.FLOAT32, "NNAPI only support float div.")
    elif c in (Op.PAD, Op.PADV2):
        val.max_version(ver, 2)
        float_or_q8()
        val.min_sdk(api, NNAPI11)
        val.expect(0 not in tuple(x.shape), "NN API pad ops do not support input tensors with "
                   "no elements")
        val.expect(len(v.op.inputs) >= 2, "Expecting at least 2 inputs")
        if len(v.op.inputs) == 3:
            val.expect(api >= NNAPI12, "Specification of the padding value is supported from "
                       "NNAPI 1.2.")
        elif api < NNAPI12:
            val.expect(tx == T.FLOAT32, "Only Float32 inputs are supported before NNAPI 1.2")
    elif c == Op.UNIDIRECTIONAL_SEQUENCE_RNN:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.expect(not (_is_float(x) and _is_q(v.input(1))),
                   "Hybrid version of this op is not supported by NN API.")
    elif c == Op.SPACE_TO_BATCH_ND:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI11)
    elif c == Op.BATCH_TO_SPACE_ND:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI11)
        crops = v.const_value(v.input(2))
        val.expect(crops is not None and crops.size == 4 and not crops.any(),
                   "All crops should be 0.")
    elif c == Op.STRIDED_SLICE:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI11)
    elif c == Op.TRANSPOSE:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI11)
        val.expect(len(v.op.inputs) > 1 and v.is_const(v.input(1)),
                   "Dynamically-sized tensors not supported.")
    elif c in (Op.ABS, Op.EXP, Op.LOG, Op.RSQRT, Op.POW, Op.SIN, Op.SQRT):
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        float_only()
    elif c == Op.SLICE:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.INT32, T.UINT8, T.INT8)
        val.expect(dtype(v.input(1)) == T.INT32, "Begin type should be Int32")
        val.expect(dtype(v.input(2)) == T.INT32, "Size type should be Int32")
    elif c == Op.TRANSPOSE_CONV:
        val.max_version(ver, 3)
        val.min_sdk(api, NNAPI12)
        val.expect(len(v.op.inputs) > 1 and v.is_const(v.input(0)) and
                   v.is_const(v.input(1)), "Dynamically-sized tensors not supported.")
    elif c == Op.RNN:
        val.op_version(ver, 1)
        val.expect(len(v.op.inputs) == 5, "Expected 5 input")
        if len(v.op.inputs) >= 2:
            val.expect(dtype(v.input(1)) == T.FLOAT32, "NNAPI only support float32 weights.")
    elif c == Op.SPACE_TO_DEPTH:
        val.max_version(ver, 2)
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8)
    elif c == Op.SVDF:
        val.op_version(ver, 1)
        val.expect(len(v.op.inputs) == 5, "Expected input of rank 5")
        if len(v.op.inputs) >= 2:
            val.expect(dtype(v.input(1)) == T.FLOAT32, "NNAPI only support float32 weights.")
        val.expect(api >= NNAPI11, "SVDF does not support rank > 1 on NNAPI 1.0.")
    elif c == Op.LSTM:
        _lstm(val, v, api)
    elif c == Op.MEAN:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI11)
        if api >= NNAPI12:
            val.expect(tx == T.FLOAT32 or _is_q(x), "Expected Float32 or Quantized input")
        else:
            val.expect(tx == T.FLOAT32, "Expected Float32 input")
        val.expect(rank(y) > 0, "NNAPI does not support generating a scalar as output for "
                   "MEAN.")
    elif c == Op.EMBEDDING_LOOKUP:
        val.op_version(ver, 1)
        val.expect(dtype(v.input(1)) == T.FLOAT32, "NNAPI only support float32 values.")
    elif c == Op.HASHTABLE_LOOKUP:
        val.op_version(ver, 1)
        val.expect(dtype(y) == T.FLOAT32, "NNAPI only support float32 output.")
    elif c in (Op.MAXIMUM, Op.MINIMUM):
        val.max_version(ver, 3)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8, T.INT32)
        for t in v.inputs[:2]:
            if rank(t) == 0:
                val.expect(v.is_const(t), "Scalar operand should be constant")
    elif c == Op.CAST:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        if api >= NNAPI13:
            val.type_in(tx, T.FLOAT32, T.INT32, T.UINT8, T.INT8)
            val.expect(dtype(y) in (T.FLOAT32, T.INT32, T.UINT8, T.INT8),
                       "Output type should be one of kTfLiteFloat32, kTfLiteInt32, "
                       "kTfLiteUInt8, kTfLiteInt8.")
        else:
            val.type_in(tx, T.FLOAT32, T.INT32, T.UINT8)
            val.expect(dtype(y) in (T.FLOAT32, T.INT32, T.UINT8),
                       "Output type should be one of kTfLiteFloat32, kTfLiteInt32, "
                       "kTfLiteUInt8.")
    elif c in (Op.LEAKY_RELU, Op.PRELU):
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8)
    elif c == Op.TILE:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.INT8, T.UINT8, T.INT32)
        val.expect(dtype(v.input(1)) == T.INT32, "Multipliers should be Int32")
    elif c in (Op.LOGICAL_OR, Op.LOGICAL_AND, Op.LOGICAL_NOT):
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.expect(tx == T.BOOL, "Input should be bool")
    elif c in (Op.LESS, Op.LESS_EQUAL, Op.GREATER, Op.GREATER_EQUAL, Op.EQUAL, Op.NOT_EQUAL):
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8, T.BOOL, T.INT32)
    elif c == Op.NEG:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.INT32)
    elif c == Op.TOPK_V2:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.INT32, T.UINT8, T.INT8)
        k = v.input(1)
        val.expect(dtype(k) == T.INT32 and v.is_const(k),
                   "K param should be a constant of type Int32")
    elif c == Op.SELECT:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(dtype(v.input(1)), T.FLOAT32, T.INT32, T.UINT8, T.INT8)
        val.expect(tuple(x.shape) == tuple(v.input(1).shape),
                   "Condition and inputs tensors should have the same shape")
    elif c == Op.GATHER:
        val.op_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.FLOAT16, T.INT32, T.UINT8, T.INT8)
        pos = v.input(1)
        val.expect(dtype(pos) == T.INT32, "Positions type should be one of kTfLiteInt32")
        val.expect(rank(pos) != 0, "0-dimension args are not supported by NNAPI.")
    elif c == Op.BIDIRECTIONAL_SEQUENCE_LSTM:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.expect(not (_is_float(x) and _is_q(v.input(4))),
                   "Hybrid version of this op is not supported by NN API.")
    elif c == Op.EXPAND_DIMS:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.FLOAT16, T.INT32, T.UINT8, T.INT8)
        ax = v.input(1)
        val.expect(dtype(ax) == T.INT32 and v.is_const(ax),
                   "NNAPI only supports constant int32 axis tensor.")
    elif c == Op.SPLIT:
        val.op_version(ver, 3)
        val.min_sdk(api, NNAPI12)
        data = v.input(1)
        if api >= NNAPI13:
            val.type_in(dtype(data), T.FLOAT32, T.UINT8, T.INT8, T.INT32)
        else:
            val.type_in(dtype(data), T.FLOAT32, T.UINT8, T.INT32)
        val.expect(dtype(x) == T.INT32 and v.is_const(x),
                   "NNAPI only supports constant int32 axis tensor.")
    elif c == Op.SPLIT_V:
        val.op_version(ver, 2)
        val.min_sdk(api, NNAPI13)
        sizes, ax = v.input(1), v.input(2)
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8, T.INT32)
        ok_sizes = dtype(sizes) == T.INT32 and rank(sizes) == 1 and v.is_const(sizes)
        ok_axis = dtype(ax) == T.INT32 and v.is_const(ax)
        val.expect(ok_sizes, "NNAPI only supports constant int32 size_splits vector.")
        val.expect(ok_axis, "NNAPI only supports constant int32 axis tensor.")
        if ok_sizes and ok_axis:
            s = v.const_value(sizes)
            val.expect(s is not None and (s != 0).all(),
                       "NNAPI only supports non-zero split sizes.")
    elif c == Op.LOG_SOFTMAX:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.expect(tx == T.FLOAT32, "Input should be Float32.")
    elif c == Op.QUANTIZE:
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.expect(tx == T.FLOAT32 or _is_q(x), "Value should be quantized or Float32.")
        if _is_q(x):
            val.expect(is_quantized(x) and scale(x) > 0, "Quantization scale should be > 0.")
        if api < NNAPI13:
            val.expect(dtype(y) == T.UINT8, "Output should be kTfLiteUInt8.")
        else:
            val.expect(dtype(y) in (T.UINT8, T.INT8), "Output should be kTfLiteUInt8.")
        val.expect(is_quantized(y) and scale(y) > 0, "Quantization scale should be > 0.")
    elif c == Op.REDUCE_ANY:
        val.op_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.expect(rank(y) != 0, "NNAPI does not support generating a scalar as output.")
    elif c in (Op.REDUCE_MIN, Op.REDUCE_MAX):
        val.max_version(ver, 2)
        val.min_sdk(api, NNAPI12)
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8)
        val.expect(rank(x) != 0, "NNAPI does not support generating a scalar as output.")
    elif c == Op.DEPTH_TO_SPACE:
        val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8)
    elif c in (Op.REDUCE_PROD, Op.SUM):
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI12)
        val.expect(rank(y) != 0, "NNAPI does not support generating a scalar as output")
        val.expect(tx == T.FLOAT32, "NNAPI only supports floating point input.")
    elif c == Op.ELU:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI13)
        val.expect(tx == T.FLOAT32, "NNAPI only supports floating point input.")
    elif c == Op.FILL:
        val.op_version(ver, 1)
        val.min_sdk(api, NNAPI13)
        val.expect(v.is_const(x), "NNAPI doesn't support dynamic dimensions tensor.")
        val.type_in(tx, T.INT32, T.INT64)
        if v.is_const(x):
            val.expect(x.shape and x.shape[0] != 0,
                       "NNAPI doesn't support generating scalars from FILL")
        val.type_in(dtype(v.input(1)), T.FLOAT32, T.INT32, T.INT64)
    elif c == Op.PACK:
        val.op_version(ver, 2)
        val.min_sdk(api, NNAPI13)
        val.type_in(tx, T.INT32, T.FLOAT32, T.INT8)
        val.expect(o.axis != -1 and o.axis != rank(x),
                   "NNAPI does not support axis being the last dimension")
    elif c == Op.SQUARED_DIFFERENCE:
        val.op_version(ver, 2)
        val.min_sdk(api, NNAPI11)
        if api >= NNAPI13:
            val.type_in(tx, T.FLOAT32, T.UINT8, T.INT8, T.INT32)
        elif api >= NNAPI12:
            val.type_in(tx, T.FLOAT32, T.UINT8)
        else:
            val.type_in(tx, T.FLOAT32)
        val.expect(rank(x) <= 4 and rank(v.input(1)) <= 4,
                   "NNAPI does not support input rank greater than 4")
    else:
        return no("Unsupported operation type.")
    return no(val.errors[0]) if val.errors else OK


def _lstm(val: _V, v: OpView, api: int) -> None:
    val.max_version(v.version, 3)
    val.expect(api >= NNAPI11, "NNAPI 1.0 has a bug for optional tensors which would affect "
               "LSTM.")
    basic = len(v.op.inputs) == 5
    w = v.input(2 if basic else 4)
    val.expect(api >= NNAPI12 or not (_is_float(v.input(0)) and _is_q(w)),
               "Hybrid operators not supported before NNAPI 1.2.")
    if basic:
        val.expect(dtype(w) == T.UINT8, "Basic LSTM Kernels support only UINT8 weights")
        x, y = v.input(0), v.output(0)
        val.expect(is_quantized(x) and scale(x) == 1 / 128 and zero_point(x) == 128,
                   "Invalid input quantization")
        val.expect(is_quantized(y) and scale(y) == 1 / 128 and zero_point(y) == 128,
                   "Invalid output quantization")
        val.expect(v.is_const(v.input(2)), "Weights tensor should be constant")
        val.expect(v.is_const(v.input(3)), "Biases tensor should be constant")
        return
    if len(v.op.inputs) == 24:
        val.min_sdk(api, NNAPI12)
    if api >= NNAPI13:
        val.expect(dtype(w) in (T.FLOAT32, T.UINT8, T.INT8),
                   "Weight has to be Float32 or UINT8 or INT8")
    else:
        val.expect(dtype(w) in (T.FLOAT32, T.UINT8), "Weight has to be Float32 or UINT8")
