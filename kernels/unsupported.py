"""Builtin ops with no kernel yet, each with the reason: the explicit other half of the
registry (a test checks every op code is either registered or listed here, never both)."""

from __future__ import annotations

_STABLEHLO = ("StableHLO op with no LiteRT kernel either (LiteRT 2.3 runs only ADD, MULTIPLY, "
              "MAXIMUM, MINIMUM, AND, SHIFT_LEFT, PAD, GATHER, SCATTER, REDUCE_WINDOW, "
              "RNG_BIT_GENERATOR, COMPOSITE and CASE of the StableHLO set)")
#: StableHLO ops LiteRT's built-in resolver runs: each has a kernel here.
STABLEHLO_WITH_KERNELS = ("ADD", "MULTIPLY", "MAXIMUM", "MINIMUM", "AND", "SHIFT_LEFT", "PAD",
                          "GATHER", "SCATTER", "REDUCE_WINDOW", "RNG_BIT_GENERATOR",
                          "COMPOSITE", "CASE")

UNSUPPORTED: dict[str, str] = {
    # Not real operators.
    "CUSTOM": "custom ops are looked up by name: workbench.register_custom_op(name, kernel)",
    "DELEGATE": "placeholder for delegated partitions; never in a converted file",
    "PLACEHOLDER_FOR_GREATER_OP_CODES": "marker value of the op-code encoding, not an op",
    # LiteRT has no kernel for these either.
    "CONCAT_EMBEDDINGS": "LiteRT has no kernel for it (a placeholder op code)",
    "CALL": "legacy CALL op: replaced by CALL_ONCE/WHILE/IF in current converters; LiteRT has "
            "no kernel for it",
}


def _stablehlo() -> None:
    from workbench.ir.ops import BuiltinOperator

    for op in BuiltinOperator:
        if op.name.startswith("STABLEHLO_") and \
                op.name[len("STABLEHLO_"):] not in STABLEHLO_WITH_KERNELS:
            UNSUPPORTED.setdefault(op.name, _STABLEHLO)


_stablehlo()
