"""The random number generation of LiteRT's RANDOM_UNIFORM, RANDOM_STANDARD_NORMAL and
MULTINOMIAL kernels, reproduced exactly.

LiteRT draws from TensorFlow's counter-based Philox-4x32-10 generator: a 128-bit counter and a
64-bit key; each draw encrypts the counter with ten rounds (two 32x32->64 multiplies per round,
the key bumped by two Weyl constants between rounds) into four 32-bit words, then increments
the counter. The op's ``RandomOptions`` seed the generator: ``seed`` is the key, ``seed2`` the
counter's upper 64 bits (LiteRT keeps only their low 32 bits; both 0: seeds drawn from the OS,
so results are not reproducible, as in LiteRT). The state lives with the interpreter
(``Interpreter.op_state``), so every invoke goes on from where the last one stopped; LiteRT
re-seeds when it prepares the op again (a new interpreter, or ``allocate_tensors`` after an
input changed shape), and so do we.

Words become values as TensorFlow's distributions do:

* uniform float in ``[0, 1)``: the word's low 23 bits as the mantissa of a float in
  ``[1, 2)``, minus 1 (exact);
* standard normal: Box-Muller on a pair of words, ``u1`` (clamped to at least 1e-7) and ``u2``
  uniform, ``sqrt(-2 log u1) * (sin, cos)(2 pi u2)`` in float32 (``2 pi u2`` taken in double
  first, as C++ promotes ``M_PI``);
* a double in ``[0, 1)`` from two words (20 + 32 mantissa bits), for MULTINOMIAL's inverse-CDF
  search.

Everything is vectorized over the draws: the counters of ``n`` draws are ``counter + k``.
"""

from __future__ import annotations

import math
import os

import numpy as np

from workbench.errors import UnsupportedOpError

from ._common import Kernel
from ._shape import ParamKernel, shape_param

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_U128 = (1 << 128) - 1


class Philox:
    """TensorFlow's ``PhiloxRandom(seed_lo, seed_hi)``: key = ``seed_lo``, counter words 2-3
    = ``seed_hi``, words 0-1 = 0."""

    def __init__(self, seed_lo: int, seed_hi: int):
        self.key = int(seed_lo) & _U64
        self.counter = (int(seed_hi) & _U64) << 64

    @classmethod
    def from_options(cls, seed: int, seed2: int) -> Philox:
        """The generator LiteRT builds from ``RandomOptions``: its op parameters hold each int64
        option in a C ``int`` (so only the low 32 bits count, sign-extended; measured), and
        both 0 mean fresh seeds from the OS."""
        seed = (int(seed) + 2**31) % 2**32 - 2**31
        seed2 = (int(seed2) + 2**31) % 2**32 - 2**31
        if seed == 0 and seed2 == 0:
            seed = int.from_bytes(os.urandom(8), "little")
            seed2 = int.from_bytes(os.urandom(8), "little")
        return cls(seed & _U64, seed2 & _U64)

    def copy(self) -> Philox:
        twin = Philox(0, 0)
        twin.key, twin.counter = self.key, self.counter
        return twin

    def skip(self, count: int) -> None:
        """Advance the counter by ``count`` draws (``count`` a uint64)."""
        self.counter = (self.counter + (int(count) & _U64)) & _U128

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` draws: ``[n, 4]`` uint32 words; the counter moves on by ``n``."""
        base = self.counter
        self.counter = (base + n) & _U128
        k = np.arange(n, dtype=np.uint64)
        lo64 = np.uint64(base & _U64) + k  # wraps modulo 2**64
        carry = (lo64 < np.uint64(base & _U64)).astype(np.uint64)
        hi64 = np.uint64((base >> 64) & _U64) + carry
        c0, c1 = lo64 & _MASK32, lo64 >> np.uint64(32)
        c2, c3 = hi64 & _MASK32, hi64 >> np.uint64(32)
        return philox4x32(c0, c1, c2, c3, self.key & _U32, self.key >> 32)


def philox4x32(c0, c1, c2, c3, k0: int, k1: int) -> np.ndarray:
    """Philox-4x32-10 of counters ``(c0, c1, c2, c3)`` (uint64 arrays holding 32-bit words)
    under key ``(k0, k1)``: ``[n, 4]`` uint32 words."""
    for r in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & _MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & _MASK32)
        if r < 9:
            k0, k1 = (k0 + _W0) & _U32, (k1 + _W1) & _U32
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


_THREEFRY_PARITY = 0x1BD11BDA
_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(c0: np.ndarray, c1: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011, as XLA and LiteRT use it) of counters
    ``(c0, c1)`` (uint32 arrays) under key ``(k0, k1)``: ``[n, 2]`` uint32 words."""
    k0, k1 = np.uint32(k0), np.uint32(k1)
    k2 = k0 ^ k1 ^ np.uint32(_THREEFRY_PARITY)
    keys = (k0, k1, k2)
    x0, x1 = c0.astype(np.uint32) + k0, c1.astype(np.uint32) + k1
    for block in range(5):
        for rot in _THREEFRY_ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = (x1 << np.uint32(rot)) | (x1 >> np.uint32(32 - rot))
            x1 = x1 ^ x0
        x0 = x0 + keys[(block + 1) % 3]
        x1 = x1 + keys[(block + 2) % 3]  # array + scalar: wraps silently, as uint32 does in C
        x1 = x1 + np.uint32(block + 1)
    return np.stack([x0, x1], axis=1)


def uint32_to_float(words: np.ndarray) -> np.ndarray:
    """Uniform float32 in [0, 1): 23 random mantissa bits of a float in [1, 2), minus 1."""
    bits = (words & np.uint32(0x7FFFFF)) | np.uint32(127 << 23)
    return bits.view(np.float32) - np.float32(1.0)


def uint64_to_double(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Uniform float64 in [0, 1) from two words: 20 bits of ``hi`` and all of ``lo`` as the
    mantissa of a double in [1, 2), minus 1."""
    man = ((hi.astype(np.uint64) & np.uint64(0xFFFFF)) << np.uint64(32)) | lo.astype(np.uint64)
    return (man | np.uint64(1023 << 52)).view(np.float64) - 1.0


#: Draws computed per numpy pass: bounds the round temporaries (~100 bytes per draw) whatever
#: the output size.
CHUNK = 1 << 16


def _values(gen: Philox, size: int, per_draw: int, convert) -> np.ndarray:
    """``size`` float32 values, ``per_draw`` from each draw's four words by ``convert(words
    [k, 4]) -> [k * per_draw]``; the last draw's extra values are dropped (its words are still
    consumed, as LiteRT's loop does)."""
    out = np.empty(size, np.float32)
    n = -(-size // per_draw)
    for d0 in range(0, n, CHUNK):
        vals = convert(gen.draw(min(CHUNK, n - d0)))
        v0 = d0 * per_draw
        take = min(vals.size, size - v0)
        out[v0:v0 + take] = vals[:take]
    return out


def uniform(gen: Philox, size: int) -> np.ndarray:
    """``size`` float32 values, four per draw."""
    return _values(gen, size, 4, lambda w: uint32_to_float(w.reshape(-1)))


def _box_muller(words: np.ndarray) -> np.ndarray:
    pairs = words.reshape(-1, 2)
    u1 = np.maximum(uint32_to_float(pairs[:, 0]), np.float32(1.0e-7))
    v1 = (2.0 * np.pi * uint32_to_float(pairs[:, 1]).astype(np.float64)).astype(np.float32)
    u2 = np.sqrt(np.float32(-2.0) * np.log(u1))
    out = np.empty((pairs.shape[0], 2), np.float32)
    out[:, 0] = np.sin(v1) * u2
    out[:, 1] = np.cos(v1) * u2
    return out.reshape(-1)


def standard_normal(gen: Philox, size: int) -> np.ndarray:
    """``size`` float32 values, Box-Muller on word pairs, four per draw."""
    return _values(gen, size, 4, _box_muller)


def multinomial(gen: Philox, logits: np.ndarray, num_samples: int, dtype) -> np.ndarray:
    """``[batch, num_samples]`` class indices drawn from each row of float32 ``logits``, as
    LiteRT's MULTINOMIAL: the draws come from a copy of the generator, which itself first skips
    ``batch * round_up(num_samples, 4) * 2 * 256`` draws (an int product in C++); each sample
    takes two words (two samples per draw, continuing across rows) as a double ``u`` and is the
    first class whose cumulative ``exp(logit - max)`` (doubles, non-finite logits adding
    nothing) exceeds ``u`` times the row's total."""
    batch, classes = logits.shape
    draws = gen.copy()
    skip = batch * ((num_samples + 3) // 4 * 4) * 2 * 256
    skip = (skip + 2**31) % 2**32 - 2**31  # C++ int arithmetic, then widened to uint64
    gen.skip(skip & _U64)
    total = batch * num_samples
    out = np.empty((batch, num_samples), dtype)
    if total == 0:
        return out
    u = np.empty(total, np.float64)
    n = -(-total // 2)
    for d0 in range(0, n, CHUNK):
        pairs = draws.draw(min(CHUNK, n - d0)).reshape(-1, 2)
        take = min(pairs.shape[0], total - 2 * d0)
        u[2 * d0:2 * d0 + take] = uint64_to_double(pairs[:take, 0], pairs[:take, 1])
    u = u.reshape(batch, num_samples)
    x = logits.astype(np.float64)
    finite = np.isfinite(x)
    top = np.where(finite, logits, np.float32(np.finfo(np.float32).min)).max(axis=1)
    terms = np.where(finite, np.exp(x - top.astype(np.float64)[:, None]), 0.0)
    cdf = np.cumsum(terms, axis=1)  # sequential sums, as the C++ loop
    for b in range(batch):
        out[b] = np.searchsorted(cdf[b], u[b] * cdf[b, -1], side="right")
    return out


def generator(node) -> Philox:
    """The node's generator, kept by the interpreter across invokes and re-prepares
    (``Interpreter.op_state``), seeded from its ``RandomOptions`` on first use."""
    store = getattr(node.runtime, "op_state", None)
    if store is None:
        store = node.state
    key = ("philox", node.subgraph, node.index)
    gen = store.get(key)
    if gen is None:
        o = node.options
        gen = store[key] = Philox.from_options(int(o.seed), int(o.seed2))
    return gen


class RandomShapeKernel(ParamKernel, Kernel):
    """RANDOM_UNIFORM / RANDOM_STANDARD_NORMAL: input 0 is the output shape (an int32 vector,
    constant or computed at run time); the output is float32, ``draw(gen, size)`` values."""

    draw = None  # set by each op: a function (generator, size) -> float32 values

    def prepare(self):
        node = self.node
        shape, out = node.inputs[0], node.outputs[0]
        if shape.dtype != np.int32 or len(shape.shape) != 1:
            raise node.fail(f"shape must be an int32 vector, got {shape.dtype} "
                            f"{list(shape.shape)}")
        if out.dtype != np.float32:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{out.dtype or out.tensor.type_name} output is not "
                                     "supported (LiteRT draws float32 only)")
        generator(node)  # seeded at prepare, as LiteRT
        return super().prepare()

    def params(self, inputs):
        return shape_param(self.node, 0, inputs)

    def shapes(self, shape):
        return [shape]

    def run(self, shape, inputs):
        size = math.prod(shape)
        return [type(self).draw(generator(self.node), size).reshape(shape)]
