"""``forcelake_fanout``: a scheduler fan-out, one ``forcelake run-chunk`` task per unit of work.

``forcelake plan sync --json`` (or, when the run's conf is
``{"backfill": {"object": "Account", "start": "2025-03-01", "end": "2025-03-31"}}``,
``plan backfill …``) prints the query windows (and each object's deletes chunk) still to do;
dynamic task mapping runs one ``run-chunk`` task for each. ``run-chunk`` is idempotent: a
chunk another worker already committed exits 0 and says so, so retries and overlapping runs
are safe. Exit 3 (not done yet: a budget stopped it, or its day has not passed) makes the task
retry later; exit 1 or 2 fails it; exit 0 returns the parsed summary as the task's XCom.

Needs ``pip install forcelake`` on the workers; see :mod:`forcelake.airflow` for the Airflow
Variables it reads (the secret; the pipeline file).
"""
from __future__ import annotations

import pendulum
from airflow.sdk import DAG, get_current_context, task

from forcelake import airflow as fl

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
        return fl.plan_chunks(get_current_context()["dag_run"].conf)

    @task(retries=6, retry_delay=pendulum.duration(seconds=fl.retry_delay_s()))
    def run_chunk(chunk: str) -> dict:
        return fl.run_chunk(chunk)

    run_chunk.expand(chunk=plan())
