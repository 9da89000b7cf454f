"""Running forcelake from Airflow 3 tasks: ``from forcelake.airflow import forcelake, check``.

Airflow Variables (all optional but the secret):

* ``forcelake_config`` — the pipeline file (default ``/etc/forcelake/forcelake.toml``);
* ``forcelake_bin`` — another forcelake command to run (default: the one installed with this
  package, :func:`forcelake.binary`);
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

import forcelake as _forcelake

DEFAULT_CONFIG = "/etc/forcelake/forcelake.toml"
#: ``run-chunk``: the chunk is not done yet (a budget stopped it, or its day has not passed).
NOT_DONE_YET = 3

log = logging.getLogger("forcelake")


def config_path() -> str:
    return Variable.get("forcelake_config", default=DEFAULT_CONFIG)


def binary() -> str:
    """The ``forcelake_bin`` Variable, else the command installed with this package."""
    chosen = Variable.get("forcelake_bin", default=None)
    if chosen:
        return chosen
    try:
        return _forcelake.binary()
    except FileNotFoundError:
        return "forcelake"  # the worker's PATH; a missing command fails the task below


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
            f"the forcelake command {cmd[0]!r} was not found: pip install forcelake on the workers "
            "(or set the Airflow Variable forcelake_bin to its path)"
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


def plan_chunks(conf: dict | None = None) -> list[str]:
    """The chunks a fan-out runs: ``plan sync --json``, or ``plan backfill …`` for a run conf
    ``{"backfill": {"object": "Account", "start": "2025-03-01", "end": "2025-03-31"}}``."""
    backfill = (conf or {}).get("backfill")
    if backfill:
        args = ["plan", "backfill", "--object", backfill["object"], "--start", backfill["start"],
                "--end", backfill["end"], "--json"]
    else:
        args = ["plan", "sync", "--json"]
    code, out = forcelake(*args)
    if code != 0:
        raise AirflowFailException(failure("plan", code, out.get("error", "")))
    return [c["chunk"] for c in out["chunks"]]


def run_chunk(chunk: str) -> dict:
    """``run-chunk <chunk> --json``: its summary; exit 3 retries the task later."""
    code, out = forcelake("run-chunk", chunk, "--json")
    return check(f"run-chunk {chunk}", code, out)


def sync() -> dict:
    """``sync --json``: the run's summary; exit 1 or 2 fails the task."""
    code, out = forcelake("sync", "--json")
    return check("sync", code, out)


def reconcile(*objects: str) -> dict:
    """``reconcile [--object O]… --json``: lists the live Ids in Salesforce and tombstones
    what the lake holds that Salesforce no longer has (e.g. a weekly task); exit 1 or 2 fails
    the task."""
    args = ["reconcile", "--json"]
    for o in objects:
        args += ["--object", o]
    code, out = forcelake(*args)
    return check("reconcile", code, out)
