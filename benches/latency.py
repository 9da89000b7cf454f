#!/usr/bin/env python3
"""End-to-end benchmark as users live: Salesforce a few hundred milliseconds away.

Against `forcelake emulator --latency-ms 300` (every REST answer 300 ms late) serving N
synthetic Accounts (39 mixed fields) over two years, in one run on the same emulator:

1. the obvious Python extractor (benches/python_simple_salesforce.py: simple-salesforce
   `query_all_iter` + pyarrow, one query, 2,000-record pages);
2. `forcelake sync` with REST query windows (`sync.api = "rest"`) at default settings
   (rate_limit 5/s, concurrency 4; query_limit raised so one run finishes the object — the
   default 50 would pause it, by design, after 50 requests);
3. the same, tuned: concurrency 10, rate_limit 100;
4. `forcelake sync` at default settings (`sync.api = "auto"`: windows of 100,000 records or
   more go to Bulk API 2.0 query jobs, which the emulator completes BULK_DELAY_MS after
   creation).

Reports records/s, the API requests each tool sent (the emulator's own count, all kinds:
describe, counts, pages; read from /limits before and after) and peak RSS; then the targets
of issue 13 for REST (requests <= 1.1 x ceil(N / 2000) + windows + 5) and of issue 14 for
Bulk (requests <= N / 25,000, records/s >= 5x REST windows' at defaults, peak RSS < 300 MiB).
usage: benches/latency.py [--records N,N] [--latency-ms MS] [--bulk-delay-ms MS]
(run by benches/run.sh)
"""
import argparse
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import BIN, FIELDS, ROOT, measured  # noqa: E402

ANCHOR = datetime.date(2026, 1, 1)
DAYS = 730


def api_used(base):
    """The emulator's count of REST requests so far (this /limits call excluded)."""
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "forcelake-demo-client",
                                   "client_secret": "forcelake-demo-secret"}).encode()
    tok = json.load(urllib.request.urlopen(base + "/services/oauth2/token", form))["access_token"]
    req = urllib.request.Request(base + "/services/data/v62.0/limits", headers={"Authorization": "Bearer " + tok})
    lim = json.load(urllib.request.urlopen(req))["DailyApiRequests"]
    return lim["Max"] - lim["Remaining"] - 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", default="100000,1000000")
    ap.add_argument("--latency-ms", type=int, default=300)
    ap.add_argument("--bulk-delay-ms", type=int, default=5000,
                    help="time from a Bulk job's creation to JobComplete in the emulator")
    a = ap.parse_args()
    py = os.environ.get("BENCH_PYTHON", sys.executable)
    tmp = tempfile.mkdtemp(prefix="forcelake-latency-")
    rows_out = []
    try:
        for n in [int(x) for x in a.records.split(",") if x.strip()]:
            emu = subprocess.Popen([BIN, "emulator", "--listen", "127.0.0.1:0", "--rows", "0", "--synthetic", f"Account={n}",
                                    "--anchor-date", ANCHOR.isoformat(), "--days", str(DAYS), "--seed", "1",
                                    "--latency-ms", str(a.latency_ms), "--daily-limit", "100000000",
                                    "--bulk-delay-ms", str(a.bulk_delay_ms)],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                base = re.search(r"(http://127\.0\.0\.1:\d+)", emu.stdout.readline()).group(1)
                first = ANCHOR - datetime.timedelta(days=DAYS)
                cfg = os.path.join(tmp, "bench.toml")
                with open(cfg, "w") as f:
                    f.write(f"""[salesforce]
instance_url = "{base}"
client_id = "forcelake-demo-client"
gzip = false
[[objects]]
name = "Account"
fields = {json.dumps(FIELDS)}
[sync]
mode = "historical"
start_date = "{first.isoformat()}"
end_date = "{(ANCHOR - datetime.timedelta(days=1)).isoformat()}"
query_limit = 1000000
[destination]
url = "{tmp}/lake"
""")
                env = dict(os.environ, FORCELAKE_CLIENT_SECRET="forcelake-demo-secret", RUST_LOG="forcelake=warn")

                def run(label, cmd, env=None, windows=None):
                    before = api_used(base)
                    wall, _, rss, out = measured(cmd, env)
                    used = api_used(base) - before
                    got = json.loads(out)
                    records = got["records"] if "records" in got else got["objects"][0]["rows"]
                    if windows is None and "objects" in got:
                        windows = got["objects"][0].get("windows_planned")
                    rows_out.append((n, label, records, wall, used, rss, windows))
                    shutil.rmtree(f"{tmp}/lake", ignore_errors=True)

                run("python simple-salesforce+pyarrow",
                    [py, os.path.join(ROOT, "benches", "python_simple_salesforce.py"), base, "Account", ",".join(FIELDS),
                     os.path.join(tmp, "py.parquet")])
                rest = ["--set", "sync.api=rest"]
                run("forcelake REST windows, defaults", [BIN, "--config", cfg, *rest, "sync", "--json"], env)
                run("forcelake REST windows, concurrency 10, 100/s",
                    [BIN, "--config", cfg, *rest, "--set", "sync.concurrency=10", "--set", "sync.rate_limit=100", "sync",
                     "--json"], env)
                run("forcelake defaults (api auto: Bulk API 2.0)", [BIN, "--config", cfg, "sync", "--json"], env)
            finally:
                emu.terminate()
                emu.wait()
        print()
        print(f"Account, {len(FIELDS)} fields, {DAYS} days, every answer {a.latency_ms} ms late, "
              f"Bulk jobs complete {a.bulk_delay_ms} ms after creation")
        print(f"| {'records':>9} | {'tool':<52} | {'records/s':>9} | {'API requests':>12} | {'windows':>7} | {'peak RSS MiB':>12} |")
        print(f"|{'-' * 11}|{'-' * 54}|{'-' * 11}|{'-' * 14}|{'-' * 9}|{'-' * 14}|")
        for n, label, records, wall, used, rss, windows in rows_out:
            print(f"| {n:>9,} | {label:<52} | {records / wall:>9,.0f} | {used:>12,} | {windows if windows is not None else '':>7} | {rss:>12.0f} |")
        print()
        for n in sorted({r[0] for r in rows_out}):
            rs = [r for r in rows_out if r[0] == n]
            script = rs[0][2] / rs[0][3]
            rest_defaults = rs[1][2] / rs[1][3]
            for _, label, records, wall, used, rss, windows in rs[1:]:
                speed = records / wall
                if "Bulk" in label:
                    bound = records / 25000
                    print(f"{n:,}: {label}: {speed / script:.1f}x the script's records/s, "
                          f"{speed / rest_defaults:.1f}x REST windows' at defaults (target 5x: "
                          f"{'ok' if speed >= 5 * rest_defaults else 'MISSED'}); {used} requests "
                          f"(bound {bound:.0f}: {'ok' if used <= bound else 'MISSED'}); peak RSS {rss:.0f} MiB "
                          f"(bound 300: {'ok' if rss < 300 else 'MISSED'})")
                else:
                    bound = math.ceil(1.1 * math.ceil(records / 2000)) + (windows or 0) + 5
                    print(f"{n:,}: {label}: {speed / script:.1f}x the script's records/s; "
                          f"{used} requests (bound {bound}: {'ok' if used <= bound else 'MISSED'})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
