#!/usr/bin/env python3
"""Reads a lake whose change log holds tombstones (left by the Rust test
`deletes::soft_and_hard_deletes_undeletes_and_merges_reach_the_change_log_once_each` when
FORCELAKE_KEEP_LAKES is set) the ways the README shows, and compares what each reader says is
live with the emulator's live records:

- DuckDB on the Parquet glob: the README's history recipe and its tombstone query, run as
  written (only the lake path is replaced);
- DuckDB `delta_scan`, deltalake and Polars on the object's Delta table (the same "newest row
  per Id, not deleted").

Run by scripts/test.sh after the Rust tests:
  python tests/deletes_check.py target/kept-lakes/deletes
"""
import glob
import json
import os
import re
import sys

import deltalake
import duckdb
import duckdb_extension_delta
import polars as pl

from checks import check, run

ROOT = os.path.dirname(os.path.abspath(__file__))
EXT = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", "*", "delta.duckdb_extension"))[0]


def readme_query(comment):
    """The README statement that follows the SQL comment line starting with `comment`."""
    readme = open(os.path.join(ROOT, "..", "README.md")).read()
    m = re.search(r"^-- " + re.escape(comment) + r"[^\n]*\n((?:--[^\n]*\n)*)([^;]*;)", readme, re.M)
    if not m:
        raise SystemExit(f"README: no query after '-- {comment}'")
    return m.group(2)


def main():
    base = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/kept-lakes/deletes")
    expected_path = os.path.join(base, "expected.json")
    check("the Rust test left its lake (FORCELAKE_KEEP_LAKES)", os.path.exists(expected_path), expected_path)
    expected = json.load(open(expected_path))
    lake, obj = os.path.join(base, "lake"), expected["object"]
    live = set(expected["live"])
    table = f"{lake}/{obj}"

    def readme(comment):
        return readme_query(comment).replace("/data/lake/salesforce", lake)

    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    recipe = readme("latest version of each record")
    got = {r[0] for r in con.execute(f"SELECT Id FROM ({recipe.rstrip(';')})").fetchall()}
    check("DuckDB, the README's history recipe on the glob: the live records, hard deletes excluded",
          got == live, f"{len(got)} vs {len(live)}; extra {sorted(got - live)[:3]} missing {sorted(live - got)[:3]}")
    hard = set(expected["hard_deleted"])
    check("hard-deleted records are not live in the lake", not (got & hard), str(sorted(got & hard)))

    # (Id only: fetching timestamps with a time zone would need pytz)
    tombs = con.execute(f"SELECT Id FROM ({readme('every deletion getDeleted reported').rstrip(';')})").fetchall()
    check("DuckDB, the README's tombstone query: one row per deletion", len(tombs) == expected["tombstones"],
          f"{len(tombs)} vs {expected['tombstones']}")
    check("every hard-deleted record has a tombstone", hard <= {t[0] for t in tombs})

    newest = ("QUALIFY row_number() OVER (PARTITION BY Id ORDER BY LastModifiedDate DESC) = 1 AND NOT IsDeleted")
    got = {r[0] for r in con.execute(f"SELECT Id FROM delta_scan('{table}') {newest}").fetchall()}
    check("DuckDB delta_scan: the live records", got == live, f"{len(got)} vs {len(live)}")

    dt = deltalake.DeltaTable(table)
    arrow = dt.to_pyarrow_table(columns=["Id", "LastModifiedDate", "IsDeleted"])
    got = {r[0] for r in duckdb.sql(f"SELECT Id FROM arrow {newest}").fetchall()}
    check("deltalake: the live records", got == live, f"{len(got)} vs {len(live)}")
    files = dt.file_uris()
    check("the Delta table holds the tombstone files", any("/deletes-" in f for f in files))

    df = (pl.read_delta(table, columns=["Id", "LastModifiedDate", "IsDeleted"])
          .sort("LastModifiedDate")
          .unique(subset="Id", keep="last")
          .filter(~pl.col("IsDeleted")))
    got = set(df["Id"].to_list())
    check("Polars read_delta: the live records", got == live, f"{len(got)} vs {len(live)}")

    current_table_is_the_live_records(lake, obj, expected)


def current_table_is_the_live_records(lake, obj, expected):
    """The current table, read the README's ways (DuckDB delta_scan, deltalake's QueryBuilder,
    Polars read_delta), holds exactly the emulator's live records with their values."""
    live = expected["live_rows"]
    current = f"{lake}/_current/{obj}"
    check("the current table exists", os.path.isdir(os.path.join(current, "_delta_log")), current)
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{EXT}'")
    q = readme_query("the org's live Accounts now").replace("/data/lake/salesforce", lake)
    total = sum(r[1] for r in con.execute(q).fetchall())
    check("DuckDB, the README's current-table query: one row per live record", total == len(live), f"{total} vs {len(live)}")
    rows = con.execute(f"SELECT Id, Name, epoch_ms(LastModifiedDate) FROM delta_scan('{current}')").fetchall()
    same(f"DuckDB delta_scan on {current}", rows, live)

    readme = open(os.path.join(ROOT, "..", "README.md")).read()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "QueryBuilder" in b)
    scope = {}
    exec(block.replace("/data/lake/salesforce", lake), scope)  # noqa: S102 - the README's own example
    t = scope["accounts"]
    ms = [None if v is None else int(v.timestamp() * 1000) for v in t.column("LastModifiedDate").to_pylist()]
    same("deltalake QueryBuilder (the README's block)", list(zip(t.column("Id").to_pylist(), t.column("Name").to_pylist(), ms)), live)
    check("Polars (the README's block): every live record counted once", scope["by_industry"]["len"].sum() == len(live))
    df = pl.read_delta(current, columns=["Id", "Name", "LastModifiedDate"]).with_columns(pl.col("LastModifiedDate").dt.epoch("ms"))
    same("Polars read_delta", df.rows(), live)
    try:
        deltalake.DeltaTable(current).to_pyarrow_table()
        refused = False
    except Exception as e:  # deltalake's pyarrow scanner does not read deletion vectors
        refused = "deletionVectors" in str(e)
    check("deltalake to_pyarrow_table refuses the table, as the README says", refused)


def same(reader, rows, live):
    got = {r[0]: {"Name": r[1], "LastModifiedDate": r[2]} for r in rows}
    check(f"{reader}: each record once", len(got) == len(rows), f"{len(rows)} rows, {len(got)} ids")
    check(f"{reader}: the live records", set(got) == set(live),
          f"extra {sorted(set(got) - set(live))[:3]} missing {sorted(set(live) - set(got))[:3]}")
    diff = [i for i in got if i in live and got[i] != live[i]]
    check(f"{reader}: Name and LastModifiedDate as Salesforce has them", not diff,
          f"{diff[:2]}: {[(got[i], live[i]) for i in diff[:2]]}")


if __name__ == "__main__":
    run("deletes", main)
