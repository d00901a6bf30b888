"""ARG_MIN along one axis; same conventions as ARG_MAX (first index on ties, NaNs skipped)."""

from __future__ import annotations

from workbench.ir.ops import Op

from .arg_max import ArgMinMax
from .registry import register


@register(Op.ARG_MIN)
class ArgMin(ArgMinMax):
    largest = False
