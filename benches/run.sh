#!/usr/bin/env bash
# Reproduces the README's performance table: the decode/encode micro-benchmark, then the
# end-to-end benchmark (forcelake vs the obvious Python extractor on the same emulator).
# usage: benches/run.sh [RECORDS [LARGE,... [LATENCY_RECORDS,...]]]
#   (defaults 1000000, 3000000,10000000 and 100000,1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/bench-venv
if ! "$VENV/bin/python" -c "import pyarrow, simple_salesforce" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "pyarrow==26.0.1" "simple-salesforce==1.12.10"
fi
cargo build --release --locked
echo "== decode / encode micro-benchmark"
cargo bench --locked --bench decode_encode
echo "== the current table: merge cost at 0.1 % and 10 % changes (deletion vectors vs copy-on-write)"
cargo bench --locked --bench current_merge -- "${1:-1000000}"
echo "== end to end"
BENCH_PYTHON="$PWD/$VENV/bin/python" "$VENV/bin/python" benches/e2e.py --records "${1:-1000000}" --large "${2:-3000000,10000000}"
echo "== end to end, 300 ms per answer"
BENCH_PYTHON="$PWD/$VENV/bin/python" "$VENV/bin/python" benches/latency.py --records "${3:-100000,1000000}"
