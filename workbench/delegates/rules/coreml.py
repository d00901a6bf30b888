"""The Core ML delegate (iOS), as ``IsNodeSupportedByDelegate`` (``coreml_delegate.mm``) and
the builders' validators decide.

Core ML takes float models only (the op's first input must be float32), version 1 of each op
(DEPTHWISE_CONV_2D up to 2, FULLY_CONNECTED up to 6), constant weights, Core ML's broadcast
shapes for ADD/MUL, channel-only concatenation, H/W-only MEAN and padding; RESHAPE only when
targeting Core ML 2. Float16 weights behind a DEQUANTIZE are read as constants
(FP16GraphPartitionHelper). The delegate is not created at all on devices without a Neural
Engine unless ``enabled_devices="all"``. It logs no per-op reason; each rejection here names the
rule that failed, in the words of the delegate's README or kernel log where it has them.
Defaults: unlimited partitions, ``min_nodes_per_partition=2``.
"""

from __future__ import annotations

from typing import Any

from workbench.errors import InputError
from workbench.ir.ops import Op

from ._common import OK, OpView, T, Verdict, dtype, no, rank

OPTIONS: dict[str, Any] = {
    # TfLiteCoreMlDelegateOptions.coreml_version: 2 or 3 (iOS 13+ defaults to 3).
    "coreml_version": 3,
    # "neural_engine" (TfLiteCoreMlDelegateDevicesWithNeuralEngine, the default) or "all".
    "enabled_devices": "neural_engine",
    # Whether the target device has a Neural Engine (A12 or later).
    "has_neural_engine": True,
}
DEFAULTS: dict[str, Any] = {"min_nodes_per_partition": 2, "max_delegated_partitions": None,
                            "allows_dynamic_tensors": False, "fold_dequant": "fp16"}

NOT_SUPPORTED = "Operation is not supported by the Core ML delegate."


def validate(opts: dict[str, Any]) -> None:
    """Reject option values the delegate could not be given."""
    if opts["coreml_version"] not in (2, 3):
        raise InputError(f"coreml_version must be 2 or 3, got {opts['coreml_version']!r}")
    if str(opts["enabled_devices"]).lower() not in ("neural_engine", "all"):
        raise InputError("enabled_devices must be 'neural_engine' or 'all', got "
                         f"{opts['enabled_devices']!r}")
NO_ANE = ("This device does not have Neural Engine, so Core ML delegate will not be enabled. "
          "If you want to run Core ML delegate anyway, set enabled_devices option to "
          "TfLiteCoreMlDelegateAllDevices.")
FLOAT_ONLY = "Core ML delegate supports float models only (input must be float32)."
_ALWAYS = {Op.HARD_SWISH, Op.LOGISTIC, Op.RELU, Op.RELU_N1_TO_1, Op.RELU6, Op.TANH}
_SUPPORTED = _ALWAYS | {Op.ADD, Op.AVERAGE_POOL_2D, Op.CONCATENATION, Op.CONV_2D,
                        Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED, Op.MAX_POOL_2D,
                        Op.MIRROR_PAD, Op.MEAN, Op.MUL, Op.PAD, Op.PADV2, Op.RESHAPE,
                        Op.RESIZE_BILINEAR, Op.SOFTMAX, Op.TRANSPOSE_CONV}


def _4d(shape: tuple) -> tuple:
    return (1,) * (4 - len(shape)) + tuple(shape)


def _broadcastable(v: OpView, a, b) -> bool:
    if rank(a) > 4 or rank(b) > 4:
        return False
    sa, sb = _4d(a.shape), _4d(b.shape)
    if sa[0] != sb[0] and not ((v.is_const(a) and a.num_elements == 1) or
                               (v.is_const(b) and b.num_elements == 1)):
        return False
    if (sa[1], sa[2]) != (sb[1], sb[2]) and (sa[1], sa[2]) != (1, 1) and \
            (sb[1], sb[2]) != (1, 1):
        return False
    return sa[3] == sb[3] or sa[3] == 1 or sb[3] == 1


def _binary(v: OpView) -> str | None:
    a, b = v.input(0), v.input(1)
    for t in (a, b):
        if not (dtype(t) == T.FLOAT32 or (dtype(t) == T.FLOAT16 and v.is_const(t))):
            return FLOAT_ONLY
    if not _broadcastable(v, a, b):
        return ("Only certain shapes are broadcastable: [B, C, H, W], [B, C, 1, 1], "
                "[B, 1, H, W], [B, 1, 1, 1].")
    return None


def _conv(v: OpView) -> str | None:
    if v.activation == 5:
        return "Fused activation SIGN_BIT is not supported."
    w = v.input(1)
    if not v.is_const(w):
        return "Weights and bias should be constant."
    if rank(w) != 4:
        return "Convolution weights tensor must have rank 4."
    if w.shape[1] > 16384 or w.shape[2] > 16384:
        return "Kernel size larger than 16384 is not supported."
    if v.code == Op.TRANSPOSE_CONV:
        return None if v.is_const(v.input(0)) else "Output shape should be constant."
    b = v.input(2)
    if len(v.op.inputs) >= 2 and b is not None and not v.is_const(b):
        return "Weights and bias should be constant."
    return None


def _pad(v: OpView) -> str | None:
    p = v.input(1)
    if not v.is_const(p):
        return "Only constant padding is supported for PAD."
    if rank(p) != 2:
        return "PAD padding tensor must be 2D."
    if tuple(p.shape) != (4, 2):
        return "Only 4D inputs are supported for PAD."
    d = v.const_value(p).reshape(-1)
    if d[0] != 0 or d[1] != 0:
        return "Padding for batch dimension is not supported in PAD."
    if d[6] != 0 or d[7] != 0:
        return "Padding for channel dimension is not supported in PAD."
    return None


def check(v: OpView, opts: dict[str, Any]) -> Verdict:
    """Core ML's verdict for one node."""
    if str(opts["enabled_devices"]).lower() != "all" and not opts["has_neural_engine"]:
        return no(NO_ANE)
    c, o, ver = v.code, v.options, v.version
    if c not in _SUPPORTED:
        return no(NOT_SUPPORTED)
    if ver > 1 and not ((c == Op.DEPTHWISE_CONV_2D and ver <= 2) or
                        (c == Op.FULLY_CONNECTED and ver <= 6)):
        return no(f"Op version {ver} is not supported by the Core ML delegate.")
    x = v.input(2 if c == Op.TRANSPOSE_CONV else 0)
    if dtype(x) != T.FLOAT32:
        return no(FLOAT_ONLY)
    err: str | None = None
    if c in (Op.ADD, Op.MUL):
        err = _binary(v)
    elif c in (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D):
        err = None if v.activation == 0 else "Pooling with a fused activation is not supported."
    elif c == Op.CONCATENATION:
        n = rank(v.input(0))
        if v.activation != 0:
            err = "Concatenation with a fused activation is not supported."
        elif len(v.op.inputs) < 2:
            err = "At least 2 inputs are required."
        elif not ((n == 3 and o.axis in (2, -1)) or (n == 4 and o.axis in (3, -1))):
            err = "Only concatenation by channel (last axis of a 3D/4D tensor) is supported."
    elif c in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.TRANSPOSE_CONV):
        err = _conv(v)
    elif c == Op.FULLY_CONNECTED:
        w, b = v.input(1), v.input(2)
        fl = (T.FLOAT32, T.FLOAT16)
        if o.weights_format != 0:
            err = "Only the default FullyConnected weights format is supported."
        elif dtype(w) not in fl or not v.is_const(w) or \
                (b is not None and (dtype(b) not in fl or not v.is_const(b))):
            err = "Weights and bias should be constant."
        elif rank(x) == 0 or x.shape[-1] != x.num_elements:
            err = ("Only supports single-batch case. Input dimensions should be 1, except the "
                   "last dimension.")
        elif v.activation == 5:
            err = "Fused activation SIGN_BIT is not supported."
    elif c == Op.MIRROR_PAD:
        err = "Only REFLECT mode is supported for MIRROR_PAD." if int(o.mode) != 0 else _pad(v)
    elif c in (Op.PAD, Op.PADV2):
        err = _pad(v)
    elif c == Op.MEAN:
        ax = v.const_value(v.input(1))
        if not getattr(o, "keep_dims", False):
            err = "keep_dims should be true for Mean op."
        elif rank(x) != 4:
            err = "Mean op is only supported for 4D input."
        elif ax is None or any((int(a) + 4) % 4 not in (1, 2) for a in ax.reshape(-1)):
            err = "Mean op should reduce for H and W dimensions."
    elif c == Op.RESHAPE:
        if int(opts["coreml_version"]) >= 3:
            err = ("Only supported when target Core ML version is 2, not supported when "
                   "targeting Core ML 3.")
        elif len(v.op.inputs) == 1 or v.input(1) is None:
            n = len(getattr(o, "new_shape", None) or ())
            err = None if n in (3, 4) else "Reshape target must be 3D or 4D."
        else:
            s = v.input(1)
            if not v.is_const(s):
                err = "Reshape has non-const shape."
            elif not (rank(s) == 1 and dtype(s) == T.INT32 and s.shape[0] in (3, 4)):
                err = "Reshape target must be 3D or 4D."
    elif c == Op.RESIZE_BILINEAR:
        err = None if v.is_const(v.input(1)) else \
            "Output size of ResizeBilinear should be constant."
    elif c == Op.SOFTMAX:
        err = None if float(o.beta) == 1.0 else "Only supports when beta is 1.0."
    return no(err) if err else OK
