"""The switch for the compiled inner loops of :mod:`._loops` (numba).

Kernels ask :func:`loops` at prepare time: it returns the compiled-loop module, or None when
numba is not installed, fails to import, or the loops are switched off (environment variable
``WORKBENCH_JIT=0`` at import, or :func:`disabled` / :func:`set_enabled` at run time). With
None the kernels keep their numpy forms, which compute the same values (tests compare them).

numba compiles each loop on its first call for the argument types it sees (about a second per
loop) and caches the machine code next to this module (``__pycache__``), so later processes
load it in milliseconds.

:func:`int8_gemm` is the second switch, for the AVX-512 VNNI int8 GEMM of :mod:`._vnni`: None
when the loops are off, the host CPU lacks the instructions, or ``WORKBENCH_VNNI=0`` (or
:func:`vnni_disabled`); the integer kernels then keep their BLAS path (same values).
"""

from __future__ import annotations

import contextlib
import os

_enabled = os.environ.get("WORKBENCH_JIT", "1").strip().lower() not in ("0", "false", "no",
                                                                         "off")
_module = None
_failed = False
_vnni_enabled = os.environ.get("WORKBENCH_VNNI", "1").strip().lower() not in ("0", "false",
                                                                              "no", "off")
_vnni = None
_vnni_failed = False


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
def vnni_disabled():
    """Kernels prepared inside the block keep their BLAS GEMMs (the compiled loops stay on)."""
    global _vnni_enabled
    old, _vnni_enabled = _vnni_enabled, False
    try:
        yield
    finally:
        _vnni_enabled = old


def int8_gemm():
    """The VNNI int8 GEMM module (:mod:`._vnni`), or None (see the module docstring)."""
    global _vnni, _vnni_failed
    if not _vnni_enabled or _vnni_failed or loops() is None:
        return None
    if _vnni is None:
        try:
            from . import _vnni as mod
            if not mod.available():
                raise RuntimeError("no AVX-512 VNNI on this CPU")
        except Exception:  # noqa: BLE001 - the BLAS path computes the same values
            _vnni_failed = True
            return None
        _vnni = mod
    return _vnni
