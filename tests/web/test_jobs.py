"""Queued validations: the worker side (execute_job) and the token commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.cli.main import main
from assay.services.jobs import execute_job, submit
from assay.services.models import register_model
from assay.services.workspace import Workspace
from assay.store.jobs import JobStore
from tests.web.conftest import Web


def test_a_running_validation_stops_at_its_next_batch_when_cancelled(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.open(web.home)
    register_model(ws, "bright", web.onnx, web.spec)
    (job,) = submit(ws, {"model": "bright", "datasets": ["scans"]}, "t", lambda _: None)
    # The cancel arrives after the worker took the job: it must stop at the first batch check.
    original = JobStore.start

    def start_then_cancel(self: JobStore, job_id: str, holder: str) -> bool:
        taken = original(self, job_id, holder)
        self.update(job_id, cancel_requested=True)
        return taken

    monkeypatch.setattr(JobStore, "start", start_then_cancel)
    execute_job(ws, job.id)
    done = ws.jobs.get(job.id)
    assert done.status == "cancelled"
    (run,) = ws.catalog.list_runs()
    assert run.status == "cancelled"  # the catalog's run is closed too, never left "running"
    assert done.run_id == run.id  # the job points at its run from the start
    ws.close()


def test_a_failing_job_records_its_reason(web: Web) -> None:
    ws = Workspace.open(web.home)
    register_model(ws, "bright", web.onnx, web.spec)
    (job,) = submit(ws, {"model": "bright", "datasets": ["scans"]}, "t", lambda _: None)
    for image in (web.home.parent / "scans" / "ok").glob("*.png"):
        image.write_bytes(b"changed")  # every ok image now differs from its registered digest
    execute_job(ws, job.id)
    done = ws.jobs.get(job.id)
    assert done.status == "finished"  # unreadable items are reported, never a crash
    assert done.progress_done == 40
    # Half the items not judged: the run records why, item by item, and the verdict fails on it.
    assert done.verdict == "fail" and done.run_id is not None
    result = json.loads((Path(ws.catalog.get_run(done.run_id).run_dir) / "result.json").read_text())
    assert result["failures"]["by_reason"] == {
        "image file changed since the dataset was registered": 20
    }
    coverage = result["verdict"]["checks"][0]
    assert coverage["status"] == "fail" and "20 image file changed" in coverage["reason"]
    ws.close()


def test_token_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = str(tmp_path / "home")
    assert main(["token", "create", "line-3", "--role", "validator", "--home", home]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    ws = Workspace.open(home)
    token = ws.access.check_token(secret)
    assert token is not None and token.role == "validator" and token.may("viewer")
    assert not token.may("admin")
    assert secret not in (tmp_path / "home" / "catalog.db").read_bytes().decode(errors="ignore")
    assert main(["token", "create", "line-3", "--home", home]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["token", "create", "x", "--role", "root", "--home", home]) == 2
    assert main(["token", "list", "--home", home]) == 0
    assert "line-3" in capsys.readouterr().out
    assert main(["token", "revoke", "line-3", "--home", home]) == 0
    assert ws.access.check_token(secret) is None
    assert main(["token", "revoke", "nobody", "--home", home]) == 2
    ws.close()
