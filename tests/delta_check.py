#!/usr/bin/env python3
"""Reads every object of a forcelake lake as a Delta table with three independent readers —
DuckDB's delta extension (loaded from the `duckdb-extension-delta` wheel), `deltalake` and
Polars — and checks them against the manifests, while a backfill replaces days under a
polling reader, and on a table of several hundred commits past several checkpoints (its checkpoint
must make it open fast).

Run by scripts/test.sh after the Rust tests:
  python tests/delta_check.py target/release/forcelake
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import deltalake
import duckdb
import duckdb_extension_delta
import polars as pl

from checks import check, run

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/forcelake")
CLIENT_ID = "forcelake-demo-client"
SECRET = "forcelake-demo-secret"
EXT = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", "*", "delta.duckdb_extension"))[0]


def connect():
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")  # `INSTALL delta` would try to download it
    return con


def emulator(*args):
    p = subprocess.Popen([BIN, "emulator", "--listen", "127.0.0.1:0", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = re.search(r"(http://127\.0\.0\.1:\d+)", p.stdout.readline())
    if not m:
        p.terminate()
        raise SystemExit("emulator did not start")
    return p, m.group(1)


def pipeline(base, lake, objects, sync):
    tmp = tempfile.mkdtemp(prefix="forcelake-delta-")
    cfg = os.path.join(tmp, "forcelake.toml")
    objs = "".join(f'[[objects]]\nname = "{o}"\n\n' for o in objects)
    with open(cfg, "w") as f:
        f.write(f'[salesforce]\ninstance_url = "{base}"\nclient_id = "{CLIENT_ID}"\n\n{objs}'
                f'[sync]\nrate_limit = 10000\nquery_limit = 100000\n{sync}\n\n[destination]\nurl = "{lake}"\n')
    return cfg


def forcelake(cfg, *args):
    r = subprocess.run([BIN, *args, "--config", cfg], capture_output=True, text=True,
                       env={**os.environ, "FORCELAKE_CLIENT_SECRET": SECRET})
    if r.returncode != 0:
        raise RuntimeError(f"forcelake {' '.join(args)} exited {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


def live_rows_per_day(lake, obj):
    """Rows per day of the live manifests (those no committed backfill supersedes)."""
    ms = []
    for p in glob.glob(f"{lake}/_forcelake/manifests/{obj}/date=*/*.json"):
        with open(p) as f:
            ms.append(json.load(f))
    gone = {s for m in ms for s in m.get("supersedes", [])}
    out = {}
    for m in ms:
        if m["chunk_id"] not in gone and m["rows"] > 0:
            out[m["day"]] = out.get(m["day"], 0) + m["rows"]
    return out


def main():
    emu, base = emulator("--latency-ms", "20", "--rows", "Account=600,Contact=300,Invoice__c=400,Case=200",
                         "--anchor-date", "2026-01-01", "--days", "60", "--seed", "17")
    try:
        lake = readers_equal_the_manifests(base)
        the_readme_example_runs_as_written(lake)
        a_backfill_replaces_a_day_deltalake_compacted(base)
        type_widening_is_not_readable_by_every_promised_reader()
        backfill_is_atomic_for_a_polling_reader(base)
    finally:
        emu.terminate()
        emu.wait(timeout=10)
    emu, base = emulator("--rows", "Account=3500", "--anchor-date", "2026-01-01", "--days", "1100", "--seed", "5")
    try:
        a_long_log_opens_fast(base)
    finally:
        emu.terminate()
        emu.wait(timeout=10)


def readers_equal_the_manifests(base):
    lake = tempfile.mkdtemp(prefix="forcelake-delta-lake-")
    objects = ["Account", "Contact", "Invoice__c", "Case"]
    cfg = pipeline(base, lake, objects, 'mode = "historical"\nend_date = "2026-01-02"\nwindow_records = 50')
    forcelake(cfg, "sync")
    forcelake(cfg, "backfill", "--object", "Account", "--start", "2025-12-01", "--end", "2025-12-05")
    con = connect()
    for obj in objects:
        want = live_rows_per_day(lake, obj)
        table = f"{lake}/{obj}"
        got = dict((str(d), n) for d, n in con.execute(
            f"SELECT date, count(*) FROM delta_scan('{table}') GROUP BY date").fetchall())
        check(f"{obj}: DuckDB delta_scan rows per day equal the live manifests' ({sum(want.values())} rows)", got == want,
              f"{len(got)} vs {len(want)} days")
        ids = con.execute(f"SELECT count(*), count(DISTINCT Id) FROM delta_scan('{table}')").fetchone()
        check(f"{obj}: no record twice in the table", ids[0] == ids[1], str(ids))
        dt = deltalake.DeltaTable(table)
        arrow = dt.to_pyarrow_table()
        check(f"{obj}: deltalake reads {arrow.num_rows} rows", arrow.num_rows == sum(want.values()))
        check(f"{obj}: deltalake sees the table partitioned by date", dt.metadata().partition_columns == ["date"],
              str(dt.metadata().partition_columns))
        df = pl.read_delta(table)
        per_day = {str(d): n for d, n in df.group_by("date").len().iter_rows()}
        check(f"{obj}: Polars read_delta rows per day equal the manifests'", per_day == want)
        glob_n = con.execute(f"SELECT count(*) FROM read_parquet('{table}/date=*/*.parquet', hive_partitioning = true)").fetchone()[0]
        check(f"{obj}: the documented glob reads the same rows", glob_n == sum(want.values()), f"{glob_n}")
    st = json.loads(forcelake(cfg, "status", "--json"))
    check("status: every table is level with its manifests",
          all(o["delta"]["behind_chunks"] == 0 and o["delta"]["version"] is not None for o in st["objects"]), json.dumps(st)[:500])
    # typed columns as Delta sees them
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM delta_scan('{lake}/Account'))").fetchall())
    check("Delta column types: timestamps, decimals, the date partition",
          types.get("LastModifiedDate") == "TIMESTAMP WITH TIME ZONE" and types.get("date") == "DATE"
          and types.get("AnnualRevenue", "").startswith("DECIMAL"), str(types))
    return lake


def the_readme_example_runs_as_written(lake):
    """The README's deltalake/Polars block, run as written against this lake (with the
    installed pyarrow and deltalake: a string filter on the date column fails with pyarrow 26)."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "dt = deltalake.DeltaTable(" in b)
    code = "\n".join(line for line in block.splitlines() if not line.startswith("spark."))
    code = code.replace("/data/lake/salesforce", lake)
    scope = {}
    exec(code, scope)  # noqa: S102 - the README's own example
    dt = scope["dt"]
    check("the README's deltalake example runs as written", dt.version() is not None)


def type_widening_is_not_readable_by_every_promised_reader():
    """Why a widened decimal keeps its table column's type instead of using Delta's type
    widening: a table with the `typeWidening` reader feature (decimal(18,0) → decimal(20,2))
    is read by DuckDB but refused by deltalake and Polars. When this check fails, the readers
    caught up: widen the table instead (README, "Incremental mode")."""
    import decimal
    import pyarrow as pa
    import pyarrow.parquet as pq
    t = tempfile.mkdtemp(prefix="forcelake-typewidening-")
    deltalake.write_deltalake(t, pa.table({"Id": ["a"], "Amt": pa.array([decimal.Decimal("12")], pa.decimal128(18, 0))}))
    pq.write_table(pa.table({"Id": ["b"], "Amt": pa.array([decimal.Decimal("14.25")], pa.decimal128(20, 2))}), f"{t}/wide.parquet")
    log = f"{t}/_delta_log"
    meta = next(json.loads(l)["metaData"] for l in open(f"{log}/00000000000000000000.json") if "metaData" in l)
    schema = json.loads(meta["schemaString"])
    for f in schema["fields"]:
        if f["name"] == "Amt":
            f["type"] = "decimal(20,2)"
            f["metadata"] = {"delta.typeChanges": [{"fromType": "decimal(18,0)", "toType": "decimal(20,2)"}]}
    meta["schemaString"] = json.dumps(schema)
    meta.setdefault("configuration", {})["delta.enableTypeWidening"] = "true"
    actions = [{"protocol": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["typeWidening"], "writerFeatures": ["typeWidening"]}},
               {"metaData": meta},
               {"add": {"path": "wide.parquet", "partitionValues": {}, "size": os.path.getsize(f"{t}/wide.parquet"),
                        "modificationTime": int(time.time() * 1000), "dataChange": True}}]
    with open(f"{log}/00000000000000000001.json", "w") as f:
        f.write("".join(json.dumps(a) + "\n" for a in actions))
    rows = connect().execute(f"SELECT Amt FROM delta_scan('{t}') ORDER BY Id").fetchall()
    check("type widening: DuckDB delta_scan reads a widened decimal", [r[0] for r in rows] == [decimal.Decimal("12.00"), decimal.Decimal("14.25")], str(rows))
    for name, read in [("deltalake", lambda: deltalake.DeltaTable(t).to_pyarrow_table()), ("Polars", lambda: pl.read_delta(t))]:
        try:
            read()
            refused = False
        except Exception:  # noqa: BLE001 - the refusal is what is measured
            refused = True
        check(f"type widening: {name} still refuses the typeWidening reader feature (else: widen tables instead)", refused)


def a_backfill_replaces_a_day_deltalake_compacted(base):
    """A user compacts the Delta table with deltalake's optimize.compact(), then backfills a
    day: the day holds each record once again, in the table and in the glob."""
    lake = tempfile.mkdtemp(prefix="forcelake-delta-compact-")
    cfg = pipeline(base, lake, ["Account"], 'mode = "historical"\nend_date = "2025-12-31"')
    # two syncs, so 2025-12-10 holds two files (its halves) for compact() to merge
    forcelake(cfg, "sync", "--set", "sync.end_date=2025-12-10T12:00:00Z")
    forcelake(cfg, "sync")
    table = f"{lake}/Account"
    dt = deltalake.DeltaTable(table)
    metrics = dt.optimize.compact()
    check("deltalake compacted the table", metrics.get("numFilesAdded", 0) > 0, str(metrics))
    st = json.loads(forcelake(cfg, "status", "--json"))
    check("status counts the compacted files as files no manifest names",
          st["objects"][0]["delta"]["unmanaged_files"] > 0, json.dumps(st["objects"][0].get("delta")))
    forcelake(cfg, "backfill", "--object", "Account", "--start", "2025-12-10", "--end", "2025-12-10", "--force")
    con = connect()
    n, ids = con.execute(f"SELECT count(*), count(DISTINCT Id) FROM delta_scan('{table}') WHERE date = DATE '2025-12-10'").fetchone()
    want = live_rows_per_day(lake, "Account").get("2025-12-10", 0)
    check(f"after the backfill, delta_scan holds the day's {want} records once", n == ids == want, f"{n} rows, {ids} ids")
    g = con.execute(f"SELECT count(*) FROM read_parquet('{table}/date=2025-12-10/*.parquet')").fetchone()[0]
    check("after the backfill, the glob holds the day once", g == want, f"{g} vs {want}")


def backfill_is_atomic_for_a_polling_reader(base):
    lake = tempfile.mkdtemp(prefix="forcelake-delta-atomic-")
    cfg = pipeline(base, lake, ["Account"], 'mode = "historical"\nend_date = "2026-01-02"')
    forcelake(cfg, "sync")
    before = live_rows_per_day(lake, "Account")
    days = sorted(d for d in before if "2025-12-10" <= d <= "2025-12-24")
    con = connect()
    samples, stop, errors = [], threading.Event(), []

    def poll():
        while not stop.is_set():
            try:
                rows = connect().execute(
                    f"SELECT CAST(date AS VARCHAR), count(*), count(DISTINCT Id) FROM delta_scan('{lake}/Account') "
                    f"WHERE date BETWEEN DATE '2025-12-10' AND DATE '2025-12-24' GROUP BY date").fetchall()
                samples.append({d: (n, u) for d, n, u in rows})
            except Exception as e:  # a reader holding a snapshot whose file a backfill removed
                errors.append(repr(e))

    t = threading.Thread(target=poll)
    t.start()
    forcelake(cfg, "backfill", "--object", "Account", "--start", "2025-12-10", "--end", "2025-12-24", "--set", "sync.concurrency=4")
    time.sleep(0.3)
    stop.set()
    t.join()
    check(f"backfill under a polling reader: {len(samples)} samples taken", len(samples) >= 3, f"errors: {errors[:3]}")
    # The emulator's records did not change, so old and new versions of a day hold the same
    # rows: a day seen both old and new at once would show twice its rows (and Ids repeated),
    # a day seen neither would be missing.
    bad = [s for s in samples if any(s.get(d, (0, 0)) != (before[d], before[d]) for d in days)]
    check("every sample shows each day wholly (never both old and new, never neither)", not bad, str(bad[:2]))
    ms = [json.load(open(p)) for p in glob.glob(f"{lake}/_forcelake/manifests/Account/date=*/*.json")]
    check("the backfill superseded the days it re-pulled", sum(1 for m in ms if m["supersedes"]) >= len(days))
    # A reader that resolved its snapshot before a day's replacement and reads after the old
    # files went (deleted right after the commit, as the README says) fails and retries; it
    # never reads wrong rows.
    check(f"a failed read ({len(errors)} of {len(samples) + len(errors)}) is only ever a missing old file",
          all(re.search(r"No such file|not found|NotFound|does not exist", e, re.I) for e in errors), str(errors[:2]))


def a_long_log_opens_fast(base):
    lake = tempfile.mkdtemp(prefix="forcelake-delta-1000-")
    cfg = pipeline(base, lake, ["Account"], 'mode = "historical"\nend_date = "2026-01-02"\nconcurrency = 4')
    forcelake(cfg, "sync")
    log = f"{lake}/Account/_delta_log"
    commits = len(glob.glob(f"{log}/*.json"))
    # ~1,100 days with records; days that finish together share a commit (grouped commits)
    check(f"a table of {commits} commits (at least 400)", commits >= 400)
    last = json.load(open(f"{log}/_last_checkpoint"))["version"] if os.path.exists(f"{log}/_last_checkpoint") else -1
    check(f"it has a checkpoint past version 300 ({last})", last >= 300)
    con = connect()
    t = time.time()
    n = con.execute(f"SELECT count(*) FROM delta_scan('{lake}/Account') WHERE date = DATE '2025-06-01'").fetchone()[0]
    took = time.time() - t
    check(f"DuckDB opens it and reads one day in under a second ({took:.2f} s, {n} rows)", took < 1.0)
    t = time.time()
    total = deltalake.DeltaTable(f"{lake}/Account").to_pyarrow_table().num_rows
    check(f"deltalake opens it in {time.time() - t:.2f} s with every row ({total})", total == 3500)


if __name__ == "__main__":
    run("Delta checks", main)
