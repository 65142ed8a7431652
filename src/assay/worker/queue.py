"""The task queue (Huey): SQLite beside the store by default, Redis when ``ASSAY_QUEUE_URL`` says.

The web process only enqueues ``assay.run_job(home, job_id)``; a worker process (``assay worker``,
or the one ``assay serve`` starts) consumes it. The job's state lives in the catalog, not in the
queue, so pages read progress from one place whichever broker carries the work.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from assay.core.errors import InputError
from assay.services.jobs import execute_job
from assay.services.workspace import Workspace

TASK_NAME = "assay.run_job"


def run_job(home: str, job_id: str) -> None:
    ws = Workspace.open(home)
    try:
        execute_job(ws, job_id)
    finally:
        ws.close()


@dataclass
class Queue:
    huey: Huey
    home: Path
    _task: Any

    def enqueue(self, job_id: str) -> None:
        self._task(str(self.home), job_id)

    def consumer(self, workers: int = 1) -> Consumer:
        """A consumer running ``workers`` jobs at a time (threads: onnxruntime and Arrow release
        the GIL, and each job already uses every core through onnxruntime)."""
        return self.huey.create_consumer(workers=workers, worker_type="thread", periodic=False)


def open_queue(home: Path) -> Queue:
    url = os.environ.get("ASSAY_QUEUE_URL")
    huey: Huey
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise InputError(f"ASSAY_QUEUE_URL must be a redis:// URL, got {url!r}")
        try:
            import redis  # noqa: F401  # huey imports it lazily and fails with a bare NameError
        except ImportError:
            raise InputError(
                "ASSAY_QUEUE_URL names Redis, which needs the extra: pip install 'assay[redis]'"
            ) from None
        huey = RedisHuey("assay", url=url)
    else:
        path = home / "queue.db"
        try:
            huey = SqliteHuey("assay", filename=str(path))
        except sqlite3.DatabaseError as exc:
            raise InputError(
                f"the job queue {path} cannot be read ({exc}): move it aside, and start again "
                "the runs it held (`assay run list --verdict none` lists them)"
            ) from None
    task = huey.task(name=TASK_NAME)(run_job)
    return Queue(huey, home, task)


def stop_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    """Stop this worker gracefully (SIGINT: the running job finishes) once ``parent_pid`` is gone.

    The server that started the worker may die by a signal without running any cleanup (uvicorn
    re-raises SIGTERM after its shutdown); this keeps its workers from outliving it.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="assay-parent-watch", daemon=True).start()
