"""A real PostgreSQL server for the catalog contract tests: Debian's binaries, a throwaway cluster.

``ASSAY_TEST_POSTGRES_URL`` points the tests at a server that is already running instead. Outside
CI a machine without PostgreSQL skips these tests with the reason; under any non-empty ``CI`` it is a failure
(``.ci/run`` installs the ``postgresql`` package).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    """A SQLAlchemy URL of an empty PostgreSQL database, alive for the context."""
    if os.environ.get("ASSAY_TEST_POSTGRES_URL"):
        yield os.environ["ASSAY_TEST_POSTGRES_URL"]
        return
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but PostgreSQL is not installed: .ci/run installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); CI installs it")
    root = Path(tempfile.mkdtemp(prefix="assay-pg-"))
    data = root / "data"
    # PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *args: subprocess.run(  # noqa: E731 - a local shorthand
        [*as_user, *args], check=True, capture_output=True, text=True
    )
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "assay", "--no-sync", "-E", "UTF8")
        run(
            pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
            f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off", "start",
        )  # fmt: skip
        yield f"postgresql://assay@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run(
                [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True
            )
        shutil.rmtree(root, ignore_errors=True)
