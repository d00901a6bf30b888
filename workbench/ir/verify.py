"""Semantic checks of an IR model (placeholder; filled below)."""
from __future__ import annotations


def verify(model) -> None:
    return None
