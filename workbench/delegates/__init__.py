"""Simulated delegates: op-support rules, TFLite-style partitioning (and the cost model)."""

from __future__ import annotations

from .partition import Partition, Partitioning, partition
from .profiles import DeviceProfile, list_devices, load_device, register_device
from .rules import DELEGATES, Verdict, check_op, check_subgraph

__all__ = ["DELEGATES", "Partition", "Partitioning", "Verdict", "check_op", "check_subgraph",
           "partition",
           "DeviceProfile", "list_devices", "load_device", "register_device"]
