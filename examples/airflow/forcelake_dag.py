"""Airflow DAGs for forcelake.

* ``forcelake_salesforce_nightly``: one incremental sync per night.
* ``forcelake_salesforce_chunks``: a scheduler fan-out. ``forcelake plan sync --json`` (or
  ``plan backfill ... --json``) prints the chunks still to do; dynamic task mapping runs one
  ``forcelake run-chunk`` task per chunk. ``run-chunk`` is idempotent: a chunk that another
  worker already committed exits 0 and says so, so retries and overlapping runs are safe.

Set the Airflow Variable ``forcelake_secret`` to the Consumer Secret, and install the
``forcelake`` binary on the workers.
"""
import json
import subprocess

import pendulum
from airflow import DAG
from airflow.decorators import task
from airflow.models import Variable
from airflow.operators.bash import BashOperator

CONFIG = "/etc/forcelake/acme.toml"
ENV = {"FORCELAKE_CLIENT_SECRET": "{{ var.value.forcelake_secret }}"}

with DAG(
    "forcelake_salesforce_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
) as nightly:
    BashOperator(
        task_id="incremental_sync",
        bash_command=f"forcelake --config {CONFIG} --log-format json sync --json",
        env=ENV,
        append_env=True,
        retries=2,
    )


with DAG(
    "forcelake_salesforce_chunks",
    schedule=None,  # trigger with {"backfill": {"object": "Account", "start": "2025-03-01", "end": "2025-03-31"}} or without conf for `plan sync`
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=4,  # stay within sync.concurrency and the org's 10 open query cursors
) as fanout:

    @task
    def plan(**context) -> list[str]:
        conf = (context["dag_run"].conf or {}).get("backfill")
        if conf:
            args = ["plan", "backfill", "--object", conf["object"], "--start", conf["start"], "--end", conf["end"], "--json"]
        else:
            args = ["plan", "sync", "--json"]
        env = {"FORCELAKE_CLIENT_SECRET": Variable.get("forcelake_secret")}
        out = subprocess.run(["forcelake", "--config", CONFIG, *args], env=env, capture_output=True, text=True, check=True)
        return [c["chunk"] for c in json.loads(out.stdout)["chunks"]]

    # Exit 3: not done yet (a budget stopped it, or its day has not passed): retried later.
    @task(retries=6, retry_delay=pendulum.duration(minutes=30))
    def run_chunk(chunk: str) -> dict:
        env = {"FORCELAKE_CLIENT_SECRET": Variable.get("forcelake_secret")}
        out = subprocess.run(["forcelake", "--config", CONFIG, "run-chunk", chunk, "--json"], env=env, capture_output=True, text=True)
        if out.returncode == 3:
            raise RuntimeError(f"not done yet, retry later: {json.loads(out.stdout.splitlines()[-1]).get('reason')}")
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-4000:])
        return json.loads(out.stdout)  # {"chunk", "object", "outcome": "committed" | "already_committed", "rows", "requests"}

    run_chunk.expand(chunk=plan())
