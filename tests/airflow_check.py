#!/usr/bin/env python3
"""Runs the example DAGs (examples/airflow/) with Apache Airflow 3 against the emulator.

Run by scripts/test.sh from a venv holding apache-airflow 3.x, its standard provider and the
forcelake wheel (the DAGs import `forcelake.airflow` and run the command it installed; the
binary given here only serves the emulator and the checks' own plan/status calls):
  python tests/airflow_check.py target/release/forcelake

Checks: the DAG folder imports without errors (`airflow dags list-import-errors`); `airflow
dags test forcelake_fanout` completes the lake (fan-out over `plan sync --json`) and a
backfill given as the run's conf; `airflow dags test forcelake_nightly` runs incremental syncs
whose XCom is the parsed summary; a fan-out whose emulator stops part-way fails, and once the
emulator is back a new run completes the lake.
"""
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from checks import check, run

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/forcelake")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRFLOW = os.path.join(os.path.dirname(sys.executable), "airflow")
SECRET = "forcelake-demo-secret"


def last_json(text, default):
    """The last line of a command's output that is a JSON array (Airflow prints warnings first)."""
    for line in reversed(text.splitlines()):
        if line.startswith("["):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                pass
    return default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """`forcelake emulator` on a fixed port, so it can be stopped and started again."""

    def __init__(self, port, latency_ms=0, accounts=300):
        self.port, self.latency_ms, self.accounts, self.proc = port, latency_ms, accounts, None

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "emulator", "--listen", f"127.0.0.1:{self.port}", "--rows", f"Account={self.accounts},Invoice__c=200,Contact=0,Opportunity=0,Case=0",
             "--anchor-date", "2026-01-01", "--days", "60", "--seed", "23", "--latency-ms", str(self.latency_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert re.search(r"http://127\.0\.0\.1:\d+", self.proc.stdout.readline())
        return self

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None


def write_config(path, port, lake, mode, extra=""):
    sync = ('mode = "incremental"\nlag_s = 1\n' if mode == "incremental"
            else 'mode = "historical"\nstart_date = "2025-10-01"\nend_date = "2025-12-31"\n') + extra
    with open(path, "w") as f:
        f.write(f"""[salesforce]
instance_url = "http://127.0.0.1:{port}"
client_id = "forcelake-demo-client"

[[objects]]
name = "Account"

[[objects]]
name = "Invoice__c"
fields = ["Id", "Name", "Amount__c", "Account__r.Name", "LastModifiedDate"]

[sync]
{sync}
rate_limit = 10000

[destination]
url = "file://{lake}"
""")


def forcelake(cfg, *args):
    out = subprocess.run([BIN, "--config", cfg, *args], env=dict(os.environ, FORCELAKE_CLIENT_SECRET=SECRET),
                         capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout, out.stderr


def chunks_left(cfg, *plan):
    code, out, err = forcelake(cfg, "plan", *(plan or ("sync",)), "--json")
    if code != 0:
        return f"plan exited {code}: {err[-500:]}"
    return len(json.loads(out.splitlines()[-1])["chunks"])


def main():
    home = tempfile.mkdtemp(prefix="forcelake-airflow-")
    port = free_port()
    emu = Emulator(port).start()
    cfgs = {name: os.path.join(home, f"{name}.toml") for name in ["fanout", "nightly", "broken", "budget"]}
    roomy = "query_limit = 100000\n"
    write_config(cfgs["fanout"], port, os.path.join(home, "lake"), "historical", roomy)
    write_config(cfgs["nightly"], port, os.path.join(home, "lake-nightly"), "incremental", roomy)
    env = dict(os.environ,
               AIRFLOW_HOME=home,
               AIRFLOW__CORE__DAGS_FOLDER=os.path.join(ROOT, "examples", "airflow"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
               AIRFLOW_VAR_FORCELAKE_SECRET=SECRET,
               FORCELAKE_AIRFLOW_RETRY_DELAY_S="1",
               # the wheel's command, on PATH as `pip install forcelake` leaves it; no path given
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("FORCELAKE_CLIENT_SECRET", None)
    env.pop("AIRFLOW_VAR_FORCELAKE_BIN", None)

    def airflow(*args, config=cfgs["fanout"], timeout=900):
        e = dict(env, AIRFLOW_VAR_FORCELAKE_CONFIG=config)
        return subprocess.run([AIRFLOW, *args], env=e, capture_output=True, text=True, timeout=timeout)

    def xcoms(dag, task):
        db = sqlite3.connect(os.path.join(home, "airflow.db"))
        try:
            rows = db.execute("SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value' ORDER BY timestamp",
                              (dag, task)).fetchall()
        finally:
            db.close()
        out = []
        for (v,) in rows:
            v = json.loads(v) if isinstance(v, (str, bytes)) else v
            out.append(json.loads(v) if isinstance(v, str) else v)
        return out

    try:
        # The DAGs run the command installed with the forcelake package (the wheel), not BIN.
        r = subprocess.run([sys.executable, "-c", "import forcelake, forcelake.airflow; print(forcelake.binary())"],
                           env=env, capture_output=True, text=True)
        installed = r.stdout.strip()
        check("forcelake.airflow imports and forcelake.binary() is the wheel's command",
              r.returncode == 0 and installed == os.path.join(os.path.dirname(sys.executable), "forcelake")
              and installed != BIN, (r.stdout + r.stderr)[-1000:])
        r = subprocess.run(["forcelake", "--version"], env=env, capture_output=True, text=True)
        check("`forcelake --version` runs from PATH", r.returncode == 0 and r.stdout.startswith("forcelake "), r.stdout + r.stderr)
        r = airflow("db", "migrate")
        check("airflow db migrate", r.returncode == 0, r.stderr[-2000:])
        r = airflow("dags", "reserialize")  # parse the DAG folder into the metadata DB
        check("airflow dags reserialize", r.returncode == 0, r.stderr[-2000:])
        r = airflow("dags", "list-import-errors", "-o", "json")
        errors = last_json(r.stdout, ["unreadable"])
        check("the example DAGs import without errors", r.returncode == 0 and errors == [], (r.stdout + r.stderr)[-3000:])
        r = airflow("dags", "list", "-o", "json")
        ids = {d["dag_id"] for d in last_json(r.stdout, [])}
        check("both DAGs are listed", {"forcelake_fanout", "forcelake_nightly"} <= ids, str(ids))

        # 1. Fan-out over `plan sync --json`: one run-chunk task per window, the lake complete.
        before = chunks_left(cfgs["fanout"])
        r = airflow("dags", "test", "forcelake_fanout")
        check("dags test forcelake_fanout exits 0", r.returncode == 0, (r.stdout + r.stderr)[-3000:])
        left = chunks_left(cfgs["fanout"])
        check(f"the fan-out committed every planned window ({before} planned, {left} left)",
              isinstance(before, int) and before > 0 and left == 0, str(left))
        summaries = xcoms("forcelake_fanout", "run_chunk")
        check("each run_chunk XCom is forcelake's parsed summary",
              len(summaries) >= before and all(s.get("outcome") in ("committed", "already_committed") for s in summaries),
              str(summaries[:2]))
        code, out, _ = forcelake(cfgs["fanout"], "status", "--json")
        check("status after the fan-out exits 0", code == 0, out[-500:])

        # 2. A backfill given as the run's conf.
        bf = ["backfill", "--object", "Account", "--start", "2025-12-01", "--end", "2025-12-05"]
        r = airflow("dags", "test", "forcelake_fanout", "-c",
                    json.dumps({"backfill": {"object": "Account", "start": "2025-12-01", "end": "2025-12-05"}}))
        check("dags test forcelake_fanout with a backfill conf exits 0", r.returncode == 0, (r.stdout + r.stderr)[-3000:])
        check("the backfill's windows are all committed", chunks_left(cfgs["fanout"], *bf) == 0, str(chunks_left(cfgs["fanout"], *bf)))
        manifests = []
        for d, _, fs in os.walk(os.path.join(home, "lake", "_forcelake", "manifests", "Account")):
            manifests += [json.loads(open(os.path.join(d, f)).read()) for f in fs]
        days = {m["day"] for m in manifests if m["kind"] == "backfill"}
        check("backfill manifests cover 2025-12-01 .. 2025-12-05", {f"2025-12-0{i}" for i in range(1, 6)} <= days, str(sorted(days)))

        # 3. The nightly DAG: incremental syncs, the XCom is the parsed summary.
        for n in range(2):
            r = airflow("dags", "test", "forcelake_nightly", f"2026-01-0{n + 1}", config=cfgs["nightly"])
            check(f"dags test forcelake_nightly (run {n + 1}) exits 0", r.returncode == 0, (r.stdout + r.stderr)[-3000:])
            time.sleep(1.2)  # past lag_s
        nightly = xcoms("forcelake_nightly", "sync")
        check("the nightly XCom is the parsed summary", nightly and all(isinstance(s, dict) and s.get("status") == "complete" for s in nightly),
              str(nightly)[:500])

        # 4. The emulator stops part-way (after the plan): the run fails, a new run completes the lake.
        emu.stop()
        emu = Emulator(port, latency_ms=300).start()
        write_config(cfgs["broken"], port, os.path.join(home, "lake-broken"), "historical", roomy)
        planned = chunks_left(cfgs["broken"])
        proc = subprocess.Popen([AIRFLOW, "dags", "test", "forcelake_fanout"], env=dict(env, AIRFLOW_VAR_FORCELAKE_CONFIG=cfgs["broken"]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 300
        while time.time() < deadline and not xcoms("forcelake_fanout", "plan")[2:]:
            time.sleep(0.3)  # the third plan XCom: this run's plan has run
        emu.stop()
        log = proc.communicate(timeout=900)[0]
        check("the fan-out run fails while the emulator is down", proc.returncode != 0, f"exit {proc.returncode}")
        emu = Emulator(port).start()
        left = chunks_left(cfgs["broken"])
        check(f"with the emulator stopped part-way the lake is incomplete ({left} of {planned} windows left)",
              isinstance(left, int) and left > 0, log[-2000:])
        check("forcelake's error reaches the task log", "forcelake:" in log and ("connect" in log.lower() or "error" in log.lower()), log[-2000:])
        r = airflow("dags", "test", "forcelake_fanout", config=cfgs["broken"])
        check("a new fan-out run after the emulator is back exits 0", r.returncode == 0, (r.stdout + r.stderr)[-3000:])
        check("and the lake is complete", chunks_left(cfgs["broken"]) == 0, str(chunks_left(cfgs["broken"])))

        # 5. A window bigger than the request budget: run-chunk exits 3, the task retries later
        # and resumes where the last try committed, until the window is done.
        emu.stop()
        emu = Emulator(port, accounts=5000).start()
        write_config(cfgs["budget"], port, os.path.join(home, "lake-budget"), "historical", "query_limit = 2\nconcurrency = 1\n")
        planned = chunks_left(cfgs["budget"])
        r = airflow("dags", "test", "forcelake_fanout", config=cfgs["budget"])
        log = r.stdout + r.stderr
        check("a run-chunk stopped by its budget (exit 3) is retried and the run succeeds", r.returncode == 0 and "not done yet" in log,
              log[-3000:])
        check(f"and its window is complete ({planned} planned)", chunks_left(cfgs["budget"]) == 0, str(chunks_left(cfgs["budget"])))
    finally:
        emu.stop()


if __name__ == "__main__":
    run("airflow", main)
