"""Killed commands leave nothing stuck: real processes killed with SIGKILL and SIGTERM.

A validation killed mid-run becomes ``interrupted`` (its holder is gone) for the next reader; a
SIGTERM is handled like Ctrl-C; no ``predictions.parquet`` without a footer is left; a killed
``dataset add`` leaves work in progress that the next command removes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.cli.main import main
from assay.services.workspace import Workspace
from assay.store.checkpoints import INVOCATION, recorded_checkpoint
from tests.models import fit_logistic, tabular_onnx, write_spec

ROWS = 600_000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 4)).astype(np.float32)
    y = np.where(x[:, 0] + x[:, 1] > 0, "bad", "good")
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "d": x[:, 3], "label": y})
    pq.write_table(table, tmp / "t.parquet")
    onnx = tabular_onnx(fit_logistic(x[:2000], y[:2000]), 4, tmp / "m.onnx")
    spec = write_spec(
        tmp / "m.yaml", labels=["bad", "good"], input={"kind": "tabular", "columns": list("abcd")}
    )
    return {"table": tmp / "t.parquet", "onnx": onnx, "spec": spec}


def assay_process(home: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "assay.cli.main", *args, "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def home(tmp_path: Path, big: dict[str, Path]) -> Path:
    home = tmp_path / "home"
    assert main(["dataset", "add", "t", str(big["table"]), "--home", str(home)]) == 0
    assert (
        main(
            ["model", "add", "m", str(big["onnx"]), "--spec", str(big["spec"]), "--home", str(home)]
        )
        == 0
    )
    return home


def running_run(home: Path) -> bool:
    ws = Workspace.open(home)
    try:
        return any(r.status == "running" for r in ws.catalog.list_runs())
    finally:
        ws.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_validation_is_interrupted_for_the_next_reader(
    home: Path, sig: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = assay_process(
        home, "validate", "--model", "m", "--dataset", "t", "--no-profile", "--batch-size", "2048"
    )
    wait_for(lambda: running_run(home), "the run to start")
    time.sleep(0.5)
    proc.send_signal(sig)
    code = proc.wait(60)
    if sig == signal.SIGTERM:
        assert code == 130  # handled like Ctrl-C
    capsys.readouterr()
    assert main(["run", "list", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "interrupted" in out and "running" not in out
    ws = Workspace.open(home)
    (run,) = ws.catalog.list_runs()
    assert run.status == "interrupted" and run.finished_at is not None
    if sig == signal.SIGKILL:
        assert run.error is not None and "its process" in run.error and "is gone" in run.error
    else:
        assert run.error is not None and "stopped by a signal" in run.error
        assert not (Path(run.run_dir) / "predictions.parquet.partial").exists()
    # Never a predictions file without its footer under the real name: killed in the pass,
    # none; killed after it (a fast machine finished the pass within the half second), whole.
    final = Path(run.run_dir) / "predictions.parquet"
    if final.exists():
        assert pq.ParquetFile(final).metadata.num_rows == ROWS
    ws.close()


def test_a_stale_heartbeat_interrupts_a_run_of_another_host(home: Path) -> None:
    """A run held by a process on another machine is judged by its heartbeat alone."""
    from datetime import timedelta

    from assay.store.catalog import now
    from assay.store.leases import expire_leases

    ws = Workspace.open(home)
    (m,), (d,) = ws.catalog.list_models(), ws.catalog.list_datasets()
    run = ws.catalog.create_run(
        id="f" * 32,
        model_id=m.id,
        dataset_id=d.id,
        config={},
        environment={},
        run_dir="/r",
        holder="another-host:4242",
    )
    assert expire_leases(ws.catalog) == []  # fresh heartbeat: still running
    (expired,) = expire_leases(ws.catalog, at=now() + timedelta(seconds=61))
    assert expired.id == run.id and expired.status == "interrupted"
    assert "no heartbeat from another-host:4242" in (expired.error or "")
    ws.close()


def test_a_killed_dataset_add_leaves_nothing_for_long(tmp_path: Path, big: dict[str, Path]) -> None:
    home = tmp_path / "home"
    Workspace.open(home).close()
    proc = assay_process(home, "dataset", "add", "t", str(big["table"]))
    wait_for(lambda: any((home / "tmp").iterdir()), "work in progress")
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert any((home / "tmp").iterdir())  # what the killed process left
    ws = Workspace.open(home)  # the next command
    assert list((home / "tmp").iterdir()) == []
    assert ws.catalog.list_datasets() == []
    ws.close()


def test_a_job_whose_worker_is_killed_is_retried_once_then_failed(home: Path) -> None:
    """kill -9 of the worker mid-job: the next worker requeues the job and finishes it; the
    first attempt's run is interrupted, never left running."""
    from assay.services.jobs import submit
    from assay.services.runs import list_runs
    from assay.store.leases import expire_job_leases
    from assay.worker.queue import open_queue

    ws = Workspace.open(home)
    queue = open_queue(home)
    (job,) = submit(ws, {"model": "m", "datasets": ["t"], "explore": False}, "t", queue.enqueue)
    worker = assay_process(home, "worker")
    try:
        first_run = job.run_id  # the job points at its run from its submission
        assert first_run is not None and ws.catalog.get_run(first_run).status == "queued"
        # Killed once its run knows what it was asked (before that, a retry starts afresh).
        invocation = Path(ws.catalog.get_run(first_run).run_dir) / INVOCATION
        wait_for(invocation.exists, "the job's run")
        time.sleep(0.5)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
        assert ws.jobs.get(job.id).status == "running"  # what the dead worker left
        worker = assay_process(home, "worker")  # a new worker recovers it at start
        wait_for(lambda: ws.jobs.get(job.id).status in ("finished", "failed"), "the retry", 180)
    finally:
        worker.kill()
        worker.wait(30)
    done = ws.jobs.get(job.id)
    assert (done.status, done.attempts) == ("finished", 2), done.error
    # The retry resumed the run the dead worker held: one run, finished, with every item.
    runs = list_runs(ws)
    assert len(runs) == 1, [(r.id, r.status, r.error, r.origin) for r in runs]
    (run,) = runs
    assert (run.id, run.status, run.n_items) == (done.run_id, "finished", ROWS)
    assert run.id == first_run
    # The retry is the job's history, not an error of the run it finished (the run page
    # showed 'retried: its worker stopped' in red).
    from assay.services.runs import run_row

    assert run_row(ws, run.id).error is None, run_row(ws, run.id).error

    # A job whose worker died on its last attempt fails with the reason instead.
    (job2,) = submit(ws, {"model": "m", "datasets": ["t"], "explore": False}, "t", lambda _: None)
    assert ws.jobs.start(job2.id, "this-host-never:1")
    ws.jobs.update(job2.id, attempts=2)
    from datetime import timedelta

    from assay.store.catalog import now

    requeued, failed = expire_job_leases(ws.catalog, at=now() + timedelta(seconds=61))
    assert requeued == [] and [j.id for j in failed] == [job2.id]
    assert "its worker stopped" in (ws.jobs.get(job2.id).error or "")
    assert "its worker stopped" in (run_row(ws, job2.run_id).error or "")  # failed: shown
    # Queued again after its worker stopped, the job's run shows no error (it goes on).
    (job3,) = submit(ws, {"model": "m", "datasets": ["t"], "explore": False}, "t", lambda _: None)
    assert ws.jobs.start(job3.id, "this-host-never:1")
    requeued, _ = expire_job_leases(ws.catalog, at=now() + timedelta(seconds=61))
    assert [j.id for j in requeued] == [job3.id] and job3.run_id is not None
    assert ws.jobs.get(job3.id).error is not None and run_row(ws, job3.run_id).error is None
    ws.close()


def _checkpointed(home: Path) -> bool:
    return any(p.stat().st_size > 0 for p in (home / "runs").glob("*/checkpoint-*.json"))


def _comparable(value: object) -> object:
    """A result.json without what differs between any two runs (ids, clocks, timings)."""
    volatile = {"run_id", "timings", "started_at", "finished_at", "environment", "profile"}
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_validation_resumes_to_the_same_result(
    home: Path,
    big: dict[str, Path],
    sig: signal.Signals,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed mid-pass (candidate and baseline in one pass), resumed from its checkpoint: every
    count, metric, verdict and prediction equals an uninterrupted run's."""
    import json

    flags = ["--no-profile", "--batch-size", "4096", "--checkpoint-every", "0"]
    whole = home.parent / "whole-home"  # the same validation, never interrupted

    def add(where: Path, *args: str) -> None:
        assert main([*args, "--home", str(where)]) == 0

    add(whole, "dataset", "add", "t", str(big["table"]))
    add(whole, "model", "add", "m", str(big["onnx"]), "--spec", str(big["spec"]))
    # The baseline: the same weights with another decision threshold (a twin, answering the
    # same, would be refused).
    b_spec = home.parent / "b.yaml"
    b_spec.write_text(big["spec"].read_text() + "threshold: 0.6\n")
    for where in (home, whole):
        add(where, "model", "add", "b", str(big["onnx"]), "--spec", str(b_spec))
    args = ["validate", "--model", "m", "--dataset", "t", "--baseline", "b", *flags]
    proc = assay_process(home, *args)
    wait_for(lambda: _checkpointed(home), "a checkpoint")
    time.sleep(0.3)
    proc.send_signal(sig)
    proc.wait(60)
    capsys.readouterr()
    ws = Workspace.open(home)
    from assay.store.leases import expire_leases

    expire_leases(ws.catalog)
    runs = ws.catalog.list_runs()
    assert sorted(r.status for r in runs) == ["interrupted", "interrupted"]
    model_ids = {m.name: m.id for m in ws.catalog.list_models()}
    (cand,) = [r for r in runs if r.model_id == model_ids["m"]]
    recorded = recorded_checkpoint(cand.artifact_sha256 or {})
    assert recorded is not None  # the catalog, not the folder, says which checkpoint holds
    checkpoint = json.loads((Path(cand.run_dir) / recorded).read_text())
    assert 0 < checkpoint["offset"] < ROWS
    ws.close()

    # The resumed run is the interrupted one, continued; then the same validation uninterrupted.
    from assay.engines.local import LocalEngine

    started_at: list[int] = []
    real_run = LocalEngine.run

    def spy(engine: LocalEngine, job: Any) -> Any:
        started_at.append(0 if job.start is None else job.start[0].n_items)
        return real_run(engine, job)

    monkeypatch.setattr(LocalEngine, "run", spy)
    assert main(["validate", "--resume", cand.id[:12], "--home", str(home)]) in (0, 1)
    assert started_at == [checkpoint["offset"]]  # continued, not started over
    assert main([*args, "--home", str(whole), "--out", str(whole / "out")]) in (0, 1)
    capsys.readouterr()
    ws = Workspace.open(home)
    resumed = ws.catalog.get_run(cand.id)
    assert resumed.status == "finished" and resumed.n_items == ROWS
    assert not list(Path(cand.run_dir).glob("checkpoint-*"))
    assert not (Path(cand.run_dir) / "predictions.parquet.parts").exists()
    ws.close()
    got = json.loads((Path(cand.run_dir) / "result.json").read_text())
    want = json.loads((whole / "out" / "result.json").read_text())
    assert got["n_items"] == ROWS and got["verdict"]["status"] == want["verdict"]["status"]
    assert got["confusion_matrix"] == want["confusion_matrix"]
    assert _comparable(got) == _comparable(want)
    resumed_predictions = pq.read_table(Path(cand.run_dir) / "predictions.parquet")
    whole_predictions = pq.read_table(whole / "out" / "predictions.parquet")
    assert resumed_predictions.num_rows == ROWS
    assert resumed_predictions.equals(whole_predictions)


def test_only_an_interrupted_run_resumes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(
        [
            "validate",
            "--model",
            "m",
            "--dataset",
            "t",
            "--no-profile",
            "--no-explore",
            "--home",
            str(home),
        ]
    ) in (0, 1)
    ws = Workspace.open(home)
    (run,) = ws.catalog.list_runs()
    ws.close()
    capsys.readouterr()
    assert main(["validate", "--resume", run.id, "--home", str(home)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is finished: only an interrupted run can be resumed" in err
    assert main(["validate", "--resume", run.id, "--model", "m", "--home", str(home)]) == 2
    assert "drop --model" in capsys.readouterr().err
