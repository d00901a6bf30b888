"""Op coverage table (``docs/ops.md``), generated from the registry.

    .venv/bin/python -m workbench.kernels.coverage > docs/ops.md
"""

from __future__ import annotations

import sys

from workbench.ir.ops import BuiltinOperator

from .registry import builtin_kernels, litert_custom_kernels
from .unsupported import UNSUPPORTED


def rows() -> list[tuple[str, str, str]]:
    """(op name, status, notes) for every builtin op code."""
    kernels = builtin_kernels()
    out = []
    for op in BuiltinOperator:
        cls = kernels.get(op.value)
        if cls is not None:
            mod = cls.__module__.rsplit(".", 1)[-1]
            doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0]
            out.append((op.name, f"kernel `kernels/{mod}.py`", " ".join(doc.split())))
        else:
            out.append((op.name, "not yet", UNSUPPORTED.get(op.name, "")))
    return out


def markdown() -> str:
    r = rows()
    n = sum(1 for _, s, _ in r if s.startswith("kernel"))
    lines = [
        "# Operator coverage",
        "",
        "Generated from the kernel registry by `python -m workbench.kernels.coverage`; do not "
        "edit by hand (a test checks it is current).",
        "",
        f"{n} of {len(r)} builtin op codes have a kernel. Float32 paths match LiteRT within "
        "1e-4 of each tensor's range; integer, bool and quantized (int8/uint8/int16) paths "
        "bit-exactly with LiteRT's built-in kernels; hybrid (dynamic-range) paths within "
        "LiteRT's own tolerance. Each kernel's notes say which dtypes it takes; other dtypes "
        "raise `UnsupportedOpError` at `allocate_tensors`.",
        "",
        "| op | status | notes |",
        "|---|---|---|",
    ]
    for name, status, notes in r:
        lines.append(f"| {name} | {status} | {notes.replace('|', '/')} |")
    lines += [
        "",
        "## Custom ops LiteRT runs by default",
        "",
        "LiteRT's built-in op resolver also runs these CUSTOM ops by name (custom options: a "
        "FlexBuffer map). Other custom ops need `workbench.register_custom_op(name, kernel)`, "
        "which also overrides these.",
        "",
        "| custom op | kernel | notes |",
        "|---|---|---|",
    ]
    for name, cls in sorted(litert_custom_kernels().items()):
        mod = cls.__module__.rsplit(".", 1)[-1]
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0]
        lines.append(f"| {name} | `kernels/{mod}.py` | {' '.join(doc.split()).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
