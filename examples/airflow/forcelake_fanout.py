"""``forcelake_fanout``: a scheduler fan-out, one ``forcelake run-chunk`` task per unit of work.

``forcelake plan sync --json`` (or, when the run's conf is
``{"backfill": {"object": "Account", "start": "2025-03-01", "end": "2025-03-31"}}``,
``plan backfill …``) prints the query windows still to do; dynamic task mapping runs one
``run-chunk`` task for each. ``run-chunk`` is idempotent: a window another worker already
committed exits 0 and says so, so retries and overlapping runs are safe. Exit 3 (not done
yet: a budget stopped it, or its day has not passed) makes the task retry later; exit 1 or 2
fails it; exit 0 returns the parsed summary as the task's XCom.
See ``forcelake_cli.py`` for the Airflow Variables it reads.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import DAG, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

import forcelake_cli as fl

with DAG(
    "forcelake_fanout",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=4,  # stay within sync.concurrency and the org's 10 open query cursors
    tags=["forcelake"],
) as dag:

    @task
    def plan() -> list[str]:
        conf = (get_current_context()["dag_run"].conf or {}).get("backfill")
        if conf:
            args = ["plan", "backfill", "--object", conf["object"], "--start", conf["start"], "--end", conf["end"], "--json"]
        else:
            args = ["plan", "sync", "--json"]
        code, out = fl.forcelake(*args)
        if code != 0:
            raise AirflowFailException(fl.failure("plan", code))
        return [c["chunk"] for c in out["chunks"]]

    @task(retries=6, retry_delay=pendulum.duration(seconds=fl.retry_delay_s()))
    def run_chunk(chunk: str) -> dict:
        code, out = fl.forcelake("run-chunk", chunk, "--json")
        return fl.check(f"run-chunk {chunk}", code, out)

    run_chunk.expand(chunk=plan())
