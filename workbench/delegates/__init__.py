"""Simulated delegates: op-support rules, TFLite-style partitioning (and the cost model)."""

from __future__ import annotations

from .partition import Partition, Partitioning, partition
from .profiles import DeviceProfile, list_devices, load_device, register_device
from .rules import DELEGATES, Verdict, check_op, check_subgraph

__all__ = ["DELEGATES", "DeviceProfile", "Partition", "Partitioning", "Verdict", "check_op",
           "check_subgraph", "list_devices", "load_device", "partition", "register_device"]
