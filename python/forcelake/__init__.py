"""forcelake: extract Salesforce records into a typed, day-partitioned Parquet data lake.

This package is the ``forcelake`` command (installed beside it, on ``PATH`` in the
environment it is installed into) and the Python side of running it: :func:`binary` says
where the command is, and :mod:`forcelake.airflow` holds the Airflow task helpers the example
DAGs use.
"""
from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from importlib.metadata import PackageNotFoundError, version as _version

__all__ = ["binary", "__version__"]

try:
    __version__ = _version("forcelake")
except PackageNotFoundError:  # run from a source tree
    __version__ = "0+unknown"


def binary() -> str:
    """The path of the ``forcelake`` command installed with this package.

    Looked for in this environment's scripts folder (where ``pip install`` puts it, whether or
    not that folder is on ``PATH``), then the user scheme's, then on ``PATH``.
    """
    name = "forcelake.exe" if os.name == "nt" else "forcelake"
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    try:
        folders.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    for folder in folders:
        path = os.path.join(folder or "", name)
        if folder and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        "the forcelake command is not installed in this environment: pip install forcelake"
    )
