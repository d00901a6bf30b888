"""SKIP_GRAM: the skip-grams of the first string of a STRING tensor, as a 1-D STRING tensor of
words joined by one space: ``ngram_size`` words (all sizes 1..``ngram_size`` with
``include_all_ngrams``), each at most ``max_skip_size`` words after the previous. LiteRT's
quirks kept: words split at C ``isspace`` bytes, but a first byte that is a space is never a
separator (a leading space drops the first word, ``" a"`` alone is one word); grams come in
LiteRT's depth-first order, a shorter gram after its extensions; ``ngram_size`` <= 0 or more than
the word count gives no grams."""

from __future__ import annotations

import numpy as np

from workbench.errors import InputError
from workbench.ir.ops import Op, TensorType

from ._common import Kernel, mark_dynamic
from .registry import register

#: C's ``isspace`` in the "C" locale (bytes >= 0x80 are not spaces).
_SPACES = frozenset(b" \t\n\v\f\r")
#: Refuse to walk more word sequences than this (a long sentence with a huge skip would otherwise
#: enumerate combinations without end, where LiteRT runs out of memory).
MAX_NGRAMS = 1 << 22


def split_words(s: bytes) -> list[bytes]:
    """LiteRT's word split (see the module docstring for its quirks)."""
    words = []
    prev = 0
    for i in range(1, len(s)):
        if s[i] in _SPACES:
            if i > prev and s[prev] not in _SPACES:
                words.append(s[prev:i])
            prev = i + 1
    if len(s) > prev:
        words.append(s[prev:])
    return words


def count_prefixes(n: int, k: int, skip: int, limit: int) -> int:
    """How many word sequences (grams and their shorter prefixes) :func:`skip_grams` walks,
    counted depth by depth without building them; stops early once past ``limit`` (the count
    returned is then some number above it). Float counts, capped, so nothing overflows."""
    if k <= 0 or n < k:
        return 0
    span = max(skip, -1) + 1
    row = np.ones(n)  # sequences of the current depth ending at each word
    total = float(n)
    for _ in range(1, k):
        if total > limit:
            break
        acc = np.concatenate(([0.0], np.cumsum(row)))
        p = np.arange(n)
        row = np.minimum(acc[p] - acc[np.maximum(p - span, 0)], limit + 1.0)
        depth_total = float(row.sum())
        if depth_total == 0:
            break
        total += depth_total
    return int(min(total, limit + 1.0))


def skip_grams(words: list[bytes], k: int, skip: int, include_all: bool) -> list[bytes]:
    """The grams in LiteRT's order: prefixes are extended depth first by each next word within
    ``skip`` skipped words; a prefix is emitted after its extensions, if its size is ``k`` (or
    any size up to ``k`` with ``include_all``)."""
    n = len(words)
    out: list[bytes] = []
    if k <= 0 or n < k:
        return out
    span = max(skip, -1) + 1
    for first in range(n):
        path = [first]
        todo = [iter(range(first + 1, min(n, first + span + 1)))]
        while path:
            nxt = next(todo[-1], None) if len(path) < k else None
            if nxt is not None:
                path.append(nxt)
                todo.append(iter(range(nxt + 1, min(n, nxt + span + 1))))
                continue
            if len(path) == k or include_all:
                out.append(b" ".join([words[i] for i in path]))
            path.pop()
            todo.pop()
    return out


@register(Op.SKIP_GRAM)
class SkipGram(Kernel):
    def prepare(self):
        node = self.node
        if len(node.inputs) != 1 or len(node.outputs) != 1 or node.inputs[0] is None \
                or node.outputs[0] is None:
            raise node.fail(f"takes 1 input and 1 output, got {len(node.inputs)} and "
                            f"{len(node.outputs)}")
        for what, t in (("input", node.inputs[0]), ("output", node.outputs[0])):
            if t.tensor.dtype != TensorType.STRING:
                raise node.fail(f"{what} must be STRING, got {t.tensor.type_name}")
        o = node.options
        self.k, self.skip = int(o.ngram_size), int(o.max_skip_size)
        self.include_all = bool(o.include_all_ngrams)
        x = node.inputs[0]
        if x.data is not None:  # a constant sentence: the grams (and their count) are known
            self.known = self.grams(x.data, runtime=False)
            return [self.known.shape]
        self.known = None
        mark_dynamic(node)
        return [node.outputs[0].shape]

    def grams(self, x: np.ndarray, runtime: bool) -> np.ndarray:
        node = self.node
        flat = np.asarray(x).reshape(-1)
        if flat.size == 0:  # LiteRT reads string 0 regardless (out of bounds)
            raise node.fail("the input holds no string")
        words = split_words(flat[0])
        # The walk visits every prefix, emitted or not: bound that, not only the output.
        work = count_prefixes(len(words), self.k, self.skip, MAX_NGRAMS)
        if work > MAX_NGRAMS:
            msg = (f"{len(words)} words with ngram_size {self.k} and max_skip_size "
                   f"{self.skip} make more than {MAX_NGRAMS} word sequences to enumerate")
            if runtime:
                raise InputError(f"{node.path}: {msg}")
            raise node.fail(msg)
        grams = skip_grams(words, self.k, self.skip, self.include_all)
        out = np.empty(len(grams), dtype=object)
        out[:] = grams
        return out

    def eval(self, inputs):
        if self.known is not None:
            return [self.known]
        return [self.grams(inputs[0], runtime=True)]
