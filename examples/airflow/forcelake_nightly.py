"""``forcelake_nightly``: one ``forcelake sync`` a night (an incremental pipeline file).

The task's XCom is the run's summary, parsed (``{"status": "complete", "objects": [...]}``).
Exit 1 (a chunk failed) or 2 (a configuration error) fails the task; a run paused by its
request budget exits 0 with ``"status": "paused"`` and the next night continues.
See ``forcelake_cli.py`` for the Airflow Variables it reads.
"""
from __future__ import annotations

import json

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    "forcelake_nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["forcelake"],
) as dag:
    BashOperator(
        task_id="sync",
        bash_command=(
            "{{ var.value.get('forcelake_bin', 'forcelake') }}"
            " --config {{ var.value.get('forcelake_config', '/etc/forcelake/forcelake.toml') }}"
            " sync --json"
        ),
        # the worker's environment (PATH, credentials) plus the secret
        env={"FORCELAKE_CLIENT_SECRET": "{{ var.value.forcelake_secret }}"},
        append_env=True,
        # stdout's last line is the one-line JSON summary: the XCom is the parsed summary
        output_processor=json.loads,
        retries=2,
        retry_delay=pendulum.duration(minutes=10),
    )
