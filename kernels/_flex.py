"""Reading the FlexBuffer options of the custom ops LiteRT runs by default (AudioSpectrogram,
Mfcc, NumericVerify, TFLite_Detection_PostProcess) as its kernels read them: flexbuffers'
``AsInt64`` / ``AsBool`` / ``AsFloat`` conversions of one key, a missing key reading as 0."""

from __future__ import annotations

import math

import numpy as np

F32 = np.float32
_INT64_LIMIT = 2.0**63


def custom_map(node) -> dict:
    """The op's FlexBuffer options map. LiteRT's kernels parse the bytes unconditionally and
    crash (segfault) on an op stored without custom options: refused here."""
    raw = node.op.custom_options
    if raw is None or len(raw) == 0:
        raise node.fail("has no custom options (LiteRT's kernel crashes reading the missing "
                        "FlexBuffer map)")
    return node.custom_options_map()


def flex_int64(node, options: dict, key: str) -> int:
    """flexbuffers' ``AsInt64`` of one option: a missing key or null is 0, a bool 0/1, a float
    truncated toward zero. Values whose conversion C++ leaves undefined (non-finite floats,
    out of int64) or that are not numbers (strings, vectors, maps, blobs) are refused."""
    v = options.get(key)
    if v is None:
        return 0
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        if not math.isfinite(v) or abs(v) >= _INT64_LIMIT:
            raise node.fail(f"option {key} = {v} has no int64 value")
        return int(v)  # C's conversion truncates toward zero
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            raise node.fail(f"option {key} = {v} is out of the int64 range")
        return v
    raise node.fail(f"option {key} is a FlexBuffer {type(v).__name__}, not a number")


def flex_int32(node, options: dict, key: str) -> int:
    """``AsInt64`` stored into a C ``int``, as LiteRT's params do: the low 32 bits."""
    return (flex_int64(node, options, key) + 2**31) % 2**32 - 2**31


def flex_bool(node, options: dict, key: str) -> bool:
    """flexbuffers' ``AsBool``: a bool as is, any other number converted to an unsigned
    integer (a float truncated) and compared with 0."""
    v = options.get(key)
    if isinstance(v, float) and v < 0:
        raise node.fail(f"option {key} = {v} has no unsigned value")
    return flex_int64(node, options, key) != 0


def flex_float32(node, options: dict, key: str) -> np.float32:
    """flexbuffers' ``AsFloat``: a missing key is 0, integers and bools converted."""
    v = options.get(key)
    if v is None:
        return F32(0.0)
    if isinstance(v, bool):
        return F32(int(v))
    if isinstance(v, (int, float)):
        if isinstance(v, int) and not -(2**63) <= v < 2**64:
            raise node.fail(f"option {key} = {v} is out of the 64-bit range")
        return F32(float(v))
    raise node.fail(f"option {key} is a FlexBuffer {type(v).__name__}, not a number")
