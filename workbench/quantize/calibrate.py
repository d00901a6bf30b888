"""Calibration: statistics of every float activation over a representative dataset, and the
quantization ranges chosen from them by several methods.

:func:`collect` runs the float model in our interpreter over the dataset with a hook that updates
one streaming accumulator per float activation tensor (the model inputs and every operator
output of the main subgraph; constants are weights, not calibrated here). Each accumulator keeps

* the exact minimum and maximum, the element count, the count of exact zeros, mean and std
  (per-invoke sums accumulated in float64) and the count of non-finite values (left out of
  everything else);
* the per-invoke ("per-batch") minimum and maximum, so moving averages are computed at query
  time for any momentum;
* a histogram of ``x`` (signed, not ``|x|``, so asymmetric ranges keep both tails). Its grid is
  anchored at zero: bin ``k`` holds ``[k*w, (k+1)*w)``; only the bins between the smallest and
  the largest value seen are stored, at most ``bins`` of them. The width ``w`` is set from the
  first invoke with a spread (``(max - min) / (bins - 1)``) and doubles whenever new data would
  need more than ``bins`` bins, merging bins in pairs, which is exact because the grid is
  anchored. So the histogram always spans the data with between ``bins / 2`` and ``bins`` bins,
  streaming gives the histogram a one-shot pass with the same final width would (up to values
  within float rounding of an edge, which may land in the neighbouring bin), zero
  is always an edge (the exact zeros of a ReLU are a point mass we track separately) and the
  mirror image of an edge is an edge, so ``|x|`` folds exactly. Until data with a spread
  arrives (a constant tensor) only the constant and its count are kept.

:meth:`CalibrationStats.ranges` then turns the statistics into ``(min, max)`` per tensor:

``minmax``
    The observed minimum and maximum (TF's converter's calibration).
``moving_average``
    Exponential moving average of the per-invoke minima and maxima:
    ``m = momentum * m + (1 - momentum) * batch``, started at the first invoke (TF's
    moving-average quantization); ``momentum=None`` gives their plain mean. Default 0.9.
``percentile``
    The ``100 - p`` and ``p`` percentiles (default ``percentile=99.99``), linearly interpolated
    inside a histogram bin (exact zeros are a point mass); ``symmetric=True`` uses the
    ``p`` percentile of ``|x|`` for both ends.
``mse``
    The clipping range ``[lo, hi]`` (containing 0, as the quantized grid must) minimizing the
    expected squared error of quantizing the histogram onto the ``num_bits`` grid: values
    outside are clipped (their squared distance to the bound, integrated over each bin as
    uniform), values inside get rounding noise ``scale**2 / 12`` except exact zeros, which are
    represented exactly. ``symmetric=True`` searches ``[-a, a]`` on the narrow symmetric grid
    (int16 activations). A coarse 2-D grid search over bin edges is refined around its best.
``kl``
    Entropy calibration in the manner of TensorRT: for each candidate threshold ``T`` (a bin
    edge), the distribution ``P`` clipped at ``T`` (outliers added to the last bin) is compared
    with its quantization ``Q`` onto the integer levels (each level's mass spread over the
    non-empty bins it covers) and the ``T`` of smallest ``KL(P || Q)`` wins. A one-sided
    distribution (all >= 0 or all <= 0) uses ``2**num_bits - 1`` levels on its side; a two-sided
    one is folded to ``|x|`` with ``2**(num_bits - 1)`` levels and clipped to ``[-T, T]``. Exact
    zeros are left out (any range represents them exactly; their spike would swamp ``P``). When
    the grid has more levels than the histogram bins (int16), quantization loses nothing the
    histogram can see, and the method returns the min/max. Its known weakness: on spiky
    histograms (activations of discretized inputs) the divergence curve is ragged and its
    minimum can clip far into the data; ``mse`` measures what clipping costs.

Ranges are raw: the quantizer extends each to contain 0 and nudges it so that 0 is exactly
representable; :func:`scale_zero_point` does the same for the table of :attr:`~CalibrationStats.df`.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from workbench.errors import InputError
from workbench.interpreter.interpreter import Hook, Interpreter
from workbench.ir.graph import Model, Tensor

METHODS = ("minmax", "moving_average", "percentile", "mse", "kl")

#: Default options of each method (overridden by ``ranges(..., **opts)``).
DEFAULTS: dict[str, dict[str, Any]] = {
    "minmax": {},
    "moving_average": {"momentum": 0.9},
    "percentile": {"percentile": 99.99, "symmetric": False},
    "mse": {"num_bits": 8, "symmetric": False},
    "kl": {"num_bits": 8},
}

_FORMAT = "workbench-calibration"
_VERSION = 1


# -- one tensor's streaming statistics -----------------------------------------------------------
class TensorStats:
    """Streaming statistics of one float tensor (see the module docstring).

    Attributes are plain numbers and numpy arrays; :meth:`update` adds one observed value.
    """

    def __init__(self, name: str, index: int, op: str, shape: tuple[int, ...], bins: int = 2048):
        if bins < 2:
            raise InputError(f"bins must be >= 2, got {bins}")
        self.name, self.index, self.op, self.shape = name, int(index), op, tuple(shape)
        self.bins = int(bins)
        self.count = 0          # finite elements seen
        self.nonfinite = 0      # inf / nan elements seen (ignored by every statistic)
        self.zeros = 0          # exact zeros among the finite elements
        self.min = math.inf
        self.max = -math.inf
        self.sum = 0.0
        self.sumsq = 0.0
        self.batch_min: list[float] = []
        self.batch_max: list[float] = []
        self.width = 0.0        # histogram bin width; 0 until data with a spread arrived
        self.k0 = 0             # grid index of counts[0]
        self.counts = np.zeros(0, np.int64)
        self.const_value: float | None = None  # the value of a (so far) constant tensor
        self.const_count = 0

    # -- updating -------------------------------------------------------------------------------
    def update(self, x: np.ndarray) -> None:
        """Add every element of ``x`` (one invoke's value of the tensor)."""
        x = np.asarray(x)
        if x.dtype != np.float32 and x.dtype != np.float64:
            x = x.astype(np.float32)
        if x.size == 0:
            return
        mn, mx = x.min(), x.max()
        if not (np.isfinite(mn) and np.isfinite(mx)):
            keep = np.isfinite(x)
            self.nonfinite += int(x.size - np.count_nonzero(keep))
            x = x[keep]
            if x.size == 0:
                return
            mn, mx = x.min(), x.max()
        mn, mx = float(mn), float(mx)
        n = int(x.size)
        self.count += n
        self.min = min(self.min, mn)
        self.max = max(self.max, mx)
        self.batch_min.append(mn)
        self.batch_max.append(mx)
        flat = x.reshape(-1)
        # Per-invoke sums in the data's type (numpy's pairwise summation and BLAS dot products:
        # 3x faster than casting to float64), accumulated over invokes in float64; mean and std
        # are summary columns, never used to choose a range.
        self.sum += float(flat.sum())
        self.sumsq += float(np.dot(flat, flat))
        if mn <= 0.0 <= mx:
            self.zeros += n - int(np.count_nonzero(flat))
        if mn == mx and self.width == 0.0:
            if self.const_value is None or self.const_value == mn:
                self.const_value = mn
                self.const_count += n
                return
        self._cover(mn, mx)
        if self.width == 0.0:  # a spread too small for any positive float width
            self.const_count += n
            return
        ends = np.array([mn, mx], flat.dtype)
        while True:
            lo, hi = (int(v) for v in np.floor(self._scaled(ends)))
            if lo >= 0 and hi < self.counts.size:
                break
            self._extend(self.k0 + lo, self.k0 + hi)
        # Positions relative to the window start: the arithmetic (same dtype, subtract,
        # multiply) is monotonic, so every value of the batch lies in [pos(min), pos(max)],
        # i.e. in [0, size): truncation is floor and no clipping pass is needed.
        self.counts += np.bincount(self._scaled(flat).astype(np.intp),
                                   minlength=self.counts.size)

    def _scaled(self, v: np.ndarray) -> np.ndarray:
        """``(v - start) / width``: the position of ``v`` in the window, in bins."""
        inv = 1.0 / self.width
        base = self.k0 * self.width
        span = max(abs(self.min), abs(self.max)) * inv
        if v.dtype == np.float32 and span < 2.0 ** 22 and inv < 3e38:
            # float32 keeps the error below a quarter bin at this span, at half the traffic.
            r = v - np.float32(base)
            r *= np.float32(inv)
            return r
        r = v.astype(np.float64) - base
        r *= inv
        return r

    def _cover(self, mn: float, mx: float) -> None:
        """Make the grid wide enough for ``[mn, mx]`` (and a pending constant)."""
        if self.width == 0.0:
            lo, hi = mn, mx
            if self.const_value is not None:
                lo, hi = min(lo, self.const_value), max(hi, self.const_value)
            w = hi / (self.bins - 1) - lo / (self.bins - 1)  # no overflow at +-3e38
            if not (w > 0.0 and math.isfinite(w)):
                return
            # A whisker more than the exact span: floor(hi / w) must not land one bin past.
            self.width = w * (1.0 + 1e-6)
            self.k0 = math.floor(lo / self.width)
            self.counts = np.zeros(1, np.int64)
            if self.const_count:
                c = self.const_value
                self.const_value, self.const_count, n = None, 0, self.const_count
                self._extend(math.floor(c / self.width), math.floor(c / self.width))
                self.counts[math.floor(c / self.width) - self.k0] += n

    def _extend(self, lo: int, hi: int) -> None:
        """Grow the stored window to grid indices ``lo..hi``, doubling the width (merging bins
        in pairs) while it would exceed ``bins`` bins."""
        a = min(lo, self.k0)
        b = max(hi, self.k0 + self.counts.size - 1)
        counts, k0 = self.counts, self.k0
        # The caller re-computes the batch's end indices at the new width and calls again if
        # float rounding put one of them a bin outside.
        while b - a + 1 > self.bins:
            # Merge pairs (2j, 2j+1) -> j: pad so the window starts at an even index.
            if k0 % 2:
                counts = np.concatenate([[0], counts])
                k0 -= 1
            if counts.size % 2:
                counts = np.concatenate([counts, [0]])
            counts = counts.reshape(-1, 2).sum(axis=1)
            k0 //= 2
            self.width *= 2.0
            a, b = a // 2, b // 2
        out = np.zeros(b - a + 1, np.int64)
        out[k0 - a: k0 - a + counts.size] = counts
        self.counts, self.k0 = out, a

    # -- derived -----------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        if not self.count:
            return math.nan
        m = self.mean
        return math.sqrt(max(self.sumsq / self.count - m * m, 0.0))

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)`` of the finite values (``len(edges) == len(counts) + 1``). A
        constant tensor gives one bin of zero width at its value."""
        if self.width == 0.0:
            if self.const_value is None:
                return np.zeros(0, np.int64), np.zeros(1)
            return np.array([self.const_count], np.int64), np.array([self.const_value] * 2)
        edges = (self.k0 + np.arange(self.counts.size + 1)) * self.width
        return self.counts.copy(), edges

    def cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lo, hi, count)`` of disjoint sorted cells for the range methods: the histogram
        bins with the outer edges replaced by the exact extremes, and the exact zeros split out
        as a point cell ``[0, 0]``."""
        counts, edges = self.histogram()
        if counts.size == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        lo = edges[:-1].astype(np.float64)
        hi = edges[1:].astype(np.float64)
        lo[0] = self.min
        hi[-1] = self.max
        c = counts.astype(np.float64)
        z = -self.k0  # stored position of grid bin 0, the one starting at 0
        if self.zeros and self.width and 0 <= z < c.size:
            c[z] -= self.zeros
            lo = np.insert(lo, z, 0.0)
            hi = np.insert(hi, z, 0.0)
            c = np.insert(c, z, float(self.zeros))
            lo[z + 1] = max(lo[z + 1], 0.0)
        keep = c > 0
        return lo[keep], hi[keep], c[keep]

    # -- ranges ------------------------------------------------------------------------------
    def range(self, method: str = "minmax", **opts) -> tuple[float, float]:
        """``(min, max)`` chosen by ``method`` with options ``opts`` (see the module
        docstring). A tensor that never received a finite value gives ``(0.0, 0.0)``."""
        if method not in METHODS:
            raise InputError(f"unknown calibration method {method!r}; choose one of {METHODS}")
        o = dict(DEFAULTS[method])
        unknown = set(opts) - set(o) - {"num_bits", "symmetric"}
        if unknown:
            raise InputError(f"calibration method {method!r} has no option(s) "
                             f"{sorted(unknown)}; its options are {sorted(o)}")
        o.update(opts)
        if not self.count:
            return 0.0, 0.0
        if method == "minmax" or self.min == self.max:
            return self.min, self.max
        if method == "moving_average":
            return _moving_average(self.batch_min, o["momentum"]), \
                _moving_average(self.batch_max, o["momentum"])
        if method == "percentile":
            return _percentile_range(self, float(o["percentile"]), bool(o["symmetric"]))
        if method == "mse":
            return _mse_range(self, int(o.get("num_bits", 8)), bool(o["symmetric"]))
        return _kl_range(self, int(o.get("num_bits", 8)))


def _moving_average(values: list[float], momentum: float | None) -> float:
    v = np.asarray(values, np.float64)
    if momentum is None:
        return float(v.mean())
    if not 0.0 <= momentum < 1.0:
        raise InputError(f"moving_average momentum must be in [0, 1), got {momentum}")
    m = v[0]
    for b in v[1:]:
        m = momentum * m + (1.0 - momentum) * b
    return float(m)


# -- percentile ---------------------------------------------------------------------------------
def _quantile(lo: np.ndarray, hi: np.ndarray, c: np.ndarray, q: float) -> float:
    """The value below which a fraction ``q`` of the mass lies, values uniform in each cell."""
    cum = np.cumsum(c)
    total = cum[-1]
    target = q * total
    j = int(np.searchsorted(cum, target, side="left"))
    j = min(j, c.size - 1)
    before = cum[j] - c[j]
    frac = 0.0 if c[j] == 0 else min(max((target - before) / c[j], 0.0), 1.0)
    return float(lo[j] + frac * (hi[j] - lo[j]))


def _percentile_range(s: TensorStats, p: float, symmetric: bool) -> tuple[float, float]:
    if not 50.0 <= p <= 100.0:
        raise InputError(f"percentile must be in [50, 100], got {p}")
    if symmetric:
        flo, fhi, fc = _abs_cells(s)
        v = _quantile(flo, fhi, fc, p / 100.0)
        return -v, v
    lo, hi, c = s.cells()
    return _quantile(lo, hi, c, 1.0 - p / 100.0), _quantile(lo, hi, c, p / 100.0)


def _abs_hist(s: TensorStats) -> np.ndarray:
    """Histogram of ``|x|`` on the anchored grid: bin ``j`` holds ``[j*w, (j+1)*w)``. Grid bin
    ``k < 0`` (``[k*w, (k+1)*w)``) mirrors exactly onto ``j = -k-1``."""
    kk = s.k0 + np.arange(s.counts.size)
    j = np.where(kk >= 0, kk, -kk - 1)
    return np.bincount(j, weights=s.counts.astype(np.float64))


def _abs_cells(s: TensorStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of ``|x|`` like :meth:`TensorStats.cells`: exact zeros as a point cell, the last
    edge at the exact ``max |x|``."""
    h = _abs_hist(s)
    lo = np.arange(h.size) * s.width
    hi = lo + s.width
    hi[-1] = max(abs(s.min), abs(s.max))
    if s.zeros:
        h[0] -= s.zeros
        lo, hi, h = np.insert(lo, 0, 0.0), np.insert(hi, 0, 0.0), np.insert(h, 0, s.zeros)
    keep = h > 0
    return lo[keep], hi[keep], h[keep]


# -- mse ----------------------------------------------------------------------------------------
class _Tails:
    """Vectorized clip errors of a cell set: mass and squared distance beyond a bound."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, c: np.ndarray):
        self.lo, self.hi, self.c = lo, hi, c
        m1 = 0.5 * (lo + hi)
        m2 = (lo * lo + lo * hi + hi * hi) / 3.0
        # Suffix sums (cells j.. end) and prefix sums (cells ..j-1).
        self.sc = np.concatenate([np.cumsum(c[::-1])[::-1], [0.0]])
        self.s1 = np.concatenate([np.cumsum((c * m1)[::-1])[::-1], [0.0]])
        self.s2 = np.concatenate([np.cumsum((c * m2)[::-1])[::-1], [0.0]])
        self.pc = np.concatenate([[0.0], np.cumsum(c)])
        self.p1 = np.concatenate([[0.0], np.cumsum(c * m1)])
        self.p2 = np.concatenate([[0.0], np.cumsum(c * m2)])

    def above(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each bound ``t``: (mass above ``t``, sum of ``(x - t)**2`` over it)."""
        j = np.searchsorted(self.lo, t, side="left")  # cells j.. lie entirely >= t
        mass = self.sc[j]
        err = self.s2[j] - 2.0 * t * self.s1[j] + t * t * self.sc[j]
        i = j - 1  # the cell before may straddle t
        ok = i >= 0
        ii = np.where(ok, i, 0)
        lo, hi, c = self.lo[ii], self.hi[ii], self.c[ii]
        part = ok & (hi > t) & (hi > lo)
        frac = np.where(part, (hi - t) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        mass = mass + c * frac
        err = err + c * frac * np.where(part, (hi - t) ** 2, 0.0) / 3.0
        return mass, np.maximum(err, 0.0)

    def below(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each bound ``t``: (mass below ``t``, sum of ``(t - x)**2`` over it)."""
        j = np.searchsorted(self.hi, t, side="right")  # cells ..j-1 lie entirely <= t
        mass = self.pc[j]
        err = self.p2[j] - 2.0 * t * self.p1[j] + t * t * self.pc[j]
        ok = j < self.c.size
        jj = np.where(ok, j, 0)
        lo, hi, c = self.lo[jj], self.hi[jj], self.c[jj]
        part = ok & (lo < t) & (hi > lo)
        frac = np.where(part, (t - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        mass = mass + c * frac
        err = err + c * frac * np.where(part, (t - lo) ** 2, 0.0) / 3.0
        return mass, np.maximum(err, 0.0)


def _candidates(edges: np.ndarray, a: float, b: float, n: int) -> np.ndarray:
    """Up to ``n`` bounds from ``edges`` within ``[a, b]``, both ends always included."""
    e = edges[(edges > a) & (edges < b)]
    if e.size > n:
        e = e[np.linspace(0, e.size - 1, n).round().astype(int)]
    return np.unique(np.concatenate([[a, b], e]))


def _nonzero_tails(s: TensorStats) -> tuple[_Tails, float]:
    """Tails of the cells without the exact zeros (always inside a range, which contains 0,
    and represented exactly), and the total count of all values."""
    lo, hi, c = s.cells()
    keep = ~((lo == 0.0) & (hi == 0.0))
    return _Tails(lo[keep], hi[keep], c[keep]), float(c.sum())


def expected_mse(s: TensorStats, lo: np.ndarray | float, hi: np.ndarray | float, num_bits: int = 8,
                 symmetric: bool = False) -> np.ndarray:
    """Expected squared quantization error per element of ``s``'s data for clip ranges
    ``[lo, hi]`` (broadcast; each must contain 0), under the model the ``mse`` method
    minimizes."""
    t, total = _nonzero_tails(s)
    return _mse_table(t, np.asarray(lo, float), np.asarray(hi, float), num_bits,
                      symmetric) / max(total, 1.0)


def _mse_table(t: _Tails, lo: np.ndarray, hi: np.ndarray, num_bits: int,
               symmetric: bool) -> np.ndarray:
    """Summed squared error of the non-zero values for clip ranges ``[lo, hi]``: clipped
    values contribute their squared distance to the bound, values inside the rounding noise
    ``step**2 / 12`` of a uniform error on the grid."""
    m_lo, e_lo = t.below(lo)
    m_hi, e_hi = t.above(hi)
    if symmetric:
        step = (hi - lo) / (2.0 ** num_bits - 2.0)
    else:
        step = (hi - lo) / (2.0 ** num_bits - 1.0)
    inside = np.maximum(t.sc[0] - m_lo - m_hi, 0.0)
    return e_lo + e_hi + inside * step * step / 12.0


def _argmin2(err: np.ndarray, lo_c: np.ndarray, hi_c: np.ndarray) -> tuple[int, int]:
    err = np.where((hi_c[None, :] - lo_c[:, None]) > 0, err, np.inf)
    i, j = np.unravel_index(int(np.argmin(err)), err.shape)
    return int(i), int(j)


def _mse_range(s: TensorStats, num_bits: int, symmetric: bool) -> tuple[float, float]:
    if not 2 <= num_bits <= 32:
        raise InputError(f"num_bits must be in [2, 32], got {num_bits}")
    t, _ = _nonzero_tails(s)
    _, edges = s.histogram()
    neg, pos = min(s.min, 0.0), max(s.max, 0.0)
    if symmetric:
        amax = max(-neg, pos)
        a = _candidates(np.abs(edges), 0.0, amax, 4096)
        a = a[a > 0]
        if a.size == 0:
            return s.min, s.max
        err = _mse_table(t, -a, a, num_bits, True)
        best = float(a[int(np.argmin(err))])
        return -best, best
    n = 160
    lo_c = _candidates(edges, neg, 0.0, n)
    hi_c = _candidates(edges, 0.0, pos, n)
    i, j = _argmin2(_mse_table(t, lo_c[:, None], hi_c[None, :], num_bits, False),
                    lo_c, hi_c)
    # Refine on every edge between the coarse neighbours of the best pair.
    lo_c = _candidates(edges, lo_c[max(i - 1, 0)], lo_c[min(i + 1, lo_c.size - 1)], 4 * n)
    hi_c = _candidates(edges, hi_c[max(j - 1, 0)], hi_c[min(j + 1, hi_c.size - 1)], 4 * n)
    i, j = _argmin2(_mse_table(t, lo_c[:, None], hi_c[None, :], num_bits, False),
                    lo_c, hi_c)
    lo, hi = float(lo_c[i]), float(hi_c[j])
    # Never widen past the data: the candidates include 0, the range must stay within it.
    return max(lo, min(s.min, 0.0)), min(hi, max(s.max, 0.0))


# -- kl -----------------------------------------------------------------------------------------
def _kl_divergence_curve(hist: np.ndarray, levels: int, cand: np.ndarray) -> np.ndarray:
    """KL(P || Q) for each candidate number of bins ``i`` in ``cand`` (TensorRT's recipe).

    ``P`` is ``hist[:i]`` with the outliers ``hist[i:]`` added to its last bin; ``Q`` maps bin
    ``j`` to level ``floor(j * levels / i)`` (the levels split ``[0, i)`` evenly), gives each
    level the mass of its bins in ``hist[:i]`` and spreads it evenly over those of its bins
    that are not empty. Both are normalized; a bin where ``P > 0`` but ``Q == 0`` (only the
    outlier bin can be one) counts with ``Q = 1e-12`` instead of an infinite divergence."""
    out = np.empty(cand.size)
    full = hist.astype(np.float64)
    suffix = np.concatenate([np.cumsum(full[::-1])[::-1], [0.0]])
    for n, i in enumerate(cand):
        i = int(i)
        src = full[:i]
        nz = src > 0
        g = (np.arange(i) * levels) // i
        gsum = np.bincount(g, weights=src, minlength=levels)
        gnz = np.bincount(g, weights=nz, minlength=levels)
        q = np.where(nz, gsum[g] / np.maximum(gnz[g], 1.0), 0.0)
        p = src.copy()
        p[-1] += suffix[i]
        ps, qs = p.sum(), q.sum()
        if ps <= 0 or qs <= 0:
            out[n] = np.inf
            continue
        m = p > 0
        pm = p[m] / ps
        out[n] = float(np.sum(pm * np.log(pm / np.maximum(q[m] / qs, 1e-12))))
    return out


def _kl_range(s: TensorStats, num_bits: int) -> tuple[float, float]:
    if not 2 <= num_bits <= 32:
        raise InputError(f"num_bits must be in [2, 32], got {num_bits}")
    if s.width == 0.0:
        return s.min, s.max
    if s.min >= 0.0 or s.max <= 0.0:
        sign = 1.0 if s.min >= 0.0 else -1.0
        levels = 2 ** num_bits - 1
    else:
        sign = 0.0
        levels = 2 ** (num_bits - 1)
    hist = _abs_hist(s)
    # Exact zeros (ReLU) are represented exactly by any range: leaving their spike in bin 0
    # would dominate the divergence (the level covering bin 0 spreads it over its bins) and
    # make the curve ragged; TensorRT's recipe assumes a smooth histogram.
    hist[0] -= s.zeros
    w = s.width
    if hist.size > s.bins:
        # Data far from zero (e.g. [0.097, 0.102]): |x| from 0 spans many more bins than the
        # data did; merge them (exactly, the grid is anchored) back to at most `bins`.
        f = -(-hist.size // s.bins)
        hist = np.concatenate([hist, np.zeros(-hist.size % f)]).reshape(-1, f).sum(axis=1)
        w *= f
    nb = hist.size
    if nb <= levels:
        return s.min, s.max
    # Every candidate, as TensorRT scans: the curve is ragged where the tail is sparse, so a
    # coarse-to-fine search can miss its minimum.
    # A threshold inside the gap between 0 and data far from it would clip everything.
    first = max(levels, min(nb, math.ceil(min(abs(s.min), abs(s.max)) / w) if sign else 0))
    cand = np.arange(first, nb + 1)
    i = int(cand[int(np.argmin(_kl_divergence_curve(hist, levels, cand)))])
    thr = i * w
    if sign > 0:
        return s.min, min(s.max, thr)
    if sign < 0:
        return max(s.min, -thr), s.max
    return max(s.min, -thr), min(s.max, thr)


# -- scale / zero point --------------------------------------------------------------------------
def scale_zero_point(rmin: float, rmax: float, num_bits: int = 8, symmetric: bool = False,
                     signed: bool = True) -> tuple[float, int]:
    """TFLite's affine parameters for a range: extended to contain 0; asymmetric uses the full
    ``2**num_bits - 1`` steps and a rounded, clamped zero point; symmetric uses
    ``max(|rmin|, |rmax|) / (2**(num_bits-1) - 1)`` and zero point 0. A zero range gives scale
    1.0 (any scale represents only zeros exactly)."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    qmin = -(2 ** (num_bits - 1)) if signed else 0
    qmax = qmin + 2 ** num_bits - 1
    if symmetric:
        a = max(-rmin, rmax)
        return (a / (2 ** (num_bits - 1) - 1) if a > 0 else 1.0), 0
    if rmax == rmin:
        return 1.0, 0 if signed else 0
    scale = (rmax - rmin) / (qmax - qmin)
    zp = int(round(qmin - rmin / scale))
    return scale, min(max(zp, qmin), qmax)


# -- the collection ------------------------------------------------------------------------------
class CalibrationStats:
    """Statistics of every calibrated tensor, by tensor name (see the module docstring).

    ``stats[name]`` is a :class:`TensorStats`; ``stats.names`` lists them in run order.
    """

    def __init__(self, tensors: Iterable[TensorStats], samples: int = 0, bins: int = 2048):
        self.tensors: dict[str, TensorStats] = {t.name: t for t in tensors}
        self.samples = int(samples)
        self.bins = int(bins)
        self._df = None

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    def __getitem__(self, name: str) -> TensorStats:
        return self._get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __len__(self) -> int:
        return len(self.tensors)

    def __repr__(self) -> str:
        return f"CalibrationStats({len(self)} tensors, {self.samples} samples, bins={self.bins})"

    def _get(self, name: str) -> TensorStats:
        try:
            return self.tensors[name]
        except KeyError:
            raise InputError(f"no calibrated tensor named {name!r} ({len(self)} tensors; "
                             f"e.g. {self.names[:5]})") from None

    # -- ranges ------------------------------------------------------------------------------
    def range(self, tensor_name: str, method: str = "minmax", **opts) -> tuple[float, float]:
        """``(min, max)`` of one tensor by ``method`` (see :meth:`ranges`)."""
        return self._get(tensor_name).range(method, **opts)

    def ranges(self, method: str | Mapping[str, Any] = "minmax", *, default: str = "minmax",
               **opts) -> dict[str, tuple[float, float]]:
        """``{tensor name: (min, max)}`` for every calibrated tensor.

        Parameters
        ----------
        method
            One of ``minmax``, ``moving_average``, ``percentile``, ``mse``, ``kl`` for every
            tensor, or a dict ``{tensor name: method}`` whose values may also be
            ``(method, {option: value})``; tensors it does not name use ``default``.
        default
            The method of tensors a per-tensor dict leaves out.
        **opts
            Options of the methods, e.g. ``percentile=99.9``, ``num_bits=16``,
            ``symmetric=True``, ``momentum=0.99``. Each method takes the options it knows
            (so one call can configure several); ``num_bits`` and ``symmetric`` describe the
            target grid and are accepted with any method. An option no method takes is an
            ``InputError`` (a misspelt option is never silently ignored).
        """
        per: dict[str, tuple[str, dict]] = {}
        if isinstance(method, Mapping):
            unknown = [n for n in method if n not in self.tensors]
            if unknown:
                raise InputError(f"calibration methods given for unknown tensors {unknown}")
            for n, m in method.items():
                if isinstance(m, tuple):
                    m, o = m
                    per[n] = (m, dict(o))
                else:
                    per[n] = (m, {})
        elif not isinstance(method, str):
            raise InputError(f"method must be a method name or a dict by tensor name, got "
                             f"{type(method).__name__}")
        known = set().union(*DEFAULTS.values()) | {"num_bits", "symmetric"}
        bad = sorted(set(opts) - known)
        if bad:
            raise InputError(f"unknown calibration option(s) {bad}; options are "
                             f"{sorted(known)}")
        out = {}
        for name, t in self.tensors.items():
            m, o = per.get(name, (method if isinstance(method, str) else default, {}))
            if m not in DEFAULTS:
                raise InputError(f"unknown calibration method {m!r} for tensor {name!r}; "
                                 f"choose one of {METHODS}")
            merged = {k: v for k, v in opts.items() if k in DEFAULTS[m]}
            merged.update(o)
            out[name] = t.range(m, **merged)
        return out

    # -- tables ------------------------------------------------------------------------------
    def table(self, methods: Iterable[str] = METHODS, num_bits: int = 8, **opts):
        """DataFrame, one row per tensor: name, index, op, shape, count, zeros, nonfinite, min,
        max, mean, std, and for each method its range and the scale / zero point TFLite's
        affine int (``num_bits``) quantization of that range would get."""
        import pandas as pd

        methods = list(methods)
        rows = []
        for t in self.tensors.values():
            r = {"name": t.name, "index": t.index, "op": t.op, "shape": t.shape,
                 "count": t.count, "zeros": t.zeros, "nonfinite": t.nonfinite,
                 "min": t.min if t.count else math.nan, "max": t.max if t.count else math.nan,
                 "mean": t.mean, "std": t.std}
            for m in methods:
                o = {k: v for k, v in opts.items() if k in DEFAULTS[m]}
                if m in ("mse", "kl"):
                    o["num_bits"] = num_bits
                lo, hi = t.range(m, **o)
                sc, zp = scale_zero_point(lo, hi, num_bits,
                                          symmetric=bool(o.get("symmetric", False)))
                r[f"{m}_min"], r[f"{m}_max"] = lo, hi
                r[f"{m}_scale"], r[f"{m}_zero_point"] = sc, zp
            rows.append(r)
        return pd.DataFrame(rows)

    @property
    def df(self):
        """:meth:`table` with every method and default options (computed once)."""
        if self._df is None:
            self._df = self.table()
        return self._df

    def histogram(self, tensor_name: str, frame: bool = False):
        """``(counts, edges)`` of one tensor's values (see :meth:`TensorStats.histogram`), or
        with ``frame=True`` a DataFrame with columns ``lo``, ``hi``, ``count`` (one row per
        bin)."""
        counts, edges = self._get(tensor_name).histogram()
        if not frame:
            return counts, edges
        import pandas as pd

        return pd.DataFrame({"lo": edges[:-1], "hi": edges[1:], "count": counts})

    def plot(self, tensor_name: str, methods: Iterable[str] = METHODS, log: bool = True,
             **opts):
        """Matplotlib ``Figure``: the tensor's histogram with each method's range marked."""
        from workbench.analysis import _result as R

        t = self._get(tensor_name)
        counts, edges = t.histogram()
        fig = R.figure((8, 3.2))
        ax = fig.add_subplot(1, 1, 1)
        if counts.size and edges[-1] > edges[0]:
            # One step patch (not 2048 bar patches: 100x faster to draw).
            ax.stairs(counts, edges, fill=True, color="#9ecae1")
            if log and counts.max() > 0:
                ax.set_yscale("log")
        elif counts.size:
            ax.axvline(edges[0], color="#9ecae1", lw=4)
        colors = ["#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
        for m, col in zip(methods, colors):
            lo, hi = t.range(m, **{k: v for k, v in opts.items() if k in DEFAULTS[m]})
            ax.axvline(lo, color=col, lw=1, ls="--", label=f"{m} [{lo:.4g}, {hi:.4g}]")
            ax.axvline(hi, color=col, lw=1, ls="--")
        ax.set_title(f"{t.name} ({t.op}), {t.count} values", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the statistics to ``path`` (a ``.npz`` archive, no pickles), atomically;
        refuses to replace an existing file unless ``overwrite``."""
        from workbench._io import atomic_write

        path = os.fspath(path)
        meta = {"format": _FORMAT, "version": _VERSION, "samples": self.samples,
                "bins": self.bins, "tensors": []}
        arrays: dict[str, np.ndarray] = {}
        for k, t in enumerate(self.tensors.values()):
            meta["tensors"].append({
                "name": t.name, "index": t.index, "op": t.op, "shape": list(t.shape),
                "bins": t.bins, "count": t.count, "nonfinite": t.nonfinite, "zeros": t.zeros,
                "min": t.min, "max": t.max, "sum": t.sum, "sumsq": t.sumsq, "width": t.width,
                "k0": t.k0, "const_value": t.const_value, "const_count": t.const_count})
            arrays[f"counts_{k}"] = t.counts
            arrays[f"batch_min_{k}"] = np.asarray(t.batch_min, np.float64)
            arrays[f"batch_max_{k}"] = np.asarray(t.batch_max, np.float64)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        # Refuses an existing file (even one appearing mid-write) unless overwrite=True.
        return atomic_write(path, buf.getvalue(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CalibrationStats:
        """Read statistics written by :meth:`save`."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") != _FORMAT:
                    raise InputError(f"{path} is not a workbench calibration file")
                if meta.get("version", 0) > _VERSION:
                    raise InputError(f"{path}: calibration format version {meta['version']} "
                                     f"is newer than this workbench ({_VERSION})")
                tensors = []
                for k, d in enumerate(meta["tensors"]):
                    t = TensorStats(d["name"], d["index"], d["op"], tuple(d["shape"]), d["bins"])
                    for f in ("count", "nonfinite", "zeros", "k0", "const_count"):
                        setattr(t, f, int(d[f]))
                    for f in ("min", "max", "sum", "sumsq", "width"):
                        setattr(t, f, float(d[f]))
                    t.const_value = d["const_value"]
                    t.counts = np.asarray(z[f"counts_{k}"], np.int64)
                    t.batch_min = z[f"batch_min_{k}"].tolist()
                    t.batch_max = z[f"batch_max_{k}"].tolist()
                    tensors.append(t)
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"cannot read calibration statistics from {path}: {e}") from e
        return cls(tensors, samples=meta["samples"], bins=meta["bins"])


# -- collecting ----------------------------------------------------------------------------------
class _StatsHook(Hook):
    """Updates the accumulators of the main subgraph's tracked op outputs (no copies)."""

    def __init__(self, acc: dict[int, TensorStats]):
        self.acc = acc

    def after_op(self, node, outputs):
        if node.subgraph != 0:
            return
        acc = self.acc
        for info, arr in zip(node.outputs, outputs):
            if info is not None:
                s = acc.get(info.index)
                if s is not None:
                    s.update(arr)


def _is_float(t: Tensor) -> bool:
    dt = t.numpy_dtype
    return dt is not None and np.issubdtype(dt, np.floating)


def _samples(dataset) -> tuple[Iterable, int | None]:
    """The samples of ``dataset`` and their number when known."""
    if callable(dataset):
        dataset = dataset()
    if isinstance(dataset, np.ndarray):
        # An array is a batch of samples along axis 0; each keeps a batch dimension of 1.
        return (dataset[i:i + 1] for i in range(dataset.shape[0] if dataset.ndim else 0)), \
            (dataset.shape[0] if dataset.ndim else 0)
    try:
        it = iter(dataset)
    except TypeError:
        raise InputError(f"dataset must be an iterable of samples or a callable returning "
                         f"one, got {type(dataset).__name__}") from None
    return it, (len(dataset) if hasattr(dataset, "__len__") else None)


def _check_sample(model: Model, it: Interpreter, sample, k: int) -> list[np.ndarray]:
    """The sample as a list of arrays in input order, cast to the input types, or InputError
    naming the input and what was expected."""
    from workbench.analysis._result import ordered_inputs

    if isinstance(sample, tuple):
        sample = list(sample)
    try:
        xs = ordered_inputs(it, sample)
    except InputError as e:
        raise InputError(f"calibration sample {k}: {e}") from None
    out = []
    for t, x in zip(model.main.inputs, xs):
        want = t.numpy_dtype
        if x.dtype == object or want is None:
            raise InputError(f"calibration sample {k}, input {t.name!r}: expected a numeric "
                             f"{want} array, got {x.dtype}")
        if np.issubdtype(want, np.floating):
            if not np.issubdtype(x.dtype, np.floating):
                raise InputError(f"calibration sample {k}, input {t.name!r}: expected floating-"
                                 f"point data ({np.dtype(want).name}), got {x.dtype}")
            if not np.all(np.isfinite(x)):  # ranges from NaN/inf data would be meaningless
                bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
                raise InputError(f"calibration sample {k}, input {t.name!r}: {bad} of "
                                 f"{np.size(x)} values are NaN or infinite")
        elif np.issubdtype(want, np.integer) and not np.issubdtype(x.dtype, np.integer) or \
                want == np.bool_ and x.dtype != np.bool_:
            raise InputError(f"calibration sample {k}, input {t.name!r}: expected "
                             f"{np.dtype(want).name} data, got {x.dtype}")
        sig = t.shape_signature if t.shape_signature else t.shape
        shape = tuple(x.shape)
        ok = len(shape) == len(t.shape) and all(
            a == b or s == -1 or (d == 0 and len(shape) > 1)
            for d, (a, b, s) in enumerate(zip(shape, t.shape, sig)))
        if not ok:
            raise InputError(f"calibration sample {k}, input {t.name!r}: shape {list(shape)} "
                             f"does not match the model input shape {list(t.shape)} "
                             f"(signature {list(sig)}; only the batch dimension may differ)")
        out.append(x.astype(want, copy=False))
    return out


def collect(model, dataset, *, tensors: Iterable[str] | None = None, progress: bool = True,
            bins: int = 2048, num_threads: int | None = 1) -> CalibrationStats:
    """Run the float model over ``dataset`` and gather statistics of its float activations.

    Parameters
    ----------
    model
        A :class:`~workbench.ir.graph.Model`, a path or bytes.
    dataset
        What TF's converter takes as ``representative_dataset``: a callable returning an
        iterable, or an iterable, of samples; a sample is a list/tuple of arrays (one per
        input, in input order), a dict by input or signature name, or a single array. Floating
        data for float inputs is cast to the input's type; only the batch dimension may differ
        from the model's input shape.
    tensors
        Names of the tensors to calibrate (default: every float model input and operator
        output of the main subgraph).
    progress
        Show a ``tqdm.auto`` progress bar.
    bins
        Most histogram bins kept per tensor.
    num_threads
        BLAS threads of the interpreter (``Interpreter(num_threads=...)``). One by default:
        the GEMMs of small calibration batches gain little from threads, and on a busy machine
        a multi-threaded GEMM waits for its sibling threads (MobileNetV2 measured 0.10 s per
        invoke with one thread, 0.35-0.59 s with two or BLAS's default). None: BLAS's default.

    Returns
    -------
    CalibrationStats

    Raises
    ------
    InputError
        A sample disagrees with the model inputs (count, names, dtype, shape), the dataset is
        empty, or ``tensors`` names a tensor that is not a float activation.
    """
    from workbench.analysis._result import load_model

    m = load_model(model)
    sg = m.main
    producer = {}
    for op in sg.operators:
        for o in op.outputs:
            if o is not None:
                producer[id(o)] = op.name
    index = {id(t): i for i, t in enumerate(sg.tensors)}
    inputs = {id(t) for t in sg.inputs}
    cands: list[Tensor] = [t for t in sg.inputs if _is_float(t)]
    for op in sg.operators:
        for o in op.outputs:
            if o is not None and _is_float(o) and not o.is_constant and id(o) not in inputs:
                cands.append(o)
    if tensors is not None:
        want = list(tensors)
        known = {t.name for t in cands}
        bad = [n for n in want if n not in known]
        if bad:
            raise InputError(f"not float activation tensors of the model: {bad}")
        cands = [t for t in cands if t.name in set(want)]
    acc: dict[int, TensorStats] = {}
    seen: set[str] = set()
    for t in cands:
        name = t.name if t.name not in seen else f"{t.name}#{index[id(t)]}"
        seen.add(name)
        acc[index[id(t)]] = TensorStats(name, index[id(t)], producer.get(id(t), "INPUT"),
                                        tuple(t.shape), bins)
    it = Interpreter(m, num_threads=num_threads)
    it.hooks.append(_StatsHook(acc))
    in_idx = [index[id(t)] for t in sg.inputs]
    samples, total = _samples(dataset)
    if progress:
        from tqdm.auto import tqdm

        samples = tqdm(samples, total=total, desc="calibrating", unit="sample", leave=False)
    n = 0
    try:
        for sample in samples:
            xs = _check_sample(m, it, sample, n)
            it.run(xs)
            for i, x in zip(in_idx, xs):
                s = acc.get(i)
                if s is not None:
                    s.update(x)
            n += 1
    finally:
        if progress:
            samples.close()
    if n == 0:
        raise InputError("the calibration dataset yielded no samples")
    return CalibrationStats(acc.values(), samples=n, bins=bins)
