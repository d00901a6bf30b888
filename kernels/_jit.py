"""The switch for the compiled inner loops of :mod:`._loops` (numba).

Kernels ask :func:`loops` at prepare time: it returns the compiled-loop module, or None when
numba is not installed, fails to import, or the loops are switched off (environment variable
``WORKBENCH_JIT=0`` at import, or :func:`disabled` / :func:`set_enabled` at run time). With
None the kernels keep their numpy forms, which compute the same values (tests compare them).

numba compiles each loop on its first call for the argument types it sees (about a second per
loop) and caches the machine code next to this module (``__pycache__``), so later processes
load it in milliseconds.

:func:`int8_gemm` and :func:`float_gemm` are the second switch, for the AVX-512 GEMMs of
:mod:`._avx512` (int8 on VNNI, float32 on AVX-512F): None when the loops are off, the host
CPU lacks the instructions, or ``WORKBENCH_AVX512=0`` (or :func:`avx512_disabled`); the
kernels then keep their BLAS paths (same integers; float32 within the float contract).
"""

from __future__ import annotations

import contextlib
import os

_enabled = os.environ.get("WORKBENCH_JIT", "1").strip().lower() not in ("0", "false", "no",
                                                                         "off")
_module = None
_failed = False
_avx512_enabled = os.environ.get("WORKBENCH_AVX512", "1").strip().lower() not in (
    "0", "false", "no", "off")
_avx512 = None
_avx512_failed = False


def set_enabled(flag: bool) -> None:
    """Use the compiled loops in kernels prepared from now on (True) or the numpy forms."""
    global _enabled
    _enabled = bool(flag)


@contextlib.contextmanager
def disabled():
    """Kernels prepared inside the block use their numpy forms (tests compare the two)."""
    global _enabled
    old, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = old


def loops():
    """The compiled-loop module, or None (see the module docstring)."""
    global _module, _failed
    if not _enabled or _failed:
        return None
    if _module is None:
        try:
            from . import _loops
        except Exception:  # numba missing or broken on this platform: numpy forms
            _failed = True
            return None
        _module = _loops
    return _module


@contextlib.contextmanager
def avx512_disabled():
    """Kernels prepared inside the block keep their BLAS GEMMs (the compiled loops stay on)."""
    global _avx512_enabled
    old, _avx512_enabled = _avx512_enabled, False
    try:
        yield
    finally:
        _avx512_enabled = old


def _avx512_module():
    global _avx512, _avx512_failed
    if not _avx512_enabled or _avx512_failed or loops() is None:
        return None
    if _avx512 is None:
        try:
            from . import _avx512 as mod
            if not mod.FEATURES["avx512"]:
                raise RuntimeError("no AVX-512 on this CPU")
        except Exception:  # noqa: BLE001 - the BLAS paths compute the same values
            _avx512_failed = True
            return None
        _avx512 = mod
    return _avx512


def int8_gemm():
    """The AVX-512 GEMM module (:mod:`._avx512`) when its int8 GEMM runs here (VNNI), else
    None (see the module docstring)."""
    mod = _avx512_module()
    return mod if mod is not None and mod.FEATURES["vnni"] else None


def float_gemm():
    """The AVX-512 GEMM module (:mod:`._avx512`) for its float32 GEMM, or None."""
    return _avx512_module()
