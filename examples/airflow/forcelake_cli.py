"""Running the forcelake binary from Airflow 3 tasks (imported by the forcelake DAG files).

Airflow Variables (all optional but the secret):

* ``forcelake_config`` — the pipeline file (default ``/etc/forcelake/forcelake.toml``);
* ``forcelake_bin`` — the binary (default ``forcelake``, found on the worker's PATH);
* ``forcelake_secret`` — the Connected App's Consumer Secret, passed to forcelake as
  ``FORCELAKE_CLIENT_SECRET`` (it never appears in a command line or a log);

A ``run-chunk`` that is not done yet is retried after 30 minutes (the environment variable
``FORCELAKE_AIRFLOW_RETRY_DELAY_S`` on the DAG processor changes it; DAG files read no
Variable while they are parsed).

The subprocess inherits the worker's environment (PATH, proxies, cloud credentials) plus the
secret. forcelake's own log lines (stderr) are copied into the task log, so a failing task
shows forcelake's message, not just an exit code.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException

DEFAULT_CONFIG = "/etc/forcelake/forcelake.toml"
DEFAULT_BIN = "forcelake"
#: ``run-chunk``: the chunk is not done yet (a budget stopped it, or its day has not passed).
NOT_DONE_YET = 3

log = logging.getLogger("forcelake")


def config_path() -> str:
    return Variable.get("forcelake_config", default=DEFAULT_CONFIG)


def binary() -> str:
    return Variable.get("forcelake_bin", default=DEFAULT_BIN)


def retry_delay_s() -> int:
    return int(os.environ.get("FORCELAKE_AIRFLOW_RETRY_DELAY_S", "1800"))


def environment() -> dict[str, str]:
    """The worker's environment plus the secret (never a replacement of the environment)."""
    return {**os.environ, "FORCELAKE_CLIENT_SECRET": Variable.get("forcelake_secret")}


def forcelake(*args: str) -> tuple[int, dict]:
    """Runs ``forcelake --config <config> <args…>`` and returns (exit code, the JSON it printed).

    forcelake's stderr goes to the task log line by line; its stdout is one JSON line.
    """
    cmd = [binary(), "--config", config_path(), *args]
    log.info("running %s", " ".join(cmd))
    try:
        out = subprocess.run(cmd, env=environment(), capture_output=True, text=True)
    except FileNotFoundError as e:
        raise AirflowFailException(
            f"the forcelake binary {cmd[0]!r} was not found: install it on the workers "
            "(cargo install --locked --path .) or set the Airflow Variable forcelake_bin"
        ) from e
    for line in out.stderr.splitlines():
        log.info("forcelake: %s", line)
    lines = [l for l in out.stdout.splitlines() if l.strip()]
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        summary = {}
    return out.returncode, summary


def failure(what: str, code: int, stderr_hint: str = "") -> str:
    return f"forcelake {what} exited {code}{': ' + stderr_hint if stderr_hint else ''} (forcelake's messages are above in this log)"


def check(what: str, code: int, summary: dict) -> dict:
    """Exit 0: the summary. Exit 3: not done yet, retried later. Anything else fails the task."""
    if code == 0:
        return summary
    if code == NOT_DONE_YET:
        raise AirflowException(
            f"forcelake {what}: not done yet ({summary.get('reason', 'see the log')}); the task is retried later"
        )
    # 1: a chunk failed after its retries; 2: the configuration is wrong. Retrying the task
    # cannot fix a configuration, and forcelake already retried the chunk.
    raise AirflowFailException(failure(what, code, summary.get("error", "")))
