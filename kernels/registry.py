"""The explicit kernel registry: builtin op code (or custom op name) -> kernel class.

Kernels register themselves with ``@register(Op.CONV_2D)`` in their own module; this module
imports every kernel module by name (no scanning of globals or directories), so the set of
supported ops is exactly what is listed in :data:`KERNEL_MODULES`.
"""

from __future__ import annotations

import importlib
from typing import Callable

from workbench.errors import UnsupportedOpError

#: Kernel modules, one op (or one tight family) per file.
KERNEL_MODULES = (
    "abs",
    "activations",
    "add",
    "add_n",
    "arg_max",
    "arg_min",
    "assign_variable",
    "atan2",
    "average_pool_2d",
    "batch_matmul",
    "batch_to_space_nd",
    "bidirectional_sequence_lstm",
    "bidirectional_sequence_rnn",
    "bitcast",
    "bitwise_xor",
    "broadcast_args",
    "broadcast_to",
    "bucketize",
    "call_once",
    "cast",
    "ceil",
    "complex_abs",
    "concatenation",
    "conv_2d",
    "conv_3d",
    "conv_3d_transpose",
    "cos",
    "cumsum",
    "densify",
    "depth_to_space",
    "depthwise_conv_2d",
    "dequantize",
    "dilate",
    "div",
    "dynamic_update_slice",
    "embedding_lookup",
    "embedding_lookup_sparse",
    "equal",
    "exp",
    "expand_dims",
    "fake_quant",
    "fill",
    "floor",
    "floor_div",
    "floor_mod",
    "fully_connected",
    "gather",
    "gather_nd",
    "greater",
    "greater_equal",
    "hashtable",
    "hashtable_lookup",
    "if_",
    "imag",
    "l2_normalization",
    "l2_pool_2d",
    "less",
    "less_equal",
    "local_response_normalization",
    "log",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "lsh_projection",
    "lstm",
    "matrix_diag",
    "matrix_set_diag",
    "max_pool_2d",
    "maximum",
    "mean",
    "minimum",
    "mirror_pad",
    "mul",
    "multinomial",
    "neg",
    "non_max_suppression",
    "not_equal",
    "one_hot",
    "pack",
    "pad",
    "padv2",
    "pow",
    "prelu",
    "quantize",
    "random_standard_normal",
    "random_uniform",
    "range",
    "rank",
    "read_variable",
    "real",
    "reduce_all",
    "reduce_any",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_window",
    "reshape",
    "resize_bilinear",
    "resize_nearest_neighbor",
    "reverse_sequence",
    "reverse_v2",
    "rfft2d",
    "right_shift",
    "rnn",
    "round",
    "rsqrt",
    "scatter_nd",
    "segment_sum",
    "select",
    "select_v2",
    "shape",
    "sign",
    "sin",
    "skip_gram",
    "slice",
    "softmax",
    "space_to_batch_nd",
    "space_to_depth",
    "sparse_to_dense",
    "split",
    "split_v",
    "sqrt",
    "square",
    "squared_difference",
    "squeeze",
    "stablehlo_case",
    "stablehlo_composite",
    "stablehlo_elementwise",
    "stablehlo_gather",
    "stablehlo_pad",
    "stablehlo_rng_bit_generator",
    "stablehlo_scatter",
    "stablehlo_shift_left",
    "strided_slice",
    "sub",
    "sum",
    "svdf",
    "tile",
    "topk_v2",
    "transpose",
    "transpose_conv",
    "unidirectional_sequence_lstm",
    "unidirectional_sequence_rnn",
    "unique",
    "unpack",
    "unsorted_segment",
    "var_handle",
    "where",
    "while_",
    "zeros_like",
)

#: Modules of the custom ops LiteRT's built-in op resolver also runs (its register.cc adds
#: them by name): each registers with ``@register_litert_custom("Name")``.
CUSTOM_KERNEL_MODULES = (
    "audio_spectrogram",
    "detection_postprocess",
    "mfcc",
    "numeric_verify",
)

_BUILTIN: dict[int, type] = {}
_CUSTOM: dict[str, type] = {}
#: Custom ops LiteRT resolves by default (TFLite_Detection_PostProcess...), by custom code.
_LITERT_CUSTOM: dict[str, type] = {}
_loaded = False


def register(*codes: int) -> Callable[[type], type]:
    """Class decorator registering a kernel for one or more builtin op codes."""

    def deco(cls: type) -> type:
        for c in codes:
            if int(c) in _BUILTIN and _BUILTIN[int(c)] is not cls:
                raise ValueError(f"two kernels registered for op {c}")
            _BUILTIN[int(c)] = cls
        return cls

    return deco


def register_custom(name: str, kernel: type) -> None:
    """Register (or replace) the kernel of a custom op by its custom code name. A user's kernel
    takes precedence over ours for the custom ops LiteRT runs by default."""
    _CUSTOM[name] = kernel


def register_litert_custom(*names: str) -> Callable[[type], type]:
    """Class decorator for the kernel of a custom op LiteRT's built-in resolver runs."""

    def deco(cls: type) -> type:
        for n in names:
            if n in _LITERT_CUSTOM and _LITERT_CUSTOM[n] is not cls:
                raise ValueError(f"two kernels registered for custom op {n!r}")
            _LITERT_CUSTOM[n] = cls
        return cls

    return deco


def _load() -> None:
    global _loaded
    if not _loaded:
        for mod in KERNEL_MODULES + CUSTOM_KERNEL_MODULES:
            importlib.import_module(f"workbench.kernels.{mod}")
        _loaded = True


def lookup(code: int, custom_code: str | None, op_name: str, path: str = "") -> type:
    """The kernel class for an op, or :class:`UnsupportedOpError` naming it."""
    _load()
    from workbench.ir.ops import BuiltinOperator

    if int(code) == BuiltinOperator.CUSTOM:
        if custom_code in _CUSTOM:
            return _CUSTOM[custom_code]
        if custom_code in _LITERT_CUSTOM:
            return _LITERT_CUSTOM[custom_code]
        if custom_code and custom_code.startswith("Flex"):  # SELECT_TF_OPS conversions
            raise UnsupportedOpError(custom_code, path, f"TensorFlow op {custom_code[4:]!r} "
                                     "left to LiteRT's Flex delegate (converted with "
                                     "SELECT_TF_OPS), which runs TensorFlow itself; convert "
                                     "without SELECT_TF_OPS or register a kernel")
        raise UnsupportedOpError(custom_code or "CUSTOM", path, "custom op with no kernel")
    if int(code) in _BUILTIN:
        return _BUILTIN[int(code)]
    raise UnsupportedOpError(op_name, path, "no kernel for this builtin op yet")


def builtin_kernels() -> dict[int, type]:
    _load()
    return dict(_BUILTIN)


def litert_custom_kernels() -> dict[str, type]:
    """Our kernels of the custom ops LiteRT's built-in resolver runs, by custom code."""
    _load()
    return dict(_LITERT_CUSTOM)
