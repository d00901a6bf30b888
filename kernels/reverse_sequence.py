"""REVERSE_SEQUENCE: inputs (tensor, seq_lengths int32/int64 of size ``shape[batch_dim]``);
for each index ``b`` along ``batch_dim`` the first ``seq_lengths[b]`` elements along
``seq_dim`` are reversed, the rest copied. float32, uint8, int16, int32, int64 as LiteRT.
``seq_dim`` and ``batch_dim`` are distinct non-negative dimensions (LiteRT takes no negative
ones). A length outside ``[0, shape[seq_dim]]`` fails the invoke."""

from __future__ import annotations

import numpy as np

from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import check_types, runtime_error
from ._shape import INDEX_DTYPES
from .registry import register


@register(Op.REVERSE_SEQUENCE)
class ReverseSequence(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 2 or any(t is None for t in node.inputs):
            raise node.fail("takes (input, seq_lengths)")
        check_types(node, (np.float32, np.int32, np.int64), raw=(np.uint8, np.int16))
        x, lens = node.inputs
        if lens.dtype not in INDEX_DTYPES or len(lens.shape) != 1:
            raise node.fail("seq_lengths must be an int32 or int64 vector")
        rank = len(x.shape)
        opts = node.options
        self.seq = opts.seq_dim if opts else 0
        self.batch = opts.batch_dim if opts else 0
        for name, d in (("seq_dim", self.seq), ("batch_dim", self.batch)):
            if not 0 <= d < rank:
                raise node.fail(f"{name} {d} is outside [0, {rank})")
        if self.seq == self.batch:
            raise node.fail("seq_dim and batch_dim must differ")
        if lens.shape[0] != x.shape[self.batch]:
            raise node.fail(f"{lens.shape[0]} sequence lengths for batch dimension of size "
                            f"{x.shape[self.batch]}")
        return [x.shape]

    def eval(self, inputs):
        x, lens = inputs
        n = x.shape[self.seq]
        lens = np.asarray(lens).astype(np.int64)
        if np.any((lens < 0) | (lens > n)):
            raise runtime_error(self.node, f"sequence lengths {lens.tolist()} outside [0, {n}]")
        # Source position along seq_dim for every (batch, position): reversed inside the
        # sequence, unchanged after it.
        pos = np.arange(n)
        src = np.where(pos < lens[:, None], lens[:, None] - 1 - pos, pos)  # [B, n]
        y = np.moveaxis(x, (self.batch, self.seq), (0, 1))
        out = y[np.arange(y.shape[0])[:, None], src]
        return [np.ascontiguousarray(np.moveaxis(out, (0, 1), (self.batch, self.seq)))]
