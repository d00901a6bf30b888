"""Thread control for the numpy kernels: BLAS thread limits."""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit numpy's BLAS (OpenBLAS) to ``n`` threads inside the block (``None``: unchanged).

    Uses OpenBLAS's own ``set_num_threads`` in numpy's bundled library (the BLAS the kernels
    call), else ``threadpoolctl`` when installed; does nothing when neither is available. On a
    busy machine a multi-threaded GEMM waits for its sibling threads to be scheduled, which can
    turn a 0.1 ms op into a 10 ms one, so ``num_threads=1`` gives steadier profiles there."""
    if n is None:
        yield
        return
    # numpy's bundled OpenBLAS, found once: two C calls per block. threadpoolctl rescans the
    # loaded libraries on every use (~0.2 ms, 1% of a MobileNetV2 invoke), so it is only the
    # fallback, for numpy builds on another BLAS.
    get, set_ = _openblas_controls()
    if get is not None:
        old = int(get())
        if old == int(n):
            yield
            return
        set_(int(n))
        try:
            yield
        finally:
            set_(old)
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


@functools.cache
def _openblas_controls():
    import ctypes
    import glob

    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                set_.argtypes = [ctypes.c_int]
                return get, set_
    return None, None
