"""Device profiles: the processors of a phone or board and the numbers the cost model needs.

A profile is a data file (JSON) in ``workbench/delegates/devices/``, one per device; users add
their own with :func:`register_device` (a dict, a path, or a :class:`DeviceProfile`). Layout::

    {
      "name": "pixel4", "display_name": "Google Pixel 4", "aliases": ["Pixel 4"],
      "soc": "Snapdragon 855", "notes": "...",
      "delegates": {"cpu": "cpu", "xnnpack": "cpu", "gpu": "gpu", "nnapi": "nnapi", ...},
      "processors": {
        "cpu": {
          "kind": "cpu", "description": "4x Cortex-A76 big cores",
          "cores": 4,                       # threads that scale (big cores)
          "thread_efficiency": 0.85,        # speedup(n) = 1 + (min(n, cores) - 1) * this
          "peak_gmacs": {"float32": 7.0, "int8": 20.0, "hybrid": 9.0},   # per thread, GMAC/s
          "bandwidth_gbps": 8.0,            # per thread for a CPU, capped by memory_bandwidth_gbps
          "memory_bandwidth_gbps": 30.0,
          "dispatch_us": 5.0,               # fixed cost per op
          "efficiency": {"conv": 1.0, "depthwise": 0.4, "fc": 0.6, ...},  # x peak, per op kind
          "uncertainty": [0.8, 1.25],       # estimate range: [low, high] x the estimate
          "provenance": "fitted by benchmarks/fit_delegates.py on 2026-11-22 (42 rows)",
          "spec": {...}                     # public spec values the prior came from
        },
        "gpu": {"kind": "gpu", "peak_gmacs": {"float16": ..., "float32": ...},
                "launch_us": 300.0,         # per delegated partition (enqueue + sync)
                "transfer_gbps": 5.0, "transfer_latency_us": 50.0,   # to/from CPU memory
                "dtype_map": {"int8": "float16"},   # int8 models run as float on the GPU
                ...}
      }
    }

``delegates`` maps a TFLite delegate name to the processor that runs what it claims; a
delegate absent from it does not exist on the device. Every number is positive; efficiencies
are fractions of the peak. Missing op kinds in ``efficiency`` default to 1.0; missing dtypes in
``peak_gmacs`` go through ``dtype_map`` and then to ``float32``.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import InputError

DEVICES_DIR = Path(__file__).resolve().parent / "devices"

#: Op kinds the cost model distinguishes (see :func:`workbench.delegates.cost.op_kind`).
KINDS = ("conv", "depthwise", "fc", "pool", "elementwise", "reduce", "move", "other")
#: Compute dtypes of an op (see :func:`workbench.delegates.cost.op_dtype`).
DTYPES = ("float32", "float16", "int8", "int16", "hybrid")
PROCESSOR_KINDS = ("cpu", "gpu", "npu", "dsp")
DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi", "hexagon", "coreml")


class DeviceProfileError(InputError):
    """A device profile that is missing, malformed or inconsistent; names the field at fault."""


@dataclass(frozen=True)
class Processor:
    """One processor of a device and its cost-model parameters (see the module docstring)."""

    name: str
    kind: str
    description: str
    peak_gmacs: dict[str, float]
    bandwidth_gbps: float
    dispatch_us: float
    efficiency: dict[str, float] = field(default_factory=dict)
    cores: int = 1
    thread_efficiency: float = 1.0
    memory_bandwidth_gbps: float | None = None
    launch_us: float = 0.0
    transfer_gbps: float | None = None
    transfer_latency_us: float = 0.0
    dtype_map: dict[str, str] = field(default_factory=dict)
    uncertainty: tuple[float, float] = (0.5, 2.0)
    provenance: str = ""
    spec: dict[str, Any] = field(default_factory=dict)

    def peak(self, dtype: str) -> tuple[float, str]:
        """Peak MAC/s for ``dtype`` (one thread for a CPU) and the dtype it actually runs as."""
        run = self.dtype_map.get(dtype, dtype)
        if run not in self.peak_gmacs:
            run = "float32" if "float32" in self.peak_gmacs else next(iter(self.peak_gmacs))
        return self.peak_gmacs[run] * 1e9, run

    def eff(self, kind: str) -> float:
        return float(self.efficiency.get(kind, 1.0))

    def speedup(self, threads: int) -> float:
        """Throughput of ``threads`` threads relative to one (1 for non-CPU processors)."""
        if self.kind != "cpu":
            return 1.0
        n = max(1, min(int(threads), self.cores))
        return 1.0 + (n - 1) * self.thread_efficiency

    def bandwidth(self, threads: int = 1) -> float:
        """Bytes/s available to one op running on ``threads`` threads."""
        bw = self.bandwidth_gbps * 1e9 * self.speedup(threads)
        if self.memory_bandwidth_gbps is not None:
            bw = min(bw, self.memory_bandwidth_gbps * 1e9)
        return bw

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind, "description": self.description,
            "peak_gmacs": dict(self.peak_gmacs), "bandwidth_gbps": self.bandwidth_gbps,
            "dispatch_us": self.dispatch_us, "efficiency": dict(self.efficiency),
        }
        if self.kind == "cpu":
            d["cores"] = self.cores
            d["thread_efficiency"] = self.thread_efficiency
        if self.memory_bandwidth_gbps is not None:
            d["memory_bandwidth_gbps"] = self.memory_bandwidth_gbps
        if self.kind != "cpu" or self.launch_us:
            d["launch_us"] = self.launch_us
        if self.transfer_gbps is not None:
            d["transfer_gbps"] = self.transfer_gbps
            d["transfer_latency_us"] = self.transfer_latency_us
        if self.dtype_map:
            d["dtype_map"] = dict(self.dtype_map)
        d["uncertainty"] = list(self.uncertainty)
        d["provenance"] = self.provenance
        if self.spec:
            d["spec"] = copy.deepcopy(self.spec)
        return d


@dataclass(frozen=True)
class DeviceProfile:
    """A device: its processors and which delegate runs on which processor."""

    name: str
    display_name: str
    processors: dict[str, Processor]
    delegates: dict[str, str]
    soc: str = ""
    aliases: tuple[str, ...] = ()
    notes: str = ""
    sources: tuple[str, ...] = ()
    path: str | None = None

    @property
    def cpu(self) -> Processor:
        return self.processors[self.delegates.get("cpu", "cpu")]

    def processor_for(self, delegate: str) -> Processor:
        """The processor that runs what ``delegate`` claims; a clear error if there is none."""
        key = delegate.lower()
        if key not in self.delegates:
            raise DeviceProfileError(
                f"device {self.name!r} has no {delegate!r} delegate; available: "
                f"{', '.join(sorted(self.delegates))}")
        return self.processors[self.delegates[key]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "display_name": self.display_name, "soc": self.soc,
            "aliases": list(self.aliases), "notes": self.notes, "sources": list(self.sources),
            "delegates": dict(self.delegates),
            "processors": {k: p.to_dict() for k, p in self.processors.items()},
        }

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> str:
        """Write the profile as JSON (atomically; an existing file only with ``overwrite``)."""
        from workbench.analysis._result import atomic_write

        p = Path(path)
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} exists; pass overwrite=True to replace it")
        return atomic_write(p, json.dumps(self.to_dict(), indent=1) + "\n", overwrite=overwrite)


# --- parsing and validation -----------------------------------------------------------------

def _num(d: dict, key: str, where: str, *, default: Any = ..., positive: bool = True,
         allow_zero: bool = False) -> float:
    if key not in d:
        if default is ...:
            raise DeviceProfileError(f"{where}.{key} is missing")
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise DeviceProfileError(f"{where}.{key} must be a finite number, got {v!r}")
    if positive and (v < 0 or (v == 0 and not allow_zero)):
        raise DeviceProfileError(f"{where}.{key} must be > 0, got {v!r}")
    return float(v)


def _processor(name: str, d: Any, where: str) -> Processor:
    if not isinstance(d, dict):
        raise DeviceProfileError(f"{where} must be an object")
    kind = d.get("kind")
    if kind not in PROCESSOR_KINDS:
        raise DeviceProfileError(f"{where}.kind must be one of {PROCESSOR_KINDS}, got {kind!r}")
    peaks = d.get("peak_gmacs")
    if not isinstance(peaks, dict) or not peaks:
        raise DeviceProfileError(f"{where}.peak_gmacs must be a non-empty object of dtype: GMAC/s")
    for k in peaks:
        if k not in DTYPES:
            raise DeviceProfileError(f"{where}.peak_gmacs: unknown dtype {k!r} (one of {DTYPES})")
        _num(peaks, k, f"{where}.peak_gmacs")
    eff = d.get("efficiency", {})
    if not isinstance(eff, dict):
        raise DeviceProfileError(f"{where}.efficiency must be an object of kind: fraction")
    for k in eff:
        if k not in KINDS:
            raise DeviceProfileError(f"{where}.efficiency: unknown op kind {k!r} (one of {KINDS})")
        _num(eff, k, f"{where}.efficiency")
    dmap = d.get("dtype_map", {})
    if not isinstance(dmap, dict) or any(a not in DTYPES or b not in DTYPES
                                         for a, b in dmap.items()):
        raise DeviceProfileError(f"{where}.dtype_map must map dtypes {DTYPES} to dtypes")
    unc = d.get("uncertainty", [0.5, 2.0])
    if (not isinstance(unc, (list, tuple)) or len(unc) != 2
            or not all(isinstance(u, (int, float)) and u > 0 for u in unc)
            or not unc[0] <= 1.0 <= unc[1]):
        raise DeviceProfileError(f"{where}.uncertainty must be [low <= 1, high >= 1], got {unc!r}")
    cores = d.get("cores", 1)
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise DeviceProfileError(f"{where}.cores must be a positive integer, got {cores!r}")
    te = _num(d, "thread_efficiency", where, default=1.0)
    if te > 1.0:
        raise DeviceProfileError(f"{where}.thread_efficiency must be <= 1, got {te}")
    tg = d.get("transfer_gbps")
    return Processor(
        name=name, kind=kind, description=str(d.get("description", "")),
        peak_gmacs={k: float(v) for k, v in peaks.items()},
        bandwidth_gbps=_num(d, "bandwidth_gbps", where),
        dispatch_us=_num(d, "dispatch_us", where, allow_zero=True),
        efficiency={k: float(v) for k, v in eff.items()},
        cores=cores, thread_efficiency=te,
        memory_bandwidth_gbps=(None if "memory_bandwidth_gbps" not in d
                               else _num(d, "memory_bandwidth_gbps", where)),
        launch_us=_num(d, "launch_us", where, default=0.0, allow_zero=True),
        transfer_gbps=None if tg is None else _num(d, "transfer_gbps", where),
        transfer_latency_us=_num(d, "transfer_latency_us", where, default=0.0, allow_zero=True),
        dtype_map=dict(dmap), uncertainty=(float(unc[0]), float(unc[1])),
        provenance=str(d.get("provenance", "")), spec=dict(d.get("spec", {})),
    )


def profile_from_dict(d: Any, where: str = "profile", path: str | None = None) -> DeviceProfile:
    """Validate a profile's dict form and build the :class:`DeviceProfile`."""
    if not isinstance(d, dict):
        raise DeviceProfileError(f"{where}: a device profile must be a JSON object")
    name = d.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DeviceProfileError(f"{where}.name must be a non-empty string")
    procs = d.get("processors")
    if not isinstance(procs, dict) or not procs:
        raise DeviceProfileError(f"{where}.processors must be a non-empty object")
    processors = {k: _processor(k, v, f"{where}.processors.{k}") for k, v in procs.items()}
    dels = d.get("delegates", {"cpu": "cpu"})
    if not isinstance(dels, dict):
        raise DeviceProfileError(f"{where}.delegates must map delegate names to processors")
    for dl, pr in dels.items():
        if dl not in DELEGATES:
            raise DeviceProfileError(f"{where}.delegates: unknown delegate {dl!r} "
                                     f"(one of {DELEGATES})")
        if pr not in processors:
            raise DeviceProfileError(f"{where}.delegates.{dl} names processor {pr!r}, which "
                                     f"is not in processors ({', '.join(processors)})")
    if "cpu" not in dels or processors[dels["cpu"]].kind != "cpu":
        raise DeviceProfileError(f"{where}.delegates.cpu must name a processor of kind 'cpu'")
    aliases = d.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise DeviceProfileError(f"{where}.aliases must be a list of strings")
    return DeviceProfile(
        name=name.strip(), display_name=str(d.get("display_name", name)),
        processors=processors, delegates=dict(dels), soc=str(d.get("soc", "")),
        aliases=tuple(aliases), notes=str(d.get("notes", "")),
        sources=tuple(str(s) for s in d.get("sources", [])), path=path)


def _read(path: Path) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DeviceProfileError(f"cannot read device profile {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DeviceProfileError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    return profile_from_dict(data, where=path.name, path=str(path))


# --- registry ---------------------------------------------------------------------------------

_USER: dict[str, DeviceProfile] = {}
_BUILTIN: dict[str, DeviceProfile] | None = None


def _norm(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def _builtin() -> dict[str, DeviceProfile]:
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = {}
        for p in sorted(DEVICES_DIR.glob("*.json")):
            prof = _read(p)
            _BUILTIN[prof.name] = prof
    return _BUILTIN


def _all() -> dict[str, DeviceProfile]:
    out = dict(_builtin())
    out.update(_USER)  # a user's profile of the same name wins
    return out


def list_devices() -> list[str]:
    """Names of every known device profile (built-in and registered)."""
    return sorted(_all())


def load_device(name_or_path: str | os.PathLike | DeviceProfile | dict) -> DeviceProfile:
    """A device profile by name (``"pixel4"``, ``"Pixel 4"``, an alias) or from a JSON path.

    Raises
    ------
    DeviceProfileError
        Unknown name (the message lists the known ones) or a malformed file.
    """
    if isinstance(name_or_path, DeviceProfile):
        return name_or_path
    if isinstance(name_or_path, dict):
        return profile_from_dict(name_or_path)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise DeviceProfileError(f"device must be a name, a JSON path, a dict or a "
                                 f"DeviceProfile, got {type(name_or_path).__name__}")
    s = os.fspath(name_or_path)
    if s.endswith(".json") or os.sep in s:
        return _read(Path(s))
    devices = _all()
    key = _norm(s)
    for prof in devices.values():
        if key == _norm(prof.name) or key in (_norm(a) for a in prof.aliases):
            return prof
    raise DeviceProfileError(
        f"unknown device {s!r}; known devices: {', '.join(sorted(devices))} "
        "(or pass a profile JSON path, or register_device(...) your own)")


def register_device(profile: DeviceProfile | dict | str | os.PathLike) -> DeviceProfile:
    """Make a user's device profile available by name to :func:`load_device` and ``estimate``.

    ``profile`` is a :class:`DeviceProfile`, a dict in the file layout, or a JSON path. It is
    validated first; a profile with a built-in device's name replaces it for this session.
    """
    prof = profile if isinstance(profile, DeviceProfile) else (
        profile_from_dict(profile, where="profile") if isinstance(profile, dict)
        else _read(Path(os.fspath(profile))))
    _USER[prof.name] = prof
    return prof


def unregister_device(name: str) -> None:
    """Forget a profile added with :func:`register_device` (built-ins stay)."""
    _USER.pop(name, None)


def reload_builtin() -> None:
    """Re-read the built-in device files (after the calibration script rewrote them)."""
    global _BUILTIN
    _BUILTIN = None
