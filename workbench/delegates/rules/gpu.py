"""The GPU delegate (OpenCL / OpenGL ES / Metal), as ``TfLiteGpuDelegateV2`` decides.

Per node the delegate (``model_builder.cc`` ``GetOpsToReplace``) asks the op's parser: a
maximum op version ("Max version supported: 2. Requested version 3."), then the compatibility
checker's op rules (``gpu_compatibility.cc``: runtime-input counts, strides, broadcasting,
constant axes, ...); ops with no parser get "Operation is not supported.". A node that passes
must also have only float32/float16 runtime tensors (int8/uint8 too when quantized models are
allowed, the default) of rank at most 4, else "OP is supported, but tensor type/shape isn't
compatible.". Float16 constants behind a DEQUANTIZE are read as constants
(FP16GraphPartitionHelper); those DEQUANTIZE nodes join the first partition when all their
consumers are in it. By default only the largest partition is delegated.
"""

from __future__ import annotations

from typing import Any

from workbench.errors import InputError
from workbench.ir.ops import Op

from ._common import OK, OpView, T, Verdict, dtype, no, rank

OPTIONS: dict[str, Any] = {
    # TFLITE_GPU_EXPERIMENTAL_FLAGS_ENABLE_QUANT is on in TfLiteGpuDelegateOptionsV2Default.
    "allow_quantized": True,
    # FP16 inference (is_precision_loss_allowed / inference_priority MIN_LATENCY): changes cost,
    # not which ops are claimed.
    "precision_loss_allowed": False,
    # GpuCompatibilityFlags::kEnhancedBroadcast (off in the delegate's default path).
    "enhanced_broadcast": False,
    # TfLiteGpuDelegateOptionsV2 excluded ops (builtin names).
    "excluded_ops": (),
}
DEFAULTS: dict[str, Any] = {"min_nodes_per_partition": 1, "max_delegated_partitions": 1,
                            "allows_dynamic_tensors": False, "fold_dequant": "fp16"}

NOT_SUPPORTED = "Operation is not supported."


def validate(opts: dict[str, Any]) -> None:
    """Reject option values the delegate could not be given."""
    ex = opts["excluded_ops"]
    if isinstance(ex, str) or not all(isinstance(n, str) for n in ex):
        raise InputError(f"excluded_ops must be a list of builtin op names, got {ex!r}")
TYPE_SHAPE = "OP is supported, but tensor type/shape isn't compatible."
VERSION = "Max version supported: {max}. Requested version {ver}."
FP16_DEQUANT = ("DEQUANTIZE of float16 weights: folded into the delegate only when all its "
                "consumers are in the first delegated partition.")

_ELEMENTWISE = {Op.ABS, Op.ADD, Op.ADD_N, Op.COS, Op.DIV, Op.EQUAL, Op.ELU, Op.EXP, Op.FLOOR,
                Op.FLOOR_DIV, Op.FLOOR_MOD, Op.GELU, Op.GREATER, Op.GREATER_EQUAL, Op.LESS,
                Op.LESS_EQUAL, Op.LOGISTIC, Op.LOG, Op.LOGICAL_AND, Op.MAXIMUM, Op.MINIMUM,
                Op.MUL, Op.NEG, Op.NOT_EQUAL, Op.POW, Op.RSQRT, Op.SIGN, Op.SIN, Op.SQRT,
                Op.SQUARE, Op.SQUARED_DIFFERENCE, Op.SUB, Op.TANH}
_UNARY = {Op.ABS, Op.CEIL, Op.COS, Op.ELU, Op.EXP, Op.FLOOR, Op.GELU, Op.LOG, Op.LOGISTIC,
          Op.NEG, Op.RSQRT, Op.SIGN, Op.SIN, Op.SQRT, Op.SQUARE, Op.TANH}
_BINARY = {Op.ATAN2, Op.DIV, Op.EQUAL, Op.FLOOR_DIV, Op.FLOOR_MOD, Op.GREATER,
           Op.GREATER_EQUAL, Op.LOGICAL_AND, Op.LESS, Op.LESS_EQUAL, Op.MAXIMUM, Op.MINIMUM,
           Op.NOT_EQUAL, Op.POW, Op.SQUARED_DIFFERENCE, Op.SUB}
_LOGICAL = {Op.GREATER, Op.GREATER_EQUAL, Op.LESS, Op.LESS_EQUAL, Op.EQUAL, Op.NOT_EQUAL}

#: Highest op version each parser accepts (None: the parser checks no version).
MAX_VERSION: dict[int, int | None] = {
    **{c: 2 for c in _ELEMENTWISE}, Op.MUL: 3,
    Op.AVERAGE_POOL_2D: 2, Op.MAX_POOL_2D: 2, Op.BATCH_MATMUL: None, Op.CAST: None,
    Op.CONCATENATION: 2, Op.CONV_2D: 6, Op.CUMSUM: 1, Op.DENSIFY: 1,
    Op.DEPTHWISE_CONV_2D: 6, Op.DEPTH_TO_SPACE: None, Op.DEQUANTIZE: 3,
    Op.FULLY_CONNECTED: 9, Op.GATHER: 1, Op.HARD_SWISH: None, Op.LSTM: 4, Op.MEAN: None,
    Op.MIRROR_PAD: 2, Op.ONE_HOT: 1, Op.PACK: None, Op.PAD: 2, Op.PADV2: 2, Op.PRELU: 1,
    Op.QUANTIZE: 2, Op.REDUCE_MAX: None, Op.REDUCE_MIN: None, Op.REDUCE_PROD: None,
    Op.SUM: None, Op.RELU: 2, Op.RELU6: 2, Op.RELU_N1_TO_1: 2, Op.LEAKY_RELU: 2,
    Op.RESHAPE: 1, Op.RESIZE_BILINEAR: 3, Op.RESIZE_NEAREST_NEIGHBOR: 3, Op.SELECT: 1,
    Op.SELECT_V2: 1, Op.SLICE: 2, Op.SOFTMAX: 2, Op.SPACE_TO_DEPTH: 2, Op.SPLIT: None,
    Op.SPLIT_V: None, Op.STRIDED_SLICE: 4, Op.TILE: None, Op.TRANSPOSE: 4,
    Op.TRANSPOSE_CONV: 3, Op.UNPACK: None,
}
_CUSTOM = {"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D",
           "Resampler"}
# Parsers whose IsSupported accepts without the compatibility checker.
_NO_COMPAT_CHECK = {Op.PRELU, Op.RELU, Op.RELU6, Op.RELU_N1_TO_1, Op.LEAKY_RELU, Op.UNPACK}


def _act(a: int) -> str | None:
    if a == 5:  # SIGN_BIT
        return "TfLiteFusedActivation.kTfLiteActSignBit"
    return None


def _n_runtime(v: OpView) -> int:
    return len(v.runtime_inputs)


def _n_const(v: OpView) -> int:
    return sum(1 for t in v.inputs if v.is_const(t))


def _io(v: OpView, runtime: int, outputs: int) -> str | None:
    r = _n_runtime(v)
    if r != runtime:
        return f"Expected {runtime} runtime input tensor(s), but node has {r} runtime input(s)."
    if len(v.op.outputs) != outputs:
        return (f"Expected {outputs} output tensor(s), but node has {len(v.op.outputs)} "
                "output(s).")
    return None


def _io_const(v: OpView, runtime: int, const: int, outputs: int) -> str | None:
    c = _n_const(v)
    if c != const:
        return f"Expected {const} const input tensor(s), but node has {c} const input(s)."
    return _io(v, runtime, outputs)


def _broadcast(a: tuple, b: tuple, enhanced: bool) -> str | None:
    if len(a) > 1 and len(b) > 1 and len(a) != len(b):
        lo, sh = (a, b) if len(a) >= len(b) else (b, a)
        if enhanced:
            ok = all(x == y or x == 1 or y == 1 for x, y in zip(lo[::-1], sh[::-1]))
        else:
            ok = (len(lo) == 4 and len(sh) == 3 and lo[0] == 1) or \
                (len(lo) == 4 and len(sh) == 2 and lo[0] == 1 and sh == (1, 1)) or \
                (len(lo) == 4 and len(sh) == 2 and lo[0] == sh[0] and lo[3] == sh[1])
        if not ok:
            return (f"Doesn't support broadcasting - input0: [{','.join(map(str, a))}], "
                    f"input1: [{','.join(map(str, b))}]")
    return None


def _axes_const(v: OpView, i: int) -> str | None:
    t = v.input(i)
    if not v.is_const(t):
        return f"{v.name} is only supported with constant axes."
    if dtype(t) != T.INT32:
        return f"{v.name} supports int32 tensor for axes. But node has {t.type_name}"
    return None


def compat(v: OpView, opts: dict[str, Any]) -> str | None:
    """The compatibility checker's verdict (``CheckGpuDelegateCompatibility``): None if OK."""
    c, o = v.code, v.options
    enh = bool(opts["enhanced_broadcast"])
    if c == Op.ADD:
        if len(v.op.inputs) != 2:
            return "ADD requires two input tensors."
        return _broadcast(tuple(v.input(0).shape), tuple(v.input(1).shape), enh)
    if c == Op.ADD_N:
        return None if len(v.op.inputs) == 2 else "ADD_N only supports 2 inputs."
    if c in (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D):
        e = _io(v, 1, 1)
        if e:
            return e
        if o.filter_height <= 0 or o.filter_width <= 0:
            return (f"Incorrect kernel values: kernel_height = {o.filter_height}, "
                    f"kernel_width = {o.filter_width}")
        if o.stride_h <= 0 or o.stride_w <= 0:
            return (f"Incorrect stride values: stride_height = {o.stride_h}, "
                    f"stride_width = {o.stride_w}")
        return _act(v.activation)
    if c == Op.BATCH_MATMUL:
        if len(v.op.inputs) != 2 or len(v.op.outputs) != 1:
            return (f"Expected 2 inputs and 1 output, got: {len(v.op.inputs)} inputs and "
                    f"{len(v.op.outputs)} outputs")
        return None
    if c == Op.CAST:
        e = _io(v, 1, 1)
        if e:
            return e
        a, b = dtype(v.input(0)), dtype(v.output(0))
        fl = (T.FLOAT16, T.FLOAT32)
        if (a == T.BOOL and b in fl) or (a in fl and b == T.BOOL) or \
                (a in (T.FLOAT32, T.INT32) and b in (T.FLOAT32, T.INT32)):
            return None
        return (f"Not supported Cast case. Input type: {v.input(0).type_name} and output "
                f"type: {v.output(0).type_name}")
    if c in (Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.TRANSPOSE_CONV):
        r = _n_runtime(v)
        if r > 2:
            return f"Expected 1 or 2 input tensor(s), but node has {r} runtime inputs."
        if len(v.op.outputs) != 1:
            return f"Expected 1 output tensor(s), but node has {len(v.op.outputs)} runtime outputs."
        if o.stride_h <= 0 or o.stride_w <= 0:
            return (f"Incorrect stride values: stride_height = {o.stride_h}, "
                    f"stride_width = {o.stride_w}")
        if c == Op.TRANSPOSE_CONV:
            return None
        if o.dilation_h_factor <= 0 or o.dilation_w_factor <= 0:
            return (f"Incorrect dilation values: dilation_height = {o.dilation_h_factor}, "
                    f"dilation_width = {o.dilation_w_factor}")
        e = _act(v.activation)
        if e or c == Op.CONV_2D:
            return e
        x, w, y = v.input(0), v.input(1), v.output(0)
        for t, n in ((x, "input"), (w, "filter"), (y, "output")):
            if rank(t) != 4:
                return f"{n}.dims.size != 4"
        dm = o.depth_multiplier
        if x.shape[0] != y.shape[0]:
            return "input.b != output.b"
        if w.shape[3] != y.shape[3]:
            return "filter.i != output.c"
        if y.shape[3] != x.shape[3] * dm:
            return "output.c != input.c * depth_multiplier"
        b = v.input(2)
        if b is not None and b.num_elements != y.shape[3]:
            return "bias.size != output.c"
        if dm != 1 and x.shape[3] != 1:
            return "depth_multiplier != 1 && input.c != 1"
        return None
    if c == Op.CUMSUM:
        x, ax = v.input(0), v.input(1)
        if len(v.op.inputs) != 2:
            return "Expects 2 inputs and 1 output"
        if dtype(x) not in (T.FLOAT16, T.FLOAT32) or dtype(v.output(0)) != dtype(x) or \
                dtype(ax) != T.INT32 or not v.is_const(ax):
            return ("Input/output must be float type and indices must be constant int32 "
                    "type")
        return None
    if c == Op.DENSIFY:
        return _io(v, 0, 1)
    if c in (Op.DEPTH_TO_SPACE, Op.SPACE_TO_DEPTH):
        e = _io(v, 1, 1)
        if e:
            return e
        name = v.name
        if o.block_size == 1:
            return f"{name} block_size = 1 is a no-op."
        if o.block_size < 1:
            return f"{name} block_size must be > 1."
        return None
    if c == Op.DEQUANTIZE:
        if len(v.op.inputs) != 1 or len(v.op.outputs) != 1:
            return "Expected 1 input & output each from Dequantize"
        return "Unsupported dequantization type." if dtype(v.input(0)) == T.INT16 else None
    if c == Op.FULLY_CONNECTED:
        if o.weights_format != 0:
            return f"Unsupported FullyConnected weights format: {o.weights_format}"
        if _n_runtime(v) > 2:
            return "FullyConnected doesn't support more than 2 runtime inputs."
        if v.is_const(v.input(0)):
            return "FullyConnected doesn't support constant input."
        if o.keep_num_dims and rank(v.input(0)) != rank(v.output(0)):
            return ("Input and output dimensions different and FullyConnected doesn't "
                    "support keep_num_dims.")
        return None
    if c == Op.GATHER:
        if _io_const(v, 2, 0, 1) and _io_const(v, 1, 1, 1):
            return "Op can only handle 1 or 2 operand(s)."
        if dtype(v.input(0)) == T.INT32:
            return "Does not accept INT32 input.\n"
        if rank(v.input(1)) != 1:
            return "Only support 1D indices\n"
        return None if dtype(v.input(1)) == T.INT32 else "Only accept INT32 indices\n"
    if c == Op.HARD_SWISH:
        return _io(v, 1, 1)
    if c == Op.LSTM:
        kt = int(v.opt("kernel_type", 0) or 0)
        if kt == 0:  # FULL
            n = len(v.op.inputs)
            if n not in (20, 24):
                return f"Expected 20 or 24 input tensors, but node has {n} input(s)."
            if len(v.op.outputs) != 1:
                return f"Expected 1 output tensor, but node has {len(v.op.outputs)} output(s)."
            if v.activation not in (4, 6):  # TANH, SIGMOID (schema has no SIGMOID; 6 never)
                return ("Only sigmoid or tanh activation is supported, but node has "
                        f"{v.activation}")
            return None
        e = _io_const(v, 3, 2, 4)
        if e:
            return e
        if v.activation != 4:
            return f"Only TANH activation is supported. but node has {v.activation}"
        if float(v.opt("cell_clip", 0.0) or 0.0) != 0.0:
            return "cell_clip is not supported."
        if float(v.opt("proj_clip", 0.0) or 0.0) != 0.0:
            return "proj_clip is not supported."
        return None
    if c == Op.MEAN:
        return _io_const(v, 1, 1, 1) or _axes_const(v, 1)
    if c == Op.MUL:
        if len(v.op.inputs) != 2:
            return "MUL requires two input tensors."
        a, b = tuple(v.input(0).shape), tuple(v.input(1).shape)
        if len(a) == len(b):
            if any(x < y for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b)):
                return "MUL requires one tensor that not less than second in all dimensions."
        else:
            e = _broadcast(a, b, enh)
            if e:
                return e
        return _act(v.activation)
    if c == Op.ONE_HOT:
        x = v.input(0)
        err = ("Indices must be int32 type, on/off tensors must be constant, scalar, float "
               "type, axis must be -1 or last dim")
        if len(v.op.inputs) != 4:
            return "Expects 4 inputs and 1 output"
        if dtype(x) != T.INT32:
            return err
        nd = rank(x)
        if o.axis != -1 and (nd == 0 or o.axis != x.shape[nd - 1]):
            return err
        for i in range(nd - 1):
            if nd > 3 and i == 0:
                continue
            if x.shape[i] != 1:
                return f"Unspported non-singleton dim at {i}"
        on, off = v.input(2), v.input(3)
        if dtype(on) != T.FLOAT32 or dtype(off) != T.FLOAT32 or not v.is_const(on) or \
                not v.is_const(off) or rank(on) > 1 or rank(off) > 1 or \
                (rank(on) and on.shape[0] > 1) or (rank(off) and off.shape[0] > 1):
            return err
        return None
    if c in (Op.CONCATENATION, Op.PACK, Op.SPLIT, Op.SPLIT_V, Op.RELU_N1_TO_1, Op.PRELU):
        return None
    if c == Op.QUANTIZE:
        return _io(v, 1, 1)
    if c in (Op.RESHAPE, Op.TILE, Op.TRANSPOSE):
        return _io(v, 1, 1)
    if c in (Op.SELECT, Op.SELECT_V2):
        return _select(v)
    if c == Op.SLICE:
        if len(v.op.inputs) < 3:
            return f"SLICE requires 3 inputs, but node has {len(v.op.inputs)} inputs."
        if rank(v.input(0)) not in (3, 4):
            return ("SLICE supports for 3 or 4 dimensional tensors only, but node has "
                    f"{rank(v.input(0))} dimensional tensors.")
        return None
    if c == Op.SOFTMAX:
        return None if float(o.beta) == 1.0 else "Softmax.beta != 1 is not supported."
    if c == Op.STRIDED_SLICE:
        if o.ellipsis_mask:
            return "Slice does not support ellipsis_mask."
        if o.new_axis_mask:
            return "Slice does not support new_axis_mask."
        if o.shrink_axis_mask:
            return "Slice does not support shrink_axis_mask parameter. "
        if len(v.op.inputs) < 4:
            return "STRIDED_SLICE requires 4 inputs."
        if rank(v.input(0)) not in (3, 4):
            return "STRIDED_SLICE supports for 3 or 4 dimensional tensors only."
        return None
    if c == Op.RESIZE_BILINEAR:
        e = _io(v, 1, 1)
        if e:
            return e
        if o.align_corners and o.half_pixel_centers:
            return "If half_pixel_centers is True, align_corners must be False."
        return None
    if c == Op.RESIZE_NEAREST_NEIGHBOR:
        return _io(v, 1, 1)
    if c in (Op.RELU, Op.RELU6, Op.LEAKY_RELU):
        return None
    if c in (Op.REDUCE_MAX, Op.REDUCE_MIN, Op.REDUCE_PROD, Op.SUM):
        return _io(v, 1, 1) or _axes_const(v, 1)
    if c in (Op.PAD, Op.PADV2, Op.MIRROR_PAD):
        if c == Op.MIRROR_PAD and int(o.mode) != 0:
            return ("Only Reflective padding is supported for Mirror Pad operation. But node "
                    f"has {int(o.mode)}")
        e = _io(v, 1, 1)
        if e:
            return e
        p = v.input(1)
        if rank(p) != 2:
            return f"Invalid paddings tensor dimension: expected 2 dim, got {rank(p)} dim"
        if p.shape[0] not in (3, 4) or p.shape[1] != 2:
            return (f"Invalid paddings tensor shape: expected 4x2 or 3x2, got "
                    f"{p.shape[0]}x{p.shape[1]}")
        return None
    if c in _UNARY:
        return _io_const(v, 1, 0, 1)
    if c in _BINARY:
        if _io_const(v, 2, 0, 1) and _io_const(v, 1, 1, 1):
            return "Op can only handle 1 or 2 operand(s)."
        return _act(v.activation) if c in (Op.DIV, Op.SUB) else None
    if c == Op.CUSTOM:
        name = v.op.opcode.custom_code or ""
        if name == "Resampler":
            return _io(v, 2, 1)
        if name == "MaxUnpooling2D":
            return _io(v, 2, 1)
        if name == "MaxPoolingWithArgmax2D":
            return _io(v, 1, 2)
        if name == "Convolution2DTransposeBias":
            return None if len(v.op.inputs) > 1 else "Requested index goes beyond array size"
        return f"Not supported custom op {name}"
    return f"Not supported op {v.name}"


def _select(v: OpView) -> str | None:
    if len(v.op.inputs) != 3 or len(v.op.outputs) != 1:
        return "Expected 3 inputs and 1 output"
    err = ("Cond must be float or bool type, if, else tensors must be float and either be "
           "same the shape as output or constant, scalar.")
    c, a, b = v.input(0), v.input(1), v.input(2)
    fl = (T.FLOAT16, T.FLOAT32)
    if dtype(c) not in fl + (T.BOOL,) or dtype(a) not in fl or dtype(b) not in fl:
        return err
    out = tuple(v.output(0).shape)
    for t, name in ((a, "if"), (b, "else")):
        s = tuple(t.shape)
        if s and s != out and (len(s) > 1 or s[0] > 1):
            return err
        if v.is_const(t) and len(s) == 2:
            return f"2-D {name} tensor only supported if constant."
    return None


def _logical_ok(v: OpView) -> str | None:
    # A comparison must feed exactly one CAST/SELECT producing float (bool stays on the GPU).
    y = v.output(0)
    users = v.consumers(y)
    if len(users) != 1:
        return "Not supported logical op case"
    nxt = users[0]
    out = nxt.outputs[0] if nxt.outputs else None
    if nxt.code in (Op.CAST, Op.SELECT, Op.SELECT_V2) and out is not None and \
            dtype(out) in (T.FLOAT16, T.FLOAT32):
        return None
    return "Not supported logical op case."


def _cast_ok(v: OpView) -> str | None | bool:
    # bool -> float after a comparison is fused on the GPU (and skips the checker).
    src, dst = dtype(v.input(0)), dtype(v.output(0))
    if src == T.BOOL and dst in (T.FLOAT16, T.FLOAT32):
        x = v.input(0)
        prod = v.producer(x)
        if prod is None or len(v.consumers(x)) != 1:
            return "Not supported cast case"
        if len(v.consumers(v.output(0))) != 1:
            return "Cast from bool not supported for outputs"
        if prod.code in _LOGICAL:
            return True
    return None


def _types_ok(v: OpView, opts: dict[str, Any]) -> bool:
    c = v.code
    ins = [T.FLOAT32, T.FLOAT16]
    outs = [T.FLOAT32, T.FLOAT16]
    if opts["allow_quantized"]:
        ins += [T.INT8, T.UINT8]
        outs += [T.INT8, T.UINT8]
    if c in _LOGICAL:
        outs.append(T.BOOL)
    if c == Op.CAST:
        ins += [T.BOOL, T.INT32]
        outs += [T.INT32, T.BOOL]
    if c == Op.ONE_HOT:
        ins.append(T.INT32)
    if c in (Op.SELECT, Op.SELECT_V2):
        ins.append(T.BOOL)
    if c == Op.LOGICAL_AND:
        ins.append(T.BOOL)
        outs.append(T.BOOL)
    if c == Op.GATHER:
        ins.append(T.INT32)
    for ts, allowed in ((v.op.inputs, ins), (v.op.outputs, outs)):
        for t in ts:
            if t is None:
                continue
            if rank(t) >= 5:
                return False
            # Only runtime (arena) tensors are type-checked; constants and variables are not.
            if not v.is_const(t) and not t.is_variable and dtype(t) not in allowed:
                return False
    return True


def check(v: OpView, opts: dict[str, Any]) -> Verdict:
    """The GPU delegate's verdict for one node."""
    c = v.code
    excluded = {str(n).upper() for n in opts["excluded_ops"]}
    if v.name in excluded:
        return no(NOT_SUPPORTED)
    if c == Op.DEQUANTIZE and v.is_folded_const(v.output(0)):
        # FP16GraphPartitionHelper declines these; the partitioner adds them back when all
        # their consumers land in the first delegated partition.
        return no(FP16_DEQUANT)
    if c == Op.CUSTOM:
        if (v.op.opcode.custom_code or "") not in _CUSTOM:
            return no(NOT_SUPPORTED)
    elif c not in MAX_VERSION or (c in (Op.DEQUANTIZE, Op.QUANTIZE)
                                  and not opts["allow_quantized"]):
        return no(NOT_SUPPORTED)
    else:
        mx = MAX_VERSION[c]
        if mx is not None and v.version > mx:
            return no(VERSION.format(max=mx, ver=v.version))
    err: str | None = None
    if c in _LOGICAL:
        err = _logical_ok(v)
    elif c == Op.CAST:
        r = _cast_ok(v)
        if r is True:
            return OK if _types_ok(v, opts) else no(TYPE_SHAPE)
        err = r if isinstance(r, str) else compat(v, opts)
    elif c not in _NO_COMPAT_CHECK:
        err = compat(v, opts)
    if err:
        return no(err)
    if not _types_ok(v, opts):
        return no(TYPE_SHAPE)
    return OK

