"""The reporting the Python checks share (tests/*_check.py): one line per check, a tally,
and the exit code; an unexpected error counts as a failure."""
import os
import sys

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name} {detail}", flush=True)


def run(label, main):
    """Runs `main`, prints `<label>: N passed, M failed` and exits 1 when anything failed."""
    global failed
    try:
        main()
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        failed += 1
        print(f"FAIL unexpected error: {e!r}", flush=True)
    print(f"{label}: {passed} passed, {failed} failed", flush=True)
    sys.stderr.flush()
    # os._exit, not sys.exit: the native readers' threads (DuckDB's delta extension, deltalake)
    # can abort the interpreter's teardown ("terminate called without an active exception")
    # after every check has run; the verdict is the checks'.
    os._exit(1 if failed else 0)
