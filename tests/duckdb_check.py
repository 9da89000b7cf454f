#!/usr/bin/env python3
"""Reads a forcelake lake back with DuckDB and checks it against the emulator's REST API.

Run by scripts/test.sh after the Rust tests:
  python tests/duckdb_check.py target/release/forcelake

It starts `forcelake emulator` on a free 127.0.0.1 port, runs `forcelake sync`, and checks
with DuckDB: row counts per object equal Salesforce's COUNT(), Ids are unique, column types
are the SPEC's, and typed values equal what the REST API serves. It also runs `forcelake demo`
(the README's first command) and validates the README's configuration examples and every
manifest against the JSON Schemas in schemas/.
"""
import decimal
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
import urllib.request

import duckdb
import jsonschema

from checks import check, run

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/forcelake")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT_ID = "forcelake-demo-client"
SECRET = "forcelake-demo-secret"


def rest(base, token, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read(), parse_float=decimal.Decimal)


def soql(base, token, q):
    return rest(base, token, "/services/data/v62.0/queryAll?q=" + urllib.parse.quote(q))


def main():
    emu = subprocess.Popen(
        [BIN, "emulator", "--listen", "127.0.0.1:0", "--rows", "Account=400,Invoice__c=500", "--anchor-date", "2026-01-01", "--days", "90", "--seed", "11"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = emu.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if not m:
            raise SystemExit(f"emulator did not start: {line!r}")
        base = m.group(1)
        run_checks(base)
    finally:
        emu.terminate()
        emu.wait(timeout=10)


def run_checks(base):
    tmp = tempfile.mkdtemp(prefix="forcelake-duckdb-")
    lake = os.path.join(tmp, "lake")
    cfg = os.path.join(tmp, "forcelake.toml")
    with open(cfg, "w") as f:
        f.write(f"""
[salesforce]
instance_url = "{base}"
client_id = "{CLIENT_ID}"

[[objects]]
name = "Account"

[[objects]]
name = "Invoice__c"
fields = ["Id", "Name", "IsDeleted", "Amount__c", "Tax_Rate__c", "Due_Date__c", "Paid__c", "Line_Items__c", "Tags__c",
          "Cutoff_Time__c", "Ship_To__c", "LastModifiedDate", "Owner.Name", "Account__r.Name", "Account__r.Owner.Email"]

[sync]
mode = "historical"
end_date = "2025-12-31"
query_limit = 100000
rate_limit = 10000

[destination]
url = "file://{lake}"
""")
    env = dict(os.environ, FORCELAKE_CLIENT_SECRET=SECRET)
    out = subprocess.run([BIN, "--config", cfg, "sync", "--json"], env=env, capture_output=True, text=True, timeout=600)
    check("sync exits 0", out.returncode == 0, out.stderr[-2000:])
    summary = json.loads(out.stdout)
    rows = {o["object"]: o["rows"] for o in summary["objects"]}

    token_req = urllib.request.Request(base + "/services/oauth2/token", data=urllib.parse.urlencode(
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": SECRET}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(token_req, timeout=30) as r:
        token = json.loads(r.read())["access_token"]

    con = duckdb.connect()
    for obj in ["Account", "Invoice__c"]:
        glob = f"{lake}/{obj}/date=*/*.parquet"
        n, distinct = con.execute(f"SELECT count(*), count(DISTINCT Id) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()
        sf = soql(base, token, f"SELECT COUNT() FROM {obj} WHERE LastModifiedDate < 2026-01-01T00:00:00Z")["totalSize"]
        check(f"{obj}: DuckDB count equals Salesforce COUNT() ({sf})", n == sf, f"duckdb {n}")
        check(f"{obj}: DuckDB count equals the run summary", n == rows[obj], f"{n} vs {rows[obj]}")
        check(f"{obj}: Ids unique", distinct == n)
        per_day = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true) WHERE CAST(LastModifiedDate AT TIME ZONE 'UTC' AS DATE) <> date").fetchone()[0]
        check(f"{obj}: every row is in the partition of its cursor's UTC day", per_day == 0, f"{per_day} misplaced")

    # The same sync through Bulk API 2.0 jobs: DuckDB sees the same rows, value for value.
    bulk_lake = lake + "-bulk"
    out = subprocess.run([BIN, "--config", cfg, "--set", "sync.api=bulk", "--set", f"destination.url=file://{bulk_lake}",
                          "sync", "--json"], env=env, capture_output=True, text=True, timeout=600)
    check("sync with sync.api = bulk exits 0", out.returncode == 0, out.stderr[-2000:])
    for obj in ["Account", "Invoice__c"]:
        a = f"read_parquet('{lake}/{obj}/date=*/*.parquet', hive_partitioning = true)"
        b = f"read_parquet('{bulk_lake}/{obj}/date=*/*.parquet', hive_partitioning = true)"
        diff = con.execute(f"SELECT (SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})) + "
                           f"(SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}))").fetchone()[0]
        n = con.execute(f"SELECT count(*) FROM {b}").fetchone()[0]
        check(f"{obj}: DuckDB reads the Bulk lake with the REST lake's rows, value for value ({n})", diff == 0 and n == rows[obj],
              f"{diff} rows differ")

    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{lake}/Invoice__c/date=*/*.parquet', hive_partitioning = true))").fetchall())
    want = {"Amount__c": "DECIMAL(16,2)", "Tax_Rate__c": "DOUBLE", "Due_Date__c": "DATE", "Paid__c": "BOOLEAN", "Line_Items__c": "INTEGER",
            "Tags__c": "VARCHAR[]", "Cutoff_Time__c": "VARCHAR", "LastModifiedDate": "TIMESTAMP WITH TIME ZONE", "date": "DATE",
            "Ship_To__c": "STRUCT(latitude DOUBLE, longitude DOUBLE)"}
    for col, t in want.items():
        check(f"Invoice__c.{col} is {t}", types.get(col) == t, f"got {types.get(col)}")

    # Typed values equal what the REST API serves.
    sample = con.execute(f"""SELECT Id, Amount__c, Due_Date__c, Tags__c, Cutoff_Time__c, epoch_ms(LastModifiedDate), Ship_To__c
                            FROM read_parquet('{lake}/Invoice__c/date=*/*.parquet', hive_partitioning = true) ORDER BY Id LIMIT 25""").fetchall()
    ids = ",".join(f"'{r[0]}'" for r in sample)
    recs = {r["Id"]: r for r in soql(base, token, f"SELECT Id, Amount__c, Due_Date__c, Tags__c, Cutoff_Time__c, LastModifiedDate, Ship_To__c FROM Invoice__c WHERE Id IN ({ids})")["records"]}
    mismatches = []
    for (id_, amount, due, tags, cutoff, lmd_ms, ship) in sample:
        r = recs[id_]
        exp_amount = None if r["Amount__c"] is None else decimal.Decimal(r["Amount__c"]).quantize(decimal.Decimal("0.01"))
        if amount != exp_amount:
            mismatches.append((id_, "Amount__c", amount, r["Amount__c"]))
        if (str(due) if due else None) != r["Due_Date__c"]:
            mismatches.append((id_, "Due_Date__c", due, r["Due_Date__c"]))
        if (";".join(tags) if tags is not None else None) != r["Tags__c"]:
            mismatches.append((id_, "Tags__c", tags, r["Tags__c"]))
        if (cutoff + "Z" if cutoff else None) != r["Cutoff_Time__c"]:
            mismatches.append((id_, "Cutoff_Time__c", cutoff, r["Cutoff_Time__c"]))
        import datetime
        exp_ms = int(datetime.datetime.strptime(r["LastModifiedDate"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)
        if lmd_ms != exp_ms:
            mismatches.append((id_, "LastModifiedDate", lmd_ms, r["LastModifiedDate"]))
        exp_ship = None if r["Ship_To__c"] is None else {"latitude": float(r["Ship_To__c"]["latitude"]), "longitude": float(r["Ship_To__c"]["longitude"])}
        if ship != exp_ship:
            mismatches.append((id_, "Ship_To__c", ship, r["Ship_To__c"]))
    check("25 Invoice__c records: decimal, date, multipicklist, time, datetime and location equal the REST values", not mismatches, str(mismatches[:3]))
    big = con.execute(f"SELECT count(*) FROM read_parquet('{lake}/Invoice__c/date=*/*.parquet') WHERE Amount__c >= 10000000").fetchone()[0]
    check("currency values in Java exponent form (>= 1E7) arrive exactly", big > 0)
    times = con.execute(f"SELECT count(Cutoff_Time__c), count(CAST(Cutoff_Time__c AS TIME)) FROM read_parquet('{lake}/Invoice__c/date=*/*.parquet')").fetchone()
    check("a time is HH:MM:SS.sss text that DuckDB casts to TIME", times[0] > 0 and times[0] == times[1], str(times))

    # Relationship paths are struct columns: `SELECT Owner.Name` works as written.
    check("Invoice__c.Owner is STRUCT(\"Name\" VARCHAR)", types.get("Owner") == 'STRUCT("Name" VARCHAR)', f"got {types.get('Owner')}")
    sample = con.execute(f"""SELECT Id, Owner.Name, Account__r.Name, Account__r.Owner.Email
                            FROM read_parquet('{lake}/Invoice__c/date=*/*.parquet', hive_partitioning = true) ORDER BY Id LIMIT 40""").fetchall()
    ids = ",".join(f"'{r[0]}'" for r in sample)
    recs = {r["Id"]: r for r in soql(base, token, f"SELECT Id, Owner.Name, Account__r.Name, Account__r.Owner.Email FROM Invoice__c WHERE Id IN ({ids})")["records"]}
    mismatches = []
    empty = 0
    for (id_, owner, acct, acct_owner) in sample:
        r = recs[id_]
        a = r["Account__r"]
        empty += a is None
        want = (r["Owner"]["Name"], a and a["Name"], a and a["Owner"] and a["Owner"]["Email"])
        if (owner, acct, acct_owner) != want:
            mismatches.append((id_, (owner, acct, acct_owner), want))
    check("40 Invoice__c records: Owner.Name, Account__r.Name and Account__r.Owner.Email equal the REST values", not mismatches, str(mismatches[:3]))
    check("some invoices have no account: their Account__r is NULL", 0 < empty < len(sample), f"{empty} empty")

    # Manifests follow their schema; files named by manifests exist.
    mschema = json.load(open(os.path.join(ROOT, "schemas/manifest.schema.json")))
    bad = []
    count = 0
    for dirpath, _, files in os.walk(os.path.join(lake, "_forcelake/manifests")):
        for fn in files:
            m = json.load(open(os.path.join(dirpath, fn)))
            count += 1
            try:
                jsonschema.validate(m, mschema)
            except jsonschema.ValidationError as e:
                bad.append((fn, e.message))
            for f in m["files"]:
                if not os.path.isfile(os.path.join(lake, f["path"])):
                    bad.append((fn, "missing " + f["path"]))
    check(f"{count} manifests match schemas/manifest.schema.json", count > 0 and not bad, str(bad[:3]))

    # README configuration examples follow schemas/config.schema.json.
    cschema = json.load(open(os.path.join(ROOT, "schemas/config.schema.json")))
    readme = open(os.path.join(ROOT, "README.md")).read()
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[salesforce]" in b]
    errors = []
    for b in blocks:
        try:
            jsonschema.validate(tomllib.loads(b), cschema)
        except Exception as e:  # noqa: BLE001
            errors.append(str(e)[:200])
    check(f"{len(blocks)} README configuration examples match schemas/config.schema.json", blocks and not errors, str(errors[:2]))

    # DuckDB reads the lake straight from S3 (moto) over httpfs, hive partitioning and all.
    s3 = os.environ.get("FORCELAKE_TEST_S3_ENDPOINT")
    if not s3:
        check("S3 emulator configured for the httpfs read (scripts/test.sh starts it)", not os.environ.get("CI"))
    else:
        bucket = os.environ.get("FORCELAKE_TEST_S3_BUCKET", "s3-test")
        prefix = f"duckdb-{os.getpid()}"
        s3cfg = os.path.join(tmp, "s3.toml")
        with open(s3cfg, "w") as f:
            f.write(open(cfg).read().replace(f'url = "file://{lake}"', f'url = "s3://{bucket}/{prefix}"') + f"""
[destination.options]
aws_endpoint = "{s3}"
aws_access_key_id = "test"
aws_secret_access_key = "test"
aws_region = "us-east-1"
aws_allow_http = "true"
""")
        out = subprocess.run([BIN, "--config", s3cfg, "sync", "--json"], env=env, capture_output=True, text=True, timeout=600)
        check("sync to s3:// exits 0", out.returncode == 0, out.stderr[-2000:])
        s3rows = {o["object"]: o["rows"] for o in json.loads(out.stdout)["objects"]}
        import glob
        import duckdb_extension_httpfs
        ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions", "*", "httpfs.duckdb_extension"))[0]
        s3con = duckdb.connect()
        s3con.sql(f"LOAD '{ext}'")
        hostport = s3.split("://", 1)[1]
        s3con.sql(f"CREATE SECRET s3emu (TYPE s3, KEY_ID 'test', SECRET 'test', REGION 'us-east-1', ENDPOINT '{hostport}', URL_STYLE 'path', USE_SSL false)")
        n, days = s3con.execute(f"SELECT count(*), count(DISTINCT date) FROM read_parquet('s3://{bucket}/{prefix}/Account/date=*/*.parquet', hive_partitioning = true)").fetchone()
        check(f"DuckDB reads Account from S3 over httpfs ({n} rows in {days} day partitions)", n == s3rows["Account"] == rows["Account"] and days > 1, f"{n} vs {s3rows}")

    # The README's first command: `forcelake demo` writes a lake DuckDB reads.
    demo_dir = os.path.join(tmp, "demo")
    out = subprocess.run([BIN, "demo", "--dir", demo_dir, "--rows", "200", "--json"], capture_output=True, text=True, timeout=600)
    check("demo exits 0", out.returncode == 0, out.stderr[-2000:])
    demo_rows = {o["object"]: o["rows"] for o in json.loads(out.stdout)["objects"]}
    n = con.execute(f"SELECT count(*) FROM read_parquet('{demo_dir}/Account/date=*/*.parquet', hive_partitioning = true)").fetchone()[0]
    check("demo: DuckDB reads Account with the rows the emulator served (200)", n == 200 == demo_rows["Account"], f"{n}, summary {demo_rows}")


if __name__ == "__main__":
    run("duckdb", main)
