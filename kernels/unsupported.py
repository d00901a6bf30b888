"""Builtin ops with no kernel yet, each with the reason: the explicit other half of the
registry (a test checks every op code is either registered or listed here, never both)."""

from __future__ import annotations

_STABLEHLO = ("StableHLO op: emitted only for models converted from JAX/StableHLO, not by the "
              "TFLite converter for Keras/TF models")
_RARE = "not emitted by TF 2.21's converter for the supported model families yet"

UNSUPPORTED: dict[str, str] = {
    # Not real operators.
    "CUSTOM": "custom ops are looked up by name: workbench.register_custom_op(name, kernel)",
    "DELEGATE": "placeholder for delegated partitions; never in a converted file",
    "PLACEHOLDER_FOR_GREATER_OP_CODES": "marker value of the op-code encoding, not an op",
    # Tables and strings.
    "HASHTABLE": "hash tables (string lookups) are not supported",
    "HASHTABLE_FIND": "hash tables (string lookups) are not supported",
    "HASHTABLE_IMPORT": "hash tables (string lookups) are not supported",
    "HASHTABLE_SIZE": "hash tables (string lookups) are not supported",
    "HASHTABLE_LOOKUP": "hash tables (string lookups) are not supported",
    "LSH_PROJECTION": _RARE, "SKIP_GRAM": "string n-grams are not supported",
    "CONCAT_EMBEDDINGS": _RARE, "EMBEDDING_LOOKUP_SPARSE": _RARE,
    # Control flow variant.
    "CALL": "legacy CALL op: replaced by CALL_ONCE/WHILE/IF in current converters",
    # Others the converter can emit for less common graphs.
    "DILATE": _RARE,
    "REDUCE_WINDOW": _RARE,
}


def _stablehlo() -> None:
    from workbench.ir.ops import BuiltinOperator

    for op in BuiltinOperator:
        if op.name.startswith("STABLEHLO_"):
            UNSUPPORTED.setdefault(op.name, _STABLEHLO)


_stablehlo()
