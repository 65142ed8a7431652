"""Reading runs: one list of every run, wherever it started (CLI, Python, the web app's queue,
Spark). Every read first settles runs whose holder is gone (``interrupted``), so the CLI, the
worker and the web app see the same state. A web run's job adds only how far its worker got."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.core.errors import InputError, NotFoundError, check_text
from assay.core.records import Job, RunQuery, RunRecord, check_name
from assay.reports.json import read_result_json
from assay.services.integrity import verify_run_files
from assay.services.twins import twin_reason
from assay.services.workspace import Workspace
from assay.store.leases import expire_leases

MAX_PAGE = 500
MAX_OFFSET = 10**9
VERDICTS = ("pass", "fail", "inconclusive", "none")
STATUSES = ("queued", "running", "interrupted", "finished", "failed", "cancelled")
ORIGINS = ("cli", "python", "web")
MAX_TAGS = 20
MAX_NOTE = 10_000


def list_runs(ws: Workspace, limit: int | None = 100) -> list[RunRecord]:
    """The newest runs first, abandoned ones marked ``interrupted`` with the reason."""
    expire_leases(ws.catalog)
    return ws.catalog.list_runs(limit)


def get_run(ws: Workspace, run_id: str) -> RunRecord:
    """One run by id (or a unique prefix), its lease settled first. A web job's id leads to its
    run (the pages' older links name jobs)."""
    expire_leases(ws.catalog)
    try:
        return ws.catalog.get_run(run_id)
    except NotFoundError:
        job = _job(ws, run_id)
        if job is None or job.run_id is None:
            raise
        return ws.catalog.get_run(job.run_id)


def paired_runs(ws: Workspace, candidate: str, baseline: str) -> tuple[RunRecord, RunRecord]:
    """Two finished runs (ids or prefixes) that a paired comparison may judge: of two model
    versions, on one dataset version, their files as recorded."""
    cand, base = get_run(ws, candidate), get_run(ws, baseline)
    for run in (cand, base):
        if run.status != "finished":
            raise InputError(f"run {run.id[:12]} is {run.status}, not finished")
        verify_run_files(run)
    if cand.id == base.id:
        raise InputError("compare two different runs")
    cm, bm = ws.catalog.get_model_by_id(cand.model_id), ws.catalog.get_model_by_id(base.model_id)
    twin = twin_reason(cm, bm)
    if twin is not None:  # one model version, or one model under two names
        # Nothing can change by construction, and a pass would read as evidence.
        same = cm.ref if cm.id == bm.id else f"{cm.ref} and {bm.ref} ({twin})"
        raise InputError(
            f"both runs are of {same}: a model version compared with itself proves nothing; "
            "compare with another version"
        )
    if cand.dataset_id != base.dataset_id:
        d1 = ws.catalog.get_dataset_by_id(cand.dataset_id).ref
        d2 = ws.catalog.get_dataset_by_id(base.dataset_id).ref
        raise InputError(
            f"the runs are on different dataset versions ({d1} and {d2}); a paired comparison "
            "needs the same items"
        )
    return cand, base


def _job(ws: Workspace, job_id: str) -> Job | None:
    try:
        return ws.jobs.get(job_id)
    except NotFoundError:
        return None


@dataclass(frozen=True)
class RunRow:
    """One run as the list of runs shows it."""

    id: str
    status: str
    origin: str
    model: str
    dataset: str
    baseline: str | None
    started_at: str
    finished_at: str | None
    duration_s: float | None
    n_items: int | None
    n_failed: int | None
    verdict: str | None
    headline: dict[str, Any] | None
    engine: str
    tags: list[str] = field(default_factory=list)
    note: str | None = None
    error: str | None = None
    # A web run: its job, who asked for it and how far the worker got.
    job_id: str | None = None
    created_by: str | None = None
    progress: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RunPage:
    runs: list[RunRow]
    total: int
    offset: int
    limit: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "runs": [r.to_dict() for r in self.runs],
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _rows(ws: Workspace, records: list[RunRecord]) -> list[RunRow]:
    models = {m.id: m.ref for m in ws.catalog.list_models()}
    datasets = {d.id: d.ref for d in ws.catalog.list_datasets()}
    ids = [r.id for r in records]
    tags = ws.catalog.tags_of(ids)
    jobs = ws.jobs.by_runs(ids)
    rows = []
    for r in _summarised(ws, records):
        job = jobs.get(r.id)
        rows.append(
            RunRow(
                id=r.id,
                status=r.status,
                origin=r.origin or "cli",
                model=models.get(r.model_id, f"model {r.model_id}"),
                dataset=datasets.get(r.dataset_id, f"dataset {r.dataset_id}"),
                baseline=None if r.baseline_model_id is None else models.get(r.baseline_model_id),
                started_at=r.started_at.isoformat(),
                finished_at=None if r.finished_at is None else r.finished_at.isoformat(),
                duration_s=_finite(r.duration_s),
                n_items=r.n_items,
                n_failed=r.n_failed,
                verdict=r.verdict,
                headline=None
                if r.headline_metric is None
                else {
                    "metric": r.headline_metric,
                    "value": _finite(r.headline_value),
                    "ci_low": _finite(r.headline_low),
                    "ci_high": _finite(r.headline_high),
                },
                engine=str((r.config or {}).get("engine", "local")),
                tags=tags.get(r.id, []),
                note=r.note,
                # A job's "retried: its worker stopped" is its history, not an error of the
                # run it goes on with (the run page showed it in red): only a failed job's is.
                error=r.error
                or (job.error if job is not None and job.status == "failed" else None),
                job_id=None if job is None else job.id,
                created_by=None if job is None else job.created_by,
                progress=None
                if job is None
                else {"done": job.progress_done, "total": job.progress_total},
            )
        )
    return rows


def _summarised(ws: Workspace, records: list[RunRecord]) -> list[RunRecord]:
    """Runs finished before the list kept their summary get it from their result.json, once."""
    out = []
    for r in records:
        path = Path(r.run_dir) / "result.json"
        if r.status == "finished" and r.headline_metric is None and path.is_file():
            try:
                summary = read_result_json(path).summary()
            except (OSError, InputError):
                out.append(r)  # unreadable: the list shows the run without its numbers
                continue
            ws.catalog.record_summary(r.id, summary)
            r = ws.catalog.get_run(r.id)
        out.append(r)
    return out


def run_page(ws: Workspace, query: RunQuery) -> RunPage:
    """A page of the list of runs, newest first unless ``query`` says otherwise."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}")
    if not 0 <= query.offset <= MAX_OFFSET:
        raise InputError(f"offset must be between 0 and {MAX_OFFSET:,}")
    for name, value, allowed in (
        ("verdict", query.verdict, VERDICTS),
        ("status", query.status, STATUSES),
        ("origin", query.origin, ORIGINS),
    ):
        if value is not None and value not in allowed:
            raise InputError(f"{name} must be one of {', '.join(allowed)} (not {value!r})")
    expire_leases(ws.catalog)
    records, total = ws.catalog.query_runs(query)
    return RunPage(_rows(ws, records), total, query.offset, query.limit)


def run_row(ws: Workspace, run_id: str) -> RunRow:
    """One run as the list shows it (by run id, a unique prefix, or its web job's id)."""
    return _rows(ws, [get_run(ws, run_id)])[0]


def tag_run(ws: Workspace, run_id: str, tags: list[str]) -> RunRow:
    """Replace the run's tags (names like model names: letters, digits, '.', '_', '-')."""
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InputError("tags must be a list of strings")
    if len(tags) > MAX_TAGS:
        raise InputError(f"at most {MAX_TAGS} tags per run")
    clean = [check_name(t.strip(), "tag")[:100] for t in tags if t.strip()]
    run = get_run(ws, run_id)
    ws.catalog.set_tags(run.id, clean)
    return run_row(ws, run.id)


def annotate_run(ws: Workspace, run_id: str, note: str | None) -> RunRow:
    """Set (or clear, with None or "") the run's note; the run's results never change."""
    if note is not None and not isinstance(note, str):
        raise InputError("note must be text")
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"a note holds at most {MAX_NOTE:,} characters")
    if note is not None:
        check_text(note, "note")
    run = get_run(ws, run_id)
    ws.catalog.set_note(run.id, note or None)
    return run_row(ws, run.id)
