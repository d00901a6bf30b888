"""The CPU path: TFLite's built-in kernels, no delegate. It claims nothing."""

from __future__ import annotations

from typing import Any

from ._common import OpView, Verdict, no

OPTIONS: dict[str, Any] = {}
DEFAULTS: dict[str, Any] = {"min_nodes_per_partition": 1, "max_delegated_partitions": None,
                            "allows_dynamic_tensors": True}

REASON = "No delegate: every op runs on TFLite's built-in CPU kernels."


def check(view: OpView, options: dict[str, Any]) -> Verdict:
    return no(REASON)
