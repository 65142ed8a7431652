"""Validations requested through the web: checked on arrival, queued, run by a worker.

``submit`` resolves every input (model, dataset, baseline, policy, slices) before anything is
queued, so a bad request is refused with its reason and no job is written. ``execute_job`` is what
the worker runs: it reports progress to the job's row and stops at the next batch once a cancel is
requested.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.core.config import ValidationConfig
from assay.core.errors import AssayError, InputError, NotFoundError
from assay.core.records import Job
from assay.engines.job import RunCancelledError
from assay.services.datasets import get_dataset
from assay.services.models import get_model
from assay.services.redact import for_clients
from assay.services.validation import (
    check_device,
    plan_validation,
    resume_validation,
    validate,
)
from assay.services.workspace import Workspace
from assay.services.yaml_input import parse_yaml
from assay.store.catalog import now
from assay.store.checkpoints import INVOCATION
from assay.store.files import write_atomically
from assay.store.leases import (
    Heartbeat,
    expire_job_leases,
    expire_leases,
    renew_jobs,
    this_holder,
)

FIELDS = {
    "model",
    "dataset",
    "datasets",
    "baseline",
    "policy",
    "slices",
    "explore",
    "calibration",
    "false_alarm_rate",
    "device",
    "reuse",
}
PROGRESS_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 0.25


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{key} must be a string")
    return value


def _policy_bytes(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("policy: the text holds characters that are not valid Unicode") from None


def _store_policy(ws: Workspace, data: bytes) -> str:
    """A policy given as text is stored content-addressed, so the run can name the exact file;
    written only once the request passed every check (a refused request leaves nothing)."""
    folder = ws.home / "policies"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}.yaml"
    if not path.exists():
        write_atomically(path, data)
    return str(path)


def check_request(ws: Workspace, raw: Any) -> list[dict[str, Any]]:
    """One normalised request per dataset; raises InputError/NotFoundError naming the problem."""
    if not isinstance(raw, dict):
        raise InputError("expected a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    model = _text(raw, "model")
    if model is None:
        raise InputError("model is required")
    datasets = raw.get("datasets") or ([raw["dataset"]] if raw.get("dataset") else [])
    if (
        not isinstance(datasets, list)
        or not datasets
        or not all(isinstance(d, str) for d in datasets)
    ):
        raise InputError("datasets must be a non-empty list of dataset names")
    twice = sorted({d for d in datasets if datasets.count(d) > 1})
    if twice:
        raise InputError(f"dataset {twice[0]!r} is named twice: it would run twice")
    slices = raw.get("slices") or []
    if not isinstance(slices, list) or not all(isinstance(s, str) for s in slices):
        raise InputError("slices must be a list of strings")
    explore = raw.get("explore", True)
    if not isinstance(explore, bool):
        raise InputError("explore must be true or false")
    reuse = raw.get("reuse", True)
    if not isinstance(reuse, bool):
        raise InputError("reuse must be true or false")
    baseline = _text(raw, "baseline")
    calibration = _text(raw, "calibration")
    rate = raw.get("false_alarm_rate", 0.01)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 1:
        raise InputError("false_alarm_rate must be a number between 0 and 1")
    device = _text(raw, "device") or "cpu"
    ValidationConfig(device=device)  # refuses a malformed name before anything is stored
    policy_bytes = _policy_bytes(_text(raw, "policy"))
    parsed = None if policy_bytes is None else parse_yaml(policy_bytes, "policy")
    if parsed is not None and not isinstance(parsed, dict):
        raise InputError("policy: expected a mapping with 'checks:' at the top level")
    plans = [
        plan_validation(ws, model, name, baseline, parsed, tuple(slices), calibration)
        for name in datasets
    ]
    check_device(plans[0], device)
    policy = None if policy_bytes is None else _store_policy(ws, policy_bytes)
    out = []
    for plan in plans:
        out.append(
            {
                "model": plan.model.ref,
                "dataset": plan.dataset.ref,
                "baseline": plan.baseline.ref if plan.baseline else None,
                "policy": policy,
                "slices": slices,
                "explore": explore,
                "reuse": reuse,
                "calibration": plan.calibration.ref if plan.calibration else None,
                "false_alarm_rate": float(rate),
                "device": device,
            }
        )
    return out


def _config(req: dict[str, Any]) -> ValidationConfig:
    return ValidationConfig(
        explore=bool(req.get("explore", True)),
        false_alarm_rate=float(req.get("false_alarm_rate", 0.01)),
        device=str(req.get("device", "cpu")),
        reuse=bool(req.get("reuse", True)),
    )


def submit(ws: Workspace, raw: Any, created_by: str, enqueue: Callable[[str], None]) -> list[Job]:
    """Check the request, record one queued run per dataset, each with the job that hands it to
    a worker, and enqueue them. The run is in the list of runs from this moment."""
    jobs = []
    for request in check_request(ws, raw):
        run_id = uuid.uuid4().hex
        ws.catalog.create_run(
            status="queued",
            id=run_id,
            model_id=get_model(ws, request["model"]).id,
            dataset_id=get_dataset(ws, request["dataset"]).id,
            baseline_model_id=None
            if request["baseline"] is None
            else get_model(ws, request["baseline"]).id,
            config=_config(request).to_dict(),
            environment={},
            run_dir=str(ws.files.run_dir(run_id)),
            origin="web",
        )
        jobs.append(ws.jobs.create(request, created_by, run_id))
    for job in jobs:
        enqueue(job.id)
    return jobs


def cancel(ws: Workspace, job_id: str) -> Job:
    """Ask a web run to stop: a queued one is cancelled at once (its run too), a running one at
    its next batch."""
    job = ws.jobs.request_cancel(job_id)
    if job.status == "cancelled":
        _settle_queued_run(ws, job.run_id, "cancelled", "cancelled before it started")
    return job


def _settle_queued_run(ws: Workspace, run_id: str | None, status: str, reason: str) -> None:
    """End a run that never started (its job was cancelled or failed first)."""
    if run_id is None:
        return
    try:
        if ws.catalog.get_run(run_id).status == "queued":
            ws.catalog.finish_run(run_id, status, error=reason[:2000])
    except (NotFoundError, InputError):  # gone, or another process settled it meanwhile
        return


class _Throttle:
    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.last = 0.0

    def due(self) -> bool:
        t = time.monotonic()
        if t - self.last < self.every_s:
            return False
        self.last = t
        return True


def execute_job(ws: Workspace, job_id: str) -> None:
    """Run one queued job to its end: finished, failed (with the reason) or cancelled."""
    if not ws.jobs.start(job_id, this_holder()):
        return  # cancelled while queued, or already taken by another worker
    heartbeat = Heartbeat(ws.catalog, renew=renew_jobs).start()
    heartbeat.hold(job_id)
    try:
        _execute(ws, job_id)
    finally:
        heartbeat.stop()


def recover_jobs(ws: Workspace, enqueue: Callable[[str], None]) -> tuple[list[Job], list[Job]]:
    """Jobs whose worker died: put back on the queue once, failed with the reason after that."""
    requeued, failed = expire_job_leases(ws.catalog)
    for job in requeued:
        enqueue(job.id)
    for job in failed:
        _settle_queued_run(ws, job.run_id, "failed", job.error or "its worker stopped")
    return requeued, failed


def _resumable(ws: Workspace, run_id: str | None) -> bool:
    """Whether a retried job's run was interrupted and knows what it was asked."""
    if run_id is None:
        return False
    expire_leases(ws.catalog)  # the dead worker's run is interrupted by now
    run = ws.catalog.get_run(run_id)
    return run.status == "interrupted" and (Path(run.run_dir) / INVOCATION).exists()


def _execute(ws: Workspace, job_id: str) -> None:
    job = ws.jobs.get(job_id)
    req = job.request
    done = 0
    progress, cancel = _Throttle(PROGRESS_EVERY_S), _Throttle(CANCEL_CHECK_EVERY_S)
    cancelled = False

    def on_start(total: int) -> None:
        ws.jobs.update(job_id, progress_total=total)

    def on_progress(n: int) -> None:
        nonlocal done
        done += n
        if progress.due():
            ws.jobs.update(job_id, progress_done=done)

    def should_cancel() -> bool:
        nonlocal cancelled
        if not cancelled and cancel.due():
            cancelled = ws.jobs.cancel_requested(job_id)
        return cancelled

    def on_run(run_id: str) -> None:
        """The job points at its run from the start (the first run of the validation, which a
        retry resumes); at the end, at the candidate's run."""
        if ws.jobs.get(job_id).run_id is None:
            ws.jobs.update(job_id, run_id=run_id)

    try:
        if _resumable(ws, job.run_id):
            assert job.run_id is not None
            # A retry after the worker died: the same run continues from its checkpoint.
            outcome = resume_validation(
                ws, job.run_id, None, on_start, on_progress, should_cancel, on_run
            )
        else:
            queued = job.run_id is not None and ws.catalog.get_run(job.run_id).status == "queued"
            outcome = validate(
                ws,
                req["model"],
                req["dataset"],
                config=_config(req),
                origin="web",
                queued_run=job.run_id if queued else None,
                on_start=on_start,
                on_progress=on_progress,
                should_cancel=should_cancel,
                baseline=req.get("baseline"),
                policy=req.get("policy"),
                slices=tuple(req.get("slices", [])),
                on_run=on_run,
                calibration=req.get("calibration"),
            )
    except RunCancelledError:
        ws.jobs.update(job_id, status="cancelled", finished_at=now(), progress_done=done)
        _settle_queued_run(ws, job.run_id, "cancelled", "cancelled before it started")
        return
    except AssayError as exc:
        # Web clients read the reason: none of the server's paths in it.
        reason = for_clients(ws, str(exc), 2000)
        ws.jobs.update(job_id, status="failed", finished_at=now(), error=reason)
        _settle_queued_run(ws, job.run_id, "failed", reason)
        return
    except Exception as exc:
        reason = for_clients(ws, f"{type(exc).__name__}: {exc}", 2000)
        ws.jobs.update(job_id, status="failed", finished_at=now(), error=reason)
        _settle_queued_run(ws, job.run_id, "failed", reason)
        raise
    ws.jobs.update(
        job_id,
        status="finished",
        finished_at=now(),
        progress_done=outcome.result.n_items,
        run_id=outcome.result.run_id,
        verdict=outcome.verdict_status,
    )
