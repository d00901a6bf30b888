"""STABLEHLO_RNG_BIT_GENERATOR: random bits from an explicit state, as LiteRT's kernel makes
them. Input: the state, a uint64 vector; outputs: the new state (uint64, the input's shape) and
the bits (int32/uint32/int64/uint64, static shape; 64-bit elements take two 32-bit words, low
first). ``algorithm`` THREEFRY: Threefry-2x32 (20 rounds), state ``u64[2]`` = key, counter.
PHILOX or DEFAULT: Philox-4x32-10, state ``u64[2]`` or ``u64[3]``: key = word 0, the counter's
low 64 bits = word 1, its high 64 bits = word 2 (or, with two words, the state's words again,
LiteRT's choice). Each draw fills the next 2 (Threefry) or 4 (Philox) 32-bit output words; the
counter's low 64 bits advance by one per draw (wrapping; the high half never changes, as in
LiteRT) and the new state holds the advanced counter."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import ENUMS, Op

from ._common import Kernel, check_allocation
from ._random import philox4x32, threefry2x32
from .registry import register

_ALG = ENUMS["RngAlgorithm"]
_OUT_TYPES = (np.int32, np.uint32, np.int64, np.uint64)
#: Largest output generated (~17 ns per 32-bit word in numpy: 1 GiB takes ~5 s); a fuzzed
#: declared shape must not run for minutes.
MAX_BITS_BYTES = 1 << 30
#: Draws per numpy pass (bounds the temporaries whatever the output size).
_CHUNK = 1 << 16


@register(Op.STABLEHLO_RNG_BIT_GENERATOR)
class StablehloRngBitGenerator(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or len(node.outputs) != 2 or node.inputs[0] is None \
                or any(o is None for o in node.outputs):
            raise node.fail(f"takes one input and two outputs, got {len(node.inputs)} and "
                            f"{len(node.outputs)}")
        state, key, out = node.inputs[0], node.outputs[0], node.outputs[1]
        if state.dtype != np.uint64 or len(state.shape) != 1:
            raise node.fail(f"the state must be a uint64 vector, got {state.dtype}"
                            f"{list(state.shape)}")
        if key.dtype != np.uint64:
            raise node.fail(f"the output state must be uint64, got {key.dtype}")
        if out.dtype not in _OUT_TYPES:
            raise node.fail(f"the output must be int32/uint32/int64/uint64, got {out.dtype}")
        alg = int(getattr(node.options, "algorithm", 0))
        n = int(state.shape[0])
        if alg == _ALG.THREEFRY:
            if n != 2:
                raise node.fail(f"THREEFRY needs a u64[2] state, got u64[{n}]")
        elif alg in (_ALG.PHILOX, _ALG.DEFAULT):
            if n not in (2, 3):
                raise node.fail(f"PHILOX needs a u64[2] or u64[3] state, got u64[{n}]")
        else:
            raise node.fail(f"unknown RNG algorithm {alg}")
        self.threefry = alg == _ALG.THREEFRY
        shapes = [tuple(state.shape), tuple(out.shape)]
        check_allocation(node, shapes, runtime=False)  # the bits' shape is only declared
        nbytes = int(np.prod(out.shape, dtype=np.int64)) * np.dtype(out.dtype).itemsize
        if nbytes > MAX_BITS_BYTES:
            raise node.fail(f"declares {nbytes / 2**30:.1f} GiB of random bits; the limit is "
                            f"{MAX_BITS_BYTES / 2**30:.0f} GiB (~5 s to generate here)")
        return shapes

    def eval(self, inputs):
        node = self.node
        state = np.ascontiguousarray(inputs[0], dtype=np.uint64)
        words = state.view(np.uint32)
        out_t = node.outputs[1]
        n_words = int(np.prod(out_t.shape, dtype=np.int64)) * np.dtype(out_t.dtype).itemsize // 4
        per_draw = 2 if self.threefry else 4
        draws = -(-n_words // per_draw)
        k0, k1 = int(words[0]), int(words[1])
        counter = int(words[2]) | (int(words[3]) << 32)
        if not self.threefry:
            hi = (words[4], words[5]) if state.size == 3 else (words[0], words[1])
            c2, c3 = np.uint64(hi[0]), np.uint64(hi[1])
        bits = np.empty(draws * per_draw, np.uint32)
        for d0 in range(0, draws, _CHUNK):
            k = np.arange(d0, min(draws, d0 + _CHUNK), dtype=np.uint64)
            c = np.uint64(counter) + k  # the 64-bit counter wraps modulo 2**64
            lo, hi32 = c & np.uint64(0xFFFFFFFF), c >> np.uint64(32)
            if self.threefry:
                w = threefry2x32(lo.astype(np.uint32), hi32.astype(np.uint32), k0, k1)
            else:
                w = philox4x32(lo, hi32, np.full_like(lo, c2), np.full_like(lo, c3), k0, k1)
            bits[d0 * per_draw:(d0 + k.size) * per_draw] = w.reshape(-1)
        counter = (counter + draws) % (1 << 64)
        new = words.copy()
        new[:4] = (k0, k1, counter & 0xFFFFFFFF, counter >> 32)
        out = bits[:n_words].view(out_t.dtype).reshape(out_t.shape)
        return [new.view(np.uint64).reshape(state.shape), out]
