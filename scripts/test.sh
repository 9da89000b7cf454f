#!/usr/bin/env bash
# Runs every test: unit and end-to-end tests (the real binary against the built-in Salesforce
# emulator), then DuckDB reading the lake back and JSON Schema checks. Sets up what it needs
# itself (a Python venv with duckdb and jsonschema from PyPI). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${FORCELAKE_TEST_VENV:-target/test-venv}"
if ! "$VENV/bin/python" -c "import duckdb, jsonschema" 2>/dev/null; then
  echo "== setting up $VENV (duckdb, jsonschema)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "duckdb==1.5.5" "jsonschema>=4"
fi

echo "== cargo build --release"
cargo build --release --locked
echo "== cargo test --release"
cargo test --release --locked
echo "== DuckDB and schema checks"
"$VENV/bin/python" tests/duckdb_check.py target/release/forcelake
