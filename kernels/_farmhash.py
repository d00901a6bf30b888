"""FarmHash's ``Fingerprint64`` (``farmhashna::Hash64``, FarmHash 1.1), vectorized over rows.

LSH_PROJECTION hashes ``(seed, input row)`` with it. All keys hashed together have one length,
so every branch of the hash is taken for all rows at once: the function takes a ``[n, len]``
uint8 array and returns the ``n`` fingerprints as uint64. Arithmetic is modulo 2**64 (numpy's
uint64 arrays wrap), loads are little-endian, rotations are to the right.

Length branches: 0-16 bytes, 17-32, 33-64, and above 64 a loop over 64-byte blocks whose last
block is the input's final 64 bytes (overlapping the previous one)."""

from __future__ import annotations

import numpy as np

_U = np.uint64
K0 = _U(0xC3A5C85C97CB3127)
K1 = _U(0xB492B66FBE98F273)
K2 = _U(0x9AE16A3B2F90404F)
_MASK = (1 << 64) - 1


def _u(v: int) -> np.uint64:
    """A Python integer modulo 2**64."""
    return _U(v & _MASK)


def _rot(v: np.ndarray, shift: int) -> np.ndarray:
    """Rotate right by ``shift`` (0 < shift < 64)."""
    return (v >> _U(shift)) | (v << _U(64 - shift))


def _shift_mix(v: np.ndarray) -> np.ndarray:
    return v ^ (v >> _U(47))


def _fetch64(b, at: int) -> np.ndarray:
    if isinstance(b, _Words):
        return b.fetch64(at)
    return np.ascontiguousarray(b[:, at:at + 8]).view("<u8")[:, 0].astype(_U)


class _Words:
    """The rows of a ``[n, len]`` byte array as little-endian 64-bit words at every offset the
    long-input loop reads: offsets that are multiples of 8 (the 64-byte blocks) and offsets
    congruent to ``len`` mod 8 (the final 64 bytes). Two transposed copies, then each load is a
    contiguous row instead of a copy per load."""

    def __init__(self, b: np.ndarray):
        rows, n = b.shape
        self.shift = n % 8
        self.words = self._columns(b[:, :n - self.shift])
        self.shifted = self._columns(b[:, self.shift:]) if self.shift else self.words

    @staticmethod
    def _columns(b: np.ndarray) -> np.ndarray:
        """``[len / 8, n]`` words (``len`` a multiple of 8), each word position contiguous."""
        words = np.ascontiguousarray(b).view("<u8")
        return np.ascontiguousarray(words.T).astype(_U, copy=False)

    def fetch64(self, at: int) -> np.ndarray:
        if at % 8 == 0:
            return self.words[at // 8]
        if at % 8 == self.shift:
            return self.shifted[(at - self.shift) // 8]
        raise AssertionError(f"unplanned load at {at}")


def _fetch32(b: np.ndarray, at: int) -> np.ndarray:
    return np.ascontiguousarray(b[:, at:at + 4]).view("<u4")[:, 0].astype(_U)


def _len16(u, v, mul):
    a = (u ^ v) * mul
    a = a ^ (a >> _U(47))
    b = (v ^ a) * mul
    b = b ^ (b >> _U(47))
    return b * mul


def _len0to16(b: np.ndarray, n: int) -> np.ndarray:
    rows = b.shape[0]
    if n >= 8:
        mul = K2 + _u(2 * n)
        a = _fetch64(b, 0) + K2
        bb = _fetch64(b, n - 8)
        c = _rot(bb, 37) * mul + a
        d = (_rot(a, 25) + bb) * mul
        return _len16(c, d, mul)
    if n >= 4:
        mul = K2 + _u(2 * n)
        a = _fetch32(b, 0)
        return _len16(_u(n) + (a << _U(3)), _fetch32(b, n - 4), mul)
    if n > 0:
        y = b[:, 0].astype(_U) + (b[:, n >> 1].astype(_U) << _U(8))
        z = _u(n) + (b[:, n - 1].astype(_U) << _U(2))
        return _shift_mix((y * K2) ^ (z * K0)) * K2
    return np.full(rows, K2, _U)


def _len17to32(b: np.ndarray, n: int) -> np.ndarray:
    mul = K2 + _u(2 * n)
    a = _fetch64(b, 0) * K1
    bb = _fetch64(b, 8)
    c = _fetch64(b, n - 8) * mul
    d = _fetch64(b, n - 16) * K2
    return _len16(_rot(a + bb, 43) + _rot(c, 30) + d, a + _rot(bb + K2, 18) + c, mul)


def _len33to64(b: np.ndarray, n: int) -> np.ndarray:
    mul = K2 + _u(2 * n)
    a = _fetch64(b, 0) * K2
    bb = _fetch64(b, 8)
    c = _fetch64(b, n - 8) * mul
    d = _fetch64(b, n - 16) * K2
    y = _rot(a + bb, 43) + _rot(c, 30) + d
    z = _len16(y, a + _rot(bb + K2, 18) + c, mul)
    e = _fetch64(b, 16) * mul
    f = _fetch64(b, 24)
    g = (y + _fetch64(b, n - 32)) * mul
    h = (z + _fetch64(b, n - 24)) * mul
    return _len16(_rot(e + f, 43) + _rot(g, 30) + h, e + _rot(f + a, 18) + g, mul)


def _weak32(b: np.ndarray, at: int, a, c):
    """FarmHash's WeakHashLen32WithSeeds over the 32 bytes at ``at``: a pair of arrays."""
    w, x, y, z = (_fetch64(b, at + 8 * k) for k in range(4))
    a = a + w
    c = _rot(c + a + z, 21)
    keep = a
    a = a + x + y
    c = c + _rot(a, 44)
    return a + z, c + keep


def fingerprint64(keys: np.ndarray) -> np.ndarray:
    """``util::Fingerprint64`` of each row of the uint8 array ``keys`` (``[n, len]``), as
    uint64."""
    b = np.ascontiguousarray(keys, np.uint8)
    if b.ndim != 2:
        raise ValueError("keys must be a [n, len] byte array")
    rows, n = b.shape
    if n <= 16:
        return _len0to16(b, n)
    if n <= 32:
        return _len17to32(b, n)
    if n <= 64:
        return _len33to64(b, n)
    b = _Words(b)
    zeros = np.zeros(rows, _U)
    seed = 81
    x = np.full(rows, _u(seed), _U)
    y = np.full(rows, _u(seed * int(K1) + 113), _U)
    z = _shift_mix(y * K2 + _U(113)) * K2
    v0, v1, w0, w1 = zeros, zeros, zeros, zeros
    x = x * K2 + _fetch64(b, 0)
    blocks = (n - 1) // 64  # the loop runs over these; the final step reads the last 64 bytes
    for k in range(blocks):
        s = 64 * k
        x = _rot(x + y + v0 + _fetch64(b, s + 8), 37) * K1
        y = _rot(y + v1 + _fetch64(b, s + 48), 42) * K1
        x = x ^ w1
        y = y + v0 + _fetch64(b, s + 40)
        z = _rot(z + w0, 33) * K1
        v0, v1 = _weak32(b, s, v1 * K1, x + w0)
        w0, w1 = _weak32(b, s + 32, z + w1, y + _fetch64(b, s + 16))
        x, z = z, x
    mul = K1 + ((z & _U(0xFF)) << _U(1))
    s = n - 64
    w0 = w0 + _u((n - 1) & 63)
    v0 = v0 + w0
    w0 = w0 + v0
    x = _rot(x + y + v0 + _fetch64(b, s + 8), 37) * mul
    y = _rot(y + v1 + _fetch64(b, s + 48), 42) * mul
    x = x ^ (w1 * _U(9))
    y = y + v0 * _U(9) + _fetch64(b, s + 40)
    z = _rot(z + w0, 33) * mul
    v0, v1 = _weak32(b, s, v1 * mul, x + w0)
    w0, w1 = _weak32(b, s + 32, z + w1, y + _fetch64(b, s + 16))
    x, z = z, x
    return _len16(_len16(v0, w0, mul) + _shift_mix(y) * K0 + z, _len16(v1, w1, mul) + x, mul)
