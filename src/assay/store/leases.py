"""Run leases: a running run names its holder and renews a heartbeat; one whose holder is gone
becomes ``interrupted``, with the reason, for every reader (CLI, worker, web) alike.

A holder is ``host:pid``. A run is taken as abandoned when its holder runs on this host and that
process no longer exists (seen at once), or when its heartbeat is older than ``STALE_AFTER_S``
(any host: a killed machine, a frozen process). Holders renew every ``RENEW_EVERY_S``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from assay.core.errors import InputError, NotFoundError
from assay.core.records import Job, RunRecord
from assay.store.catalog import SqlCatalog, _record, now
from assay.store.schema import JobRow, RunRow

RENEW_EVERY_S = 10.0
STALE_AFTER_S = 60.0


def this_holder() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_is_dead(holder: str | None) -> bool:
    """Whether ``holder`` is a process of this host that no longer exists."""
    if not holder or ":" not in holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _renew(catalog: SqlCatalog, table: type[RunRow] | type[JobRow], ids: list[str]) -> None:
    if not ids:
        return
    with catalog._session.begin() as s:
        s.execute(
            update(table)
            .where(table.id.in_(ids), table.status == "running")
            .values(heartbeat_at=now())
        )


def renew(catalog: SqlCatalog, run_ids: list[str]) -> None:
    """Renew the heartbeat of these runs, while they are still running."""
    _renew(catalog, RunRow, run_ids)


def renew_jobs(catalog: SqlCatalog, job_ids: list[str]) -> None:
    """Renew the heartbeat of these jobs, while they are still running."""
    _renew(catalog, JobRow, job_ids)


def _abandoned(
    holder: str | None, beat: datetime, cutoff: datetime, stale_after_s: float
) -> str | None:
    """Why a lease is gone (None: it is held)."""
    if _holder_is_dead(holder):
        return f"its process ({holder}) is gone"
    if beat < cutoff:
        return (
            f"no heartbeat from {holder or 'its process'} since {beat:%Y-%m-%d %H:%M:%S} UTC "
            f"(more than {stale_after_s:.0f} s)"
        )
    return None


def expire_job_leases(
    catalog: SqlCatalog,
    at: datetime | None = None,
    stale_after_s: float = STALE_AFTER_S,
    max_attempts: int = 2,
) -> tuple[list[Job], list[Job]]:
    """Running jobs whose worker is gone: queued again while they have attempts left, else
    failed with the reason. Returns (requeued, failed); the caller puts the first on the queue."""
    at = at or now()
    cutoff = at - timedelta(seconds=stale_after_s)
    requeued, failed = [], []
    with catalog._session.begin() as s:
        for row in s.scalars(select(JobRow).where(JobRow.status == "running")):
            why = _abandoned(
                row.holder, row.heartbeat_at or row.started_at or at, cutoff, stale_after_s
            )
            if why is None:
                continue
            if row.attempts < max_attempts and not row.cancel_requested:
                row.status, row.holder, row.error = (
                    "queued",
                    None,
                    f"retried: its worker stopped ({why})",
                )
                requeued.append(_record(Job, row))
            else:
                row.status, row.finished_at = "failed", at
                row.error = f"its worker stopped ({why}), {row.attempts} attempt(s)"
                failed.append(_record(Job, row))
    return requeued, failed


def expire_leases(
    catalog: SqlCatalog, at: datetime | None = None, stale_after_s: float = STALE_AFTER_S
) -> list[RunRecord]:
    """Mark running runs whose holder is gone as ``interrupted``; returns them."""
    at = at or now()
    cutoff = at - timedelta(seconds=stale_after_s)
    out = []
    with catalog._session.begin() as s:
        for row in s.scalars(select(RunRow).where(RunRow.status == "running")):
            why = _abandoned(row.holder, row.heartbeat_at or row.started_at, cutoff, stale_after_s)
            if why is None:
                continue
            row.status, row.finished_at, row.error = "interrupted", at, f"interrupted: {why}"
            out.append(catalog.record(RunRecord, row))
    return out


def claim_run(catalog: SqlCatalog, run_id: str, holder: str) -> RunRecord:
    """Take an interrupted run back to ``running`` for ``holder``, atomically: of two processes
    resuming the same run, one wins and the other is told the run is already running."""
    with catalog._session.begin() as s:
        at = now()
        done = s.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.status == "interrupted")
            .values(status="running", holder=holder, heartbeat_at=at, finished_at=None, error=None)
        )
        row = s.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"run {run_id} not found")
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise InputError(
                f"run {run_id} is {row.status}: only an interrupted run can be resumed"
            )
        return catalog.record(RunRecord, row)


class Heartbeat:
    """Renews the leases of the runs given to ``hold`` every RENEW_EVERY_S, on a daemon thread,
    until ``stop``: a run that takes hours is never mistaken for an abandoned one."""

    def __init__(
        self,
        catalog: SqlCatalog,
        every_s: float = RENEW_EVERY_S,
        renew: Callable[[SqlCatalog, list[str]], None] = renew,
    ) -> None:
        self.catalog = catalog
        self.every_s = every_s
        self._renew = renew
        self.run_ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="assay-heartbeat", daemon=True)

    def hold(self, run_id: str) -> None:
        self.run_ids.append(run_id)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._renew(self.catalog, list(self.run_ids))
            except Exception:  # a busy database must not kill the run; the next beat retries
                continue
