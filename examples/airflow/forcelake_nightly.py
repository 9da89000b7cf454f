"""``forcelake_nightly``: one ``forcelake sync`` a night (an incremental pipeline file).

The task's XCom is the run's summary, parsed (``{"status": "complete", "objects": [...]}``).
Exit 1 (a chunk failed) or 2 (a configuration error) fails the task; a run paused by its
request budget exits 0 with ``"status": "paused"`` and the next night continues.
Needs ``pip install forcelake`` on the workers; see :mod:`forcelake.airflow` for the Airflow
Variables it reads.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from forcelake import airflow as fl

with DAG(
    "forcelake_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["forcelake"],
) as dag:

    @task(retries=2, retry_delay=pendulum.duration(minutes=10))
    def sync() -> dict:
        return fl.sync()

    sync()
