"""The one way this package writes a file a user asked for: atomically, never clobbering."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: str | bytes, *, overwrite: bool = False) -> str:
    """Write ``data`` to ``path`` through a temp file in the same directory (fsync'd), so a
    reader never sees a half-written file and a crash leaves the old file intact.

    An existing file is replaced only with ``overwrite=True``; otherwise ``FileExistsError``,
    also when the file appears while we write (the temp file is hard-linked into place, which
    fails on an existing name, instead of renamed over it). Returns the path as a string."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(str(p))
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists (pass overwrite=True to replace it)")
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, p)
        else:
            os.link(tmp, p)  # fails if the target appeared meanwhile: never clobber
            os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return str(p)
