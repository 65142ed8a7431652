"""Queued validations: the web writes a job, a worker advances it, pages read it back."""

from __future__ import annotations

import builtins
import uuid
from typing import Any

from sqlalchemy import select, update

from assay.core.errors import NotFoundError
from assay.core.records import Job
from assay.store.catalog import SqlCatalog, _record, now
from assay.store.schema import JobRow

FINAL = ("finished", "failed", "cancelled")


class JobStore:
    def __init__(self, catalog: SqlCatalog) -> None:
        self._session = catalog._session

    def create(self, request: dict[str, Any], created_by: str, run_id: str | None = None) -> Job:
        row = JobRow(
            id=uuid.uuid4().hex,
            status="queued",
            request=request,
            created_by=created_by,
            created_at=now(),
            progress_done=0,
            cancel_requested=False,
            run_id=run_id,
        )
        with self._session() as s:
            s.add(row)
            s.commit()
            return _record(Job, row)

    def get(self, job_id: str) -> Job:
        with self._session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"run {job_id!r} not found")
            return _record(Job, row)

    def list(self, limit: int = 200) -> list[Job]:
        with self._session() as s:
            rows = s.scalars(select(JobRow).order_by(JobRow.created_at.desc()).limit(limit))
            return [_record(Job, r) for r in rows]

    def by_runs(self, run_ids: builtins.list[str]) -> dict[str, Job]:
        """The job of each of these runs that was queued through the web (the latest, should a
        run have been retried by a second job)."""
        with self._session() as s:
            rows = s.scalars(
                select(JobRow).where(JobRow.run_id.in_(run_ids)).order_by(JobRow.created_at)
            )
            return {r.run_id: _record(Job, r) for r in rows if r.run_id is not None}

    def update(self, job_id: str, **values: Any) -> None:
        with self._session() as s:
            s.execute(update(JobRow).where(JobRow.id == job_id).values(**values))
            s.commit()

    def start(self, job_id: str, holder: str) -> bool:
        """Mark a queued job running, held by ``holder``; False when it was cancelled (or taken)
        meanwhile."""
        with self._session() as s:
            started = now()
            done = s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued")
                .values(
                    status="running",
                    started_at=started,
                    holder=holder,
                    heartbeat_at=started,
                    attempts=JobRow.attempts + 1,
                )
            )
            s.commit()
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def request_cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job is cancelled at once, a running one at its next batch."""
        with self._session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"run {job_id!r} not found")
            if row.status == "queued":
                row.status, row.finished_at = "cancelled", now()
            if row.status not in FINAL:
                row.cancel_requested = True
            s.commit()
            return _record(Job, row)

    def cancel_requested(self, job_id: str) -> bool:
        with self._session() as s:
            flag = s.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id))
            return bool(flag)
