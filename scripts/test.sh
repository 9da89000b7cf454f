#!/usr/bin/env bash
# Runs every test: unit and end-to-end tests (the real binary against the built-in Salesforce
# emulator), the storage suite against S3 (moto), GCS (moto behind a GCS XML-API shim) and
# Azure (Azurite) on 127.0.0.1, then DuckDB reading the lake back (locally and from S3 over
# httpfs) and JSON Schema checks, every object as a Delta table (DuckDB delta extension,
# deltalake, Polars), Spark 3.5 and 4.1 reading the lake, and Apache Airflow 3
# running the example DAGs. Installs and starts what it needs itself: Python venvs under
# target/ (moto, duckdb and its httpfs/delta extensions, deltalake, polars, jsonschema; pyspark 3.5.9; pyspark 4.1.1; apache-airflow 3.3.2, all
# from PyPI, set up once and reused), Java from Debian when `java` is missing, and Azurite
# (npm), on free loopback ports, stopped on exit. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
mkdir -p target

VENV="${FORCELAKE_TEST_VENV:-target/test-venv}"
if ! "$VENV/bin/python" -c "import duckdb, jsonschema, moto, flask, duckdb_extension_httpfs, duckdb_extension_delta, deltalake, polars, pyarrow; assert pyarrow.__version__ == '26.0.1'" 2>/dev/null; then
  echo "== setting up $VENV (duckdb with httpfs and delta, deltalake, polars, jsonschema, moto)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "duckdb==1.5.5" "duckdb-extension-httpfs==1.5.5" "duckdb-extension-delta==1.5.5" \
    "deltalake==1.6.6" "polars==2.1.0" "pyarrow==26.0.1" "jsonschema>=4" \
    "moto[s3]==5.2.5" "flask==3.1.3" "flask-cors==6.0.5"
fi
"$VENV/bin/python" -c "import maturin" 2>/dev/null || "$VENV/bin/pip" install --quiet --disable-pip-version-check "maturin==1.16.0"
# Spark and Airflow venvs are set up in the background while Rust builds (network-bound).
venv() {  # venv DIR PACKAGE...: (re)creates DIR when its package list changed
  local dir=$1; shift
  if [ "$(cat "$dir/.forcelake-packages" 2>/dev/null)" != "$*" ]; then
    echo "== setting up $dir ($*)"
    rm -rf "$dir" && python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check uv
    "$dir/bin/uv" pip install --quiet --python "$dir/bin/python" "$@"
    echo "$*" > "$dir/.forcelake-packages"
  fi
}
venv target/spark35-venv "pyspark==3.5.9" "duckdb==1.5.5" "pytz" > target/spark35-venv.log 2>&1 & SPARK35_SETUP=$!
venv target/spark4-venv "pyspark==4.1.1" "duckdb==1.5.5" "pytz" > target/spark4-venv.log 2>&1 & SPARK4_SETUP=$!
venv target/airflow-venv "apache-airflow==3.3.2" "apache-airflow-providers-standard==1.21.0" > target/airflow-venv.log 2>&1 & AIRFLOW_SETUP=$!
if ! command -v java >/dev/null; then
  echo "== installing Java (openjdk-17-jre-headless) for Spark"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
ready() { wait "$1" || { echo "setting up $2 failed:"; cat "$2.log"; exit 1; }; }

NPM_DIR=target/npm
if [ ! -x "$NPM_DIR/node_modules/.bin/azurite-blob" ]; then
  echo "== installing Azurite 3.35.0 into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error azurite@3.35.0 >/dev/null
fi

port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -s -o /dev/null -m 1 "$1" && return 0; sleep 0.1; done; echo "not ready: $1"; return 1; }
MOTO_PORT=$(port); AZ_PORT=$(port)
"$VENV/bin/python" .ci/moto_gcs_shim.py 127.0.0.1 "$MOTO_PORT" > target/moto.log 2>&1 & MOTO_PID=$!
"$NPM_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$AZ_PORT" --inMemoryPersistence \
    --silent --disableTelemetry > target/azurite.log 2>&1 & AZ_PID=$!
trap 'kill $MOTO_PID $AZ_PID 2>/dev/null || true; wait $MOTO_PID $AZ_PID 2>/dev/null || true' EXIT
wait_http "http://127.0.0.1:$MOTO_PORT/"
wait_http "http://127.0.0.1:$AZ_PORT/" || true
curl -sf -X PUT "http://127.0.0.1:$MOTO_PORT/s3-test" -o /dev/null
curl -sf -X PUT "http://127.0.0.1:$MOTO_PORT/gcs-test" -o /dev/null
python3 .ci/azurite_mkcontainer.py "http://127.0.0.1:$AZ_PORT" az-test
export FORCELAKE_TEST_S3_ENDPOINT="http://127.0.0.1:$MOTO_PORT" FORCELAKE_TEST_S3_BUCKET=s3-test \
       FORCELAKE_TEST_GCS_BASE_URL="http://127.0.0.1:$MOTO_PORT" FORCELAKE_TEST_GCS_BUCKET=gcs-test \
       FORCELAKE_TEST_AZURE_ENDPOINT="http://127.0.0.1:$AZ_PORT/devstoreaccount1" FORCELAKE_TEST_AZURE_CONTAINER=az-test
# Cloud clients get explicit dummy credentials: nothing may probe a metadata address.
export AWS_EC2_METADATA_DISABLED=true FORCELAKE_TEST_STORES=required

echo "== import circles between the files of src/ (none allowed)"
python3 scripts/tools/import_circles.py src
echo "== cargo build --release"
cargo build --release --locked
echo "== cargo test --release"
# the deletes test leaves its lake here for tests/deletes_check.py
export FORCELAKE_KEEP_LAKES="$ROOT/target/kept-lakes"
rm -rf "$FORCELAKE_KEEP_LAKES"
cargo test --release --locked
echo "== DuckDB and schema checks"
"$VENV/bin/python" tests/duckdb_check.py target/release/forcelake
echo "== Delta tables read by DuckDB (delta extension), deltalake and Polars"
"$VENV/bin/python" tests/delta_check.py target/release/forcelake
echo "== hard deletes: the README's recipes, delta_scan, deltalake and Polars against the live records"
"$VENV/bin/python" tests/deletes_check.py target/kept-lakes/deletes
echo "== Spark 3.5 and 4.1 read the lake"
ready "$SPARK35_SETUP" target/spark35-venv
target/spark35-venv/bin/python tests/spark_check.py target/release/forcelake
ready "$SPARK4_SETUP" target/spark4-venv
target/spark4-venv/bin/python tests/spark_check.py target/release/forcelake
echo "== the wheel (maturin): pip install puts forcelake on PATH"
rm -rf target/wheels
"$VENV/bin/maturin" build --release --locked --out target/wheels
WHEEL=$(ls target/wheels/forcelake-*.whl)
echo "wheel: $WHEEL, $(du -k "$WHEEL" | cut -f1) KiB"
rm -rf target/wheel-venv target/wheel-demo
python3 -m venv target/wheel-venv
target/wheel-venv/bin/pip install --quiet --disable-pip-version-check "$WHEEL"
(
  export PATH="$ROOT/target/wheel-venv/bin:$PATH"
  cd target
  installed=$(command -v forcelake)
  [ "$installed" = "$ROOT/target/wheel-venv/bin/forcelake" ] || { echo "forcelake on PATH is $installed"; exit 1; }
  echo "installed: $installed, $(du -k "$installed" | cut -f1) KiB"
  python3 "$ROOT/scripts/tools/elf_stripped.py" "$installed"
  version=$(forcelake --version)
  [ "$version" = "forcelake $(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)" ] || { echo "version $version"; exit 1; }
  case "$WHEEL" in *"forcelake-${version#forcelake }-"*) ;; *) echo "the wheel's version differs from $version"; exit 1;; esac
  forcelake demo --dir wheel-demo --rows 100 > wheel-demo.log 2>&1 || { cat wheel-demo.log; exit 1; }
  grep -q "\"tool_version\":\"${version#forcelake }\"" wheel-demo/_forcelake/manifests/Account/*/*.json || { echo "manifests' tool_version differs"; exit 1; }
  echo "ok   $version from PATH; demo from PATH; manifests say tool_version ${version#forcelake }"
)
echo "== Airflow 3 runs the example DAGs (importing forcelake.airflow from the wheel) against the emulator"
ready "$AIRFLOW_SETUP" target/airflow-venv
target/airflow-venv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
target/airflow-venv/bin/python tests/airflow_check.py target/release/forcelake
