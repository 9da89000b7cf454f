#!/usr/bin/env python3
"""End-to-end benchmark, all in one run against emulators on this machine (synthetic
Account tables: records generated on demand, so the emulator's memory does not grow with N):

1. `forcelake sync` of N records (default 1,000,000; 39 mixed fields) over REST query windows
   (`sync.api = "rest"`), without and with gzip, and by Bulk API 2.0 jobs (`sync.api = "bulk"`;
   the emulator completes a job 1 s after its creation);
2. the obvious Python extractors on the same emulator: simple-salesforce + pyarrow
   (benches/python_simple_salesforce.py) and a leaner urllib + json + pyarrow script
   (benches/python_baseline.py);
3. `forcelake sync` of larger objects (default 3,000,000 and 10,000,000) with the same
   configuration and the same records per day (an older org: more days, each as full as the
   1M object's), to show peak RSS does not grow with the object's size; then the largest
   object again with all its records in one year (days 10x as full), to show what denser
   days cost, up to `sync.memory_limit_mb`.

Reports records/s, JSON MB/s, CPU seconds per million records and peak RSS of each, and the
ratios. usage: benches/e2e.py [--records N] [--large N,N] [--concurrency C] [--memory-limit-mb M]
(run by benches/run.sh)
"""
import argparse
import datetime
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


ANCHOR = datetime.date(2026, 1, 1)


def emulator(records, days):
    """Starts an emulator serving `records` synthetic Accounts over the `days` days before
    2026-01-01; returns (process, base URL, first day)."""
    emu = subprocess.Popen([BIN, "emulator", "--listen", "127.0.0.1:0", "--rows", "0", "--synthetic", f"Account={records}",
                            "--anchor-date", ANCHOR.isoformat(), "--days", str(days), "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return emu, re.search(r"(http://127\.0\.0\.1:\d+)", emu.stdout.readline()).group(1), ANCHOR - datetime.timedelta(days=days)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--large", default="3000000,10000000", help="records of the bounded-memory runs, comma-separated ('' skips)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--memory-limit-mb", type=int, default=96)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="forcelake-bench-")
    emus = []
    try:
        emu, base, _ = emulator(a.records, 365)
        emus.append(emu)
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
api = "rest"
concurrency = {a.concurrency}
memory_limit_mb = {a.memory_limit_mb}
[destination]
url = "{tmp}/lake"
""")
        env = dict(os.environ, FORCELAKE_CLIENT_SECRET="forcelake-demo-secret", RUST_LOG="forcelake=warn")
        results = []

        def forcelake(label, base_url, lake, *sets):
            args = [BIN, "--config", cfg, "--set", f"salesforce.instance_url={base_url}", "--set", f"destination.url={lake}"]
            for kv in sets:
                args += ["--set", kv]
            wall, cpu, rss, out = measured(args + ["sync", "--json"], env)
            rows = json.loads(out)["objects"][0]["rows"]
            results.append((label, rows, wall, cpu, rss))
            shutil.rmtree(lake, ignore_errors=True)
            return rows

        # One untimed pass first: the emulator renders each of its 65,536 record templates on
        # first use, and every measured tool should meet it warm (the Python runs come later).
        forcelake("warm-up", base, f"{tmp}/lake-warm", "salesforce.gzip=false")
        results.pop()
        rows = forcelake(f"forcelake sync (c={a.concurrency}, no gzip)", base, f"{tmp}/lake", "salesforce.gzip=false")
        forcelake(f"forcelake sync (c={a.concurrency}, gzip)", base, f"{tmp}/lake-gz")
        forcelake(f"forcelake sync, Bulk API 2.0 (c={a.concurrency}, no gzip)", base, f"{tmp}/lake-bulk",
                  "salesforce.gzip=false", "sync.api=bulk")
        fields = ",".join(FIELDS)
        py = os.environ.get("BENCH_PYTHON", sys.executable)
        pj = None
        for label, script in [("python simple-salesforce+pyarrow", "python_simple_salesforce.py"),
                              ("python urllib+json+pyarrow", "python_baseline.py")]:
            pwall, pcpu, prss, pout = measured([py, os.path.join(ROOT, "benches", script), base, "Account", fields, os.path.join(tmp, "py.parquet")])
            pj = json.loads(pout)
            results.append((label, pj["records"], pwall, pcpu, prss))
        mb_per_record = pj["bytes"] / max(pj["records"], 1) / 1e6
        emu.terminate()
        emu.wait()
        large = [int(x) for x in a.large.split(",") if x.strip()]
        # The same records per day as the 1M object (more days), then the largest in one year.
        runs = [(n, max(1, round(365 * n / a.records)), "") for n in large]
        if large:
            runs.append((large[-1], 365, ", dense days"))
        for n, days, note in runs:
            emu, big, first = emulator(n, days)
            emus.append(emu)
            forcelake(f"forcelake sync {n:,} over {days:,} days{note}", big, f"{tmp}/lake-big", "salesforce.gzip=false",
                      f"sync.start_date={first.isoformat()}")
            emu.terminate()
            emu.wait()
        print()
        print(f"Account, {len(FIELDS)} fields, {mb_per_record * 1e6:.0f} bytes of JSON per record; "
              f"sync.memory_limit_mb = {a.memory_limit_mb}, concurrency = {a.concurrency}")
        print(f"| {'tool':<40} | {'records':>10} | {'wall s':>7} | {'records/s':>10} | {'JSON MB/s':>9} | {'CPU s / 1M':>10} | {'peak RSS MiB':>12} |")
        print(f"|{'-' * 42}|{'-' * 12}|{'-' * 9}|{'-' * 12}|{'-' * 11}|{'-' * 12}|{'-' * 14}|")
        for label, n, wall, cpu, rss in results:
            print(f"| {label:<40} | {n:>10,} | {wall:>7.1f} | {n / wall:>10,.0f} | {n * mb_per_record / wall:>9.1f} | {cpu / n * 1e6:>10.1f} | {rss:>12.0f} |")
        rate = {label: n / wall for label, n, wall, _, _ in results}
        fl = results[0][1] / results[0][2]
        print()
        for label in ("python simple-salesforce+pyarrow", "python urllib+json+pyarrow"):
            print(f"forcelake (no gzip) vs {label}: {fl / rate[label]:.1f}x records/s")
        for (n, days, note), r in zip(runs, results[len(results) - len(runs):]):
            print(f"peak RSS {n:,} records over {days:,} days vs {rows:,} over 365: {r[4] / results[0][4]:.2f}x")
    finally:
        for e in emus:
            e.terminate()
            e.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
