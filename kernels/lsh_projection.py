"""LSH_PROJECTION: inputs (hash seeds: float32 ``[num_hash, num_bits]``, num_bits <= 32; input:
rank >= 1, any numeric/bool dtype, read as raw bytes per row along dimension 0; optional
weight: float32 ``[input.shape[0]]``); int32 output. Each bit is the sign of
``sum_i weight[i] * double(int64 Fingerprint64(seed bytes + row i bytes))`` (weight 1 without
the input), summed in double in row order as LiteRT does, with FarmHash's ``Fingerprint64``
reimplemented bit for bit. DENSE gives the ``num_hash * num_bits`` bits; SPARSE one int32 per
hash function: its bits, most significant first, plus ``i << num_bits`` wrapping as LiteRT's
int32 arithmetic on x86 (for 32 bits the offset is ``i``, the shift count taken mod 32). A
STRING input is hashed as LiteRT does: its raw buffer (count, offsets, then the bytes) cut into
``input.shape[0]`` equal rows, the remainder left out."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.graph import pack_strings
from workbench.ir.ops import Op, TensorType

from ._common import Kernel
from ._elementwise import sequential_sum
from ._farmhash import fingerprint64
from .registry import register

#: LSHProjectionType values (schema): UNKNOWN 0, SPARSE 1, DENSE 2.
SPARSE, DENSE = 1, 2

#: Key bytes hashed per chunk of seeds (bounds the temporary key array).
_CHUNK_BYTES = 1 << 20


@register(Op.LSH_PROJECTION)
class LshProjection(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) not in (2, 3):
            raise node.fail(f"takes 2 or 3 inputs (hash, input[, weight]), got "
                            f"{len(node.inputs)}")
        if any(t is None for t in node.inputs):
            raise node.fail("a missing input (LiteRT expects the weight when the op lists a "
                            "third input)")
        if len(node.outputs) != 1 or node.outputs[0] is None:
            raise node.fail("has one output")
        hash_, x = node.inputs[0], node.inputs[1]
        weight = node.inputs[2] if len(node.inputs) == 3 else None
        out = node.outputs[0]
        if len(hash_.shape) != 2:
            raise node.fail(f"hash must have rank 2, got {list(hash_.shape)}")
        if hash_.shape[1] > 32:
            raise node.fail(f"{hash_.shape[1]} bits per hash function; at most 32")
        if len(x.shape) < 1 or x.shape[0] < 1:
            raise node.fail(f"input must have rank >= 1 and at least one row, got "
                            f"{list(x.shape)}")
        if weight is not None and (len(weight.shape) != 1 or weight.shape[0] != x.shape[0]):
            raise node.fail(f"weight of shape {list(weight.shape)} for {x.shape[0]} input rows")
        kind = node.options.type
        if kind not in (SPARSE, DENSE):
            raise node.fail(f"projection type {int(kind)} is neither SPARSE nor DENSE")
        if out.dtype != np.int32:
            raise node.fail(f"output must be int32, got {out.tensor.type_name}")
        for what, t in (("hash", hash_), ("weight", weight)):
            if t is not None and t.dtype != np.float32:
                raise UnsupportedOpError(node.op.name, node.path,
                                         f"{t.tensor.type_name} {what} (LiteRT reads the "
                                         "tensor's bytes as float32)")
        self.strings = x.tensor.dtype == TensorType.STRING
        self.raw = None  # a constant STRING input's buffer as stored (LiteRT hashes that)
        if self.strings and x.tensor.is_constant and x.tensor.data is not None:
            self.raw = np.asarray(x.tensor.data).view(np.uint8).reshape(-1)
        if x.dtype is None:
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{x.tensor.type_name} inputs are not supported yet")
        self.dense = kind == DENSE
        n_hash, n_bits = hash_.shape
        return [(n_hash * n_bits,) if self.dense else (n_hash,)]

    def eval(self, inputs):
        hash_, x = inputs[0], inputs[1]
        weight = inputs[2] if len(inputs) == 3 else None
        n_hash, n_bits = hash_.shape
        if self.strings:  # the raw string buffer, cut into equal rows
            buf = self.raw if self.raw is not None else pack_strings(x)
            n = x.shape[0]
            x = buf[:buf.size // n * n].reshape(n, -1)
        bits = self.sign_bits(np.ascontiguousarray(hash_, np.float32).reshape(-1), x, weight)
        if self.dense:
            return [bits.astype(np.int32)]
        bits = bits.reshape(n_hash, n_bits).astype(np.uint64)
        sig = np.zeros(n_hash, np.uint64)
        for j in range(n_bits):
            sig = (sig << np.uint64(1)) | bits[:, j]
        offset = np.arange(n_hash, dtype=np.uint64) * np.uint64(1 << (n_bits % 32))
        return [((sig + offset) & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)]

    @staticmethod
    def sign_bits(seeds: np.ndarray, x: np.ndarray, weight) -> np.ndarray:
        """For each seed, ``score > 0`` with ``score`` LiteRT's running double sum over the
        input rows of ``weight[i] * double(int64 hash(seed, row i))``."""
        n = x.shape[0]
        x = np.ascontiguousarray(x)
        row_bytes = x.nbytes // n
        rows = (x.reshape(-1).view(np.uint8).reshape(n, row_bytes) if row_bytes
                else np.zeros((n, 0), np.uint8))
        seed_bytes = seeds.view(np.uint8).reshape(-1, 4)
        w = None if weight is None else np.asarray(weight, np.float32).astype(np.float64)
        per_seed = n * (4 + row_bytes)
        step = max(1, _CHUNK_BYTES // max(per_seed, 1))
        out = np.zeros(seeds.shape[0], bool)
        for s0 in range(0, seeds.shape[0], step):
            sb = seed_bytes[s0:s0 + step]
            k = sb.shape[0]
            keys = np.empty((n, k, 4 + row_bytes), np.uint8)
            keys[:, :, :4] = sb[None]
            keys[:, :, 4:] = rows[:, None]
            h = fingerprint64(keys.reshape(n * k, -1)).view(np.int64).astype(np.float64)
            terms = h.reshape(n, k)  # row-major over rows: a sequential sum down axis 0
            if w is not None:
                terms = terms * w[:, None]
            out[s0:s0 + k] = sequential_sum(terms, (0,)) > 0
        return out
