#!/usr/bin/env python3
"""Reads a forcelake lake with Spark (pyspark from PyPI, the machine's Java) as users do.

Run by scripts/test.sh once per Spark version, from a venv holding that pyspark and duckdb:
  python tests/spark_check.py target/release/forcelake

It starts `forcelake emulator` on a free 127.0.0.1 port, syncs objects with every Salesforce
type (decimals, timestamps, dates, times, multipicklists, addresses, geolocations, relationship
structs), then checks that `spark.read.parquet(<Object folder>)` infers a schema and reads every
object, that its typed values equal DuckDB's row for row, and that `spark.read.json` reads the
manifests (one JSON object per line, no multiLine) with their row counts.
"""
import datetime
import decimal
import os
import re
import subprocess
import sys
import tempfile

import duckdb
from pyspark.sql import SparkSession

from checks import check, run

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/forcelake")
CLIENT_ID = "forcelake-demo-client"
SECRET = "forcelake-demo-secret"
OBJECTS = {
    "Account": ["Id", "Name", "IsDeleted", "Type", "BillingAddress", "Phone", "AnnualRevenue", "NumberOfEmployees",
                "Description", "LastActivityDate", "Credit_Limit__c", "Global_Employees__c", "Regions__c", "Discount__c",
                "Is_Partner__c", "Health_Score__c", "Support_Cutoff__c", "HQ_Location__c", "CreatedDate", "LastModifiedDate",
                "Owner.Name", "Owner.Email", "Parent.Name"],
    "Invoice__c": ["Id", "Name", "Amount__c", "Tax_Rate__c", "Due_Date__c", "Paid__c", "Units__c", "Line_Items__c",
                   "Status__c", "Tags__c", "Cutoff_Time__c", "Ship_To__c", "LastModifiedDate", "Account__r.Name",
                   "Account__r.Owner.Email"],
    "Case": None,  # the standard fields
    "AccountHistory": None,  # anyType values (JSON text); its cursor is CreatedDate
}
CURSORS = {"AccountHistory": "CreatedDate"}


def norm(v):
    """One Python value for DuckDB's and Spark's: timestamps as UTC epoch ms, rows as dicts."""
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)  # Spark: the session zone, UTC here
        return ("ts", round(v.timestamp() * 1000))
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if hasattr(v, "asDict"):
        return norm(v.asDict(recursive=True))
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def main():
    tmp = tempfile.mkdtemp(prefix="forcelake-spark-")
    lake = os.path.join(tmp, "lake")
    emu = subprocess.Popen(
        [BIN, "emulator", "--listen", "127.0.0.1:0", "--rows", "Account=300,Invoice__c=300,Case=200,AccountHistory=150,Contact=0,Opportunity=0",
         "--anchor-date", "2026-01-01", "--days", "60", "--seed", "17"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = re.search(r"(http://127\.0\.0\.1:\d+)", emu.stdout.readline()).group(1)
        cfg = os.path.join(tmp, "forcelake.toml")
        objects = ""
        for name, fields in OBJECTS.items():
            objects += f'\n[[objects]]\nname = "{name}"\n'
            if fields:
                objects += "fields = [" + ", ".join(f'"{f}"' for f in fields) + "]\n"
            if name in CURSORS:
                objects += f'cursor_field = "{CURSORS[name]}"\n'
        with open(cfg, "w") as f:
            f.write(f"""
[salesforce]
instance_url = "{base}"
client_id = "{CLIENT_ID}"
{objects}
[sync]
mode = "historical"
start_date = "2025-10-01"
end_date = "2025-12-31"
query_limit = 100000
rate_limit = 10000

[destination]
url = "file://{lake}"
""")
        out = subprocess.run([BIN, "--config", cfg, "sync", "--json"], env=dict(os.environ, FORCELAKE_CLIENT_SECRET=SECRET),
                             capture_output=True, text=True, timeout=600)
        check("sync exits 0", out.returncode == 0, out.stderr[-2000:])
        read(lake)
    finally:
        emu.terminate()
        emu.wait(timeout=30)


def read(lake):
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (SparkSession.builder.master("local[1]").appName("forcelake-check")
             .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "1").config("spark.ui.showConsoleProgress", "false").getOrCreate())
    version = spark.version
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        for obj in OBJECTS:
            folder = os.path.join(lake, obj)
            try:
                df = spark.read.parquet(folder)
                rows = df.orderBy("Id").collect()
            except Exception as e:  # noqa: BLE001 - the failure is the finding
                check(f"Spark {version} reads {obj} with an inferred schema", False, str(e)[:800])
                continue
            check(f"Spark {version} reads {obj} with an inferred schema ({len(rows)} rows)", len(rows) > 0)
            ddb = con.execute(f"SELECT * FROM read_parquet('{folder}/date=*/*.parquet', hive_partitioning = true) ORDER BY Id")
            cols = [d[0] for d in ddb.description]
            drows = ddb.fetchall()
            check(f"{obj}: Spark and DuckDB see the same columns", sorted(cols) == sorted(df.columns),
                  f"{sorted(cols)} vs {sorted(df.columns)}")
            mismatch = []
            for s_row, d_row in zip(rows, drows):
                d = dict(zip(cols, d_row))
                s = s_row.asDict(recursive=True)
                for c in cols:
                    if norm(s.get(c)) != norm(d[c]):
                        mismatch.append((d["Id"], c, s.get(c), d[c]))
            check(f"{obj}: Spark's typed values equal DuckDB's, row for row", len(rows) == len(drows) and not mismatch,
                  f"{len(rows)} vs {len(drows)} rows; {mismatch[:3]}")
            types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
            if obj == "Account":
                want = {"AnnualRevenue": "decimal(18,0)", "Credit_Limit__c": "decimal(18,2)", "LastModifiedDate": "timestamp",
                        "LastActivityDate": "date", "Support_Cutoff__c": "string", "Regions__c": "array<string>",
                        "NumberOfEmployees": "int", "Is_Partner__c": "boolean", "date": "date"}
                for c, t in want.items():
                    check(f"Spark {version}: Account.{c} is {t}", types.get(c) == t, f"got {types.get(c)}")
                check("Account.Owner is a struct with Name and Email", types.get("Owner") == "struct<Name:string,Email:string>",
                      types.get("Owner"))
                names = df.select("Owner.Name").where("Owner.Name IS NOT NULL").count()
                check("df.select(\"Owner.Name\") works as written", names == len(rows), f"{names} of {len(rows)}")
                times = df.where("Support_Cutoff__c IS NOT NULL").select("Support_Cutoff__c").collect()
                check("a time is HH:MM:SS.sss text", times and all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", r[0]) for r in times))
                money = [r[0] for r in df.select("Credit_Limit__c").collect() if r[0] is not None]
                check("decimals are exact Decimals", money and all(isinstance(m, decimal.Decimal) for m in money))
            # Manifests: one JSON object per line, read without multiLine.
            mdir = os.path.join(lake, "_forcelake", "manifests", obj)
            files = sum(len(fs) for _, _, fs in os.walk(mdir))
            m = spark.read.json(mdir)
            check(f"{obj}: spark.read.json reads the manifests without multiLine ({files})",
                  "_corrupt_record" not in m.columns and m.count() == files, str(m.columns))
            total = m.agg({"rows": "sum"}).collect()[0][0]
            check(f"{obj}: the manifests' rows add up to the rows Spark reads", total == len(rows), f"{total} vs {len(rows)}")
    finally:
        spark.stop()


if __name__ == "__main__":
    run("spark", main)
