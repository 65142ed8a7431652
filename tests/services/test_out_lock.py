"""``--out`` is held by one run from the check of what it holds to its last file: a review
started a failing and a passing validation into one folder together; both were let through,
and the failing run's folder ended with the passing run's verdict.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.out_folder import OutLock
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.models import passthrough_onnx

CONFIG = ValidationConfig(profile=False, explore=False)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    labels = np.where(p > 0.5, "bad", "good")
    pq.write_table(pa.table({"a": p, "b": 1 - p, "label": labels}), tmp_path / "t.parquet")
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "t.parquet")
    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["a", "b"]},
            "output": {"name": "probabilities"}}  # fmt: skip
    register_model(ws, "m", passthrough_onnx(tmp_path / "m.onnx", 2), spec)
    return ws


def test_a_folder_another_run_is_writing_is_refused_and_nothing_is_recorded(
    ws: Workspace, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with OutLock(out), pytest.raises(InputError, match="being written by another run"):
        validate(ws, "m", "t", out=out, config=CONFIG)
    assert ws.catalog.list_runs() == [] and list(out.iterdir()) == []
    # Released when the holder is done: the next run writes its files.
    outcome = validate(ws, "m", "t", out=out, config=CONFIG)
    assert (out / "result.json").exists() and outcome.out_dir == out


def test_the_hold_of_a_killed_process_ends_with_it(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from assay.services.out_folder import OutLock\n"
         f"with OutLock(Path({str(out)!r})):\n    print('held', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="being written by another run"):
            validate(ws, "m", "t", out=out, config=CONFIG)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    deadline = time.monotonic() + 10
    while True:  # the kernel drops the lock with the process
        try:
            validate(ws, "m", "t", out=out, config=CONFIG)
            break
        except InputError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert (out / "verdict.md").exists()


def test_a_run_started_into_the_folder_while_another_writes_there_is_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    """The review's race made certain: a second validation starts into the folder while the
    first is being judged (the folder still empty). It was let through, and whichever finished
    last left its verdict in the other's folder."""
    out = tmp_path / "out"
    refused: list[str] = []

    def second_run(stage: str) -> None:
        if stage.startswith("finalising") and not refused:
            try:
                validate(ws, "m", "t", out=out, config=CONFIG)
                refused.append("let through")
            except InputError as exc:
                refused.append(str(exc))

    validate(ws, "m", "t", out=out, config=CONFIG, on_stage=second_run)
    assert len(refused) == 1 and "being written by another run" in refused[0], refused
    assert len(ws.catalog.list_runs()) == 1


def test_a_comparison_does_not_write_into_a_folder_holding_a_run_or_held_by_one(
    ws: Workspace, tmp_path: Path
) -> None:
    """A review: `assay compare --out` wrote its FAIL verdict.md into a folder holding a passing
    validation's files (and into one a validation was writing): the folder mixed two runs."""
    from assay.services.compare_runs import compare_runs

    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["b", "a"]},
            "output": {"name": "probabilities"}}  # fmt: skip
    register_model(ws, "other", passthrough_onnx(tmp_path / "other.onnx", 2), spec)
    out = tmp_path / "out"
    a = validate(ws, "m", "t", out=out, config=CONFIG)
    b = validate(ws, "other", "t", config=CONFIG)
    before = (out / "verdict.md").read_text()
    with pytest.raises(InputError, match="already holds another run's files"):
        compare_runs(ws, a.result.run_id, b.result.run_id, out=out)
    assert (out / "verdict.md").read_text() == before
    with OutLock(out), pytest.raises(InputError, match="being written by another run"):
        compare_runs(ws, a.result.run_id, b.result.run_id, out=out, overwrite=True)
    compared = compare_runs(ws, a.result.run_id, b.result.run_id, out=out, overwrite=True)
    assert compared.files["verdict.md"] == out / "verdict.md"
    assert not (out / "predictions.parquet").exists()  # the validation's files went first
    # Its own folder in the store: the same pair compared again is simply written anew.
    compare_runs(ws, a.result.run_id, b.result.run_id)
    compare_runs(ws, a.result.run_id, b.result.run_id)


def test_an_audit_does_not_copy_into_a_folder_a_run_is_writing(tmp_path: Path) -> None:
    from assay.services.audit_files import copy_out

    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "leakage.json").write_text("{}")
    out = tmp_path / "out"
    with OutLock(out), pytest.raises(InputError, match="being written by another run"):
        copy_out(tmp_path / "audit", ["leakage.json"], out)
    copy_out(tmp_path / "audit", ["leakage.json"], out)
    assert (out / "leakage.json").read_text() == "{}"


def test_a_history_does_not_write_into_a_folder_a_run_is_writing(
    ws: Workspace, tmp_path: Path
) -> None:
    """`assay history --out` wrote without the hold the validations and audits take (noted on
    2026-11-30): its files landed in a folder a validation was writing."""
    from assay.services.history import item_history, write_history

    validate(ws, "m", "t", config=CONFIG)
    history = item_history(ws, "t")
    out = tmp_path / "out"
    with OutLock(out), pytest.raises(InputError, match="being written by another run"):
        write_history(history, out)
    assert not (out / "history.json").exists()
    assert write_history(history, out)["history.json"].is_file()
