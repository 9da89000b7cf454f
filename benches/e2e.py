#!/usr/bin/env python3
"""End-to-end benchmark: `forcelake sync` against the emulator for N Account records with
~40 mixed fields, and the obvious Python extractor (benches/python_baseline.py) on the same
emulator in the same run. Reports records/s, input MB/s, CPU seconds per million records and
peak RSS of each, and the ratio.

usage: benches/e2e.py [--records 1000000] [--concurrency 8]   (run by benches/run.sh)
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "forcelake")
FIELDS = ["Id", "IsDeleted", "MasterRecordId", "Name", "Type", "ParentId", "BillingStreet", "BillingCity", "BillingState",
          "BillingPostalCode", "BillingCountry", "BillingLatitude", "BillingLongitude", "BillingGeocodeAccuracy", "Phone",
          "Website", "Industry", "AnnualRevenue", "NumberOfEmployees", "Ownership", "Description", "Rating", "OwnerId",
          "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp", "LastActivityDate",
          "Credit_Limit__c", "Global_Employees__c", "Tier__c", "Regions__c", "Discount__c", "Is_Partner__c",
          "Health_Score__c", "Support_Cutoff__c", "HQ_Location__Latitude__s", "HQ_Location__Longitude__s"]


def measured(cmd, env=None):
    """Runs cmd; returns (wall s, cpu s, peak RSS MiB, stdout)."""
    t = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="forcelake-bench-")
    emu = subprocess.Popen([BIN, "emulator", "--listen", "127.0.0.1:0", "--rows", f"Account={a.records},Contact=0,Opportunity=0,Case=0,Invoice__c=0",
                            "--anchor-date", "2026-01-01", "--days", "365", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = re.search(r"(http://127\.0\.0\.1:\d+)", emu.stdout.readline()).group(1)
        cfg = os.path.join(tmp, "bench.toml")
        with open(cfg, "w") as f:
            f.write(f"""[salesforce]
instance_url = "{base}"
client_id = "forcelake-demo-client"
[[objects]]
name = "Account"
fields = {json.dumps(FIELDS)}
[sync]
mode = "historical"
start_date = "2025-01-01"
end_date = "2025-12-31"
query_limit = 1000000
rate_limit = 100000
concurrency = {a.concurrency}
[destination]
url = "{tmp}/lake"
""")
        env = dict(os.environ, FORCELAKE_CLIENT_SECRET="forcelake-demo-secret", RUST_LOG="forcelake=warn")
        # Warm-up (untimed): the emulator renders each record to JSON once and then serves
        # pages from memory, so the timed runs measure the extractors, not the renderer.
        measured([BIN, "--config", cfg, "--set", f"destination.url={tmp}/warmup", "sync", "--json"], env)
        shutil.rmtree(os.path.join(tmp, "warmup"), ignore_errors=True)
        wall, cpu, rss, out = measured([BIN, "--config", cfg, "sync", "--json"], env)
        s = json.loads(out)
        rows = s["objects"][0]["rows"]
        # JSON bytes: the Python run counts the bytes it read; forcelake read the same pages.
        lake_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(tmp, "lake", "Account")) for f in fs)
        py_out = os.path.join(tmp, "py.parquet")
        fields = ",".join(FIELDS)
        py_cmd = [os.environ.get("BENCH_PYTHON", sys.executable), os.path.join(ROOT, "benches", "python_baseline.py"), base, "Account", fields, py_out]
        pwall, pcpu, prss, pout = measured(py_cmd)
        pj = json.loads(pout)
        mb = pj["bytes"] / 1e6 * (rows / max(pj["records"], 1))
        print()
        print(f"records: {rows:,} Account, {len(FIELDS)} fields; lake {lake_bytes / 1e6:.1f} MB ZSTD Parquet; JSON served ≈ {mb:.0f} MB")
        print(f"{'tool':<34} {'wall s':>8} {'records/s':>11} {'JSON MB/s':>10} {'CPU s / 1M':>11} {'peak RSS MiB':>13}")
        print(f"{'forcelake sync (c=' + str(a.concurrency) + ')':<34} {wall:>8.1f} {rows / wall:>11,.0f} {mb / wall:>10.1f} {cpu / rows * 1e6:>11.1f} {rss:>13.0f}")
        print(f"{'python urllib+json+pyarrow':<34} {pwall:>8.1f} {pj['records'] / pwall:>11,.0f} {pj['bytes'] / 1e6 / pwall:>10.1f} {pcpu / pj['records'] * 1e6:>11.1f} {prss:>13.0f}")
        print(f"ratio (records/s): {(rows / wall) / (pj['records'] / pwall):.1f}x")
    finally:
        emu.terminate()
        emu.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
