"""Resume in process, with the hostile cases: a model whose scores are not probabilities for some
items, items whose features are NaN, items without an expert label, a stop part-way (Ctrl-C).
The unjudged items, their reasons and every metric after the resume equal an uninterrupted run's;
a crafted checkpoint stops the resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.validation import resume_validation, validate
from assay.services.workspace import Workspace
from assay.store.checkpoints import recorded_checkpoint
from tests.models import passthrough_onnx

ROWS = 5000


def _store(tmp: Path, name: str) -> Workspace:
    rng = np.random.default_rng(1)
    bad = rng.uniform(size=ROWS)
    labels = np.where(rng.uniform(size=ROWS) < bad, "bad", "good").astype(object)
    bad[::7] = -0.5  # the model's scores are not probabilities for these items
    bad[::13] = np.nan  # these cannot even be given to the model
    labels[::11] = None  # and these have no expert label
    table = tmp / f"{name}.parquet"
    pq.write_table(pa.table({"a": bad, "b": 1 - bad, "label": labels}), table)
    ws = Workspace.open(tmp / name)
    register_dataset(ws, "t", table)
    spec = {
        "labels": ["bad", "good"],
        "input": {"kind": "tabular", "columns": ["a", "b"]},
        "output": {"name": "probabilities"},
    }
    register_model(ws, "m", passthrough_onnx(tmp / f"{name}.onnx", 2), spec)
    return ws


CONFIG = ValidationConfig(batch_size=256, checkpoint_every_s=0, profile=False)


def _interrupted(ws: Workspace, after_batches: int) -> str:
    seen = 0

    def stop_part_way(n: int) -> None:
        nonlocal seen
        seen += 1
        if seen == after_batches:
            raise KeyboardInterrupt  # what Ctrl-C or SIGTERM does in the CLI

    with pytest.raises(KeyboardInterrupt):
        validate(ws, "m", "t", config=CONFIG, on_progress=stop_part_way)
    (run,) = ws.catalog.list_runs()
    assert run.status == "interrupted"
    return run.id


def test_unjudged_items_and_metrics_after_a_resume_equal_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    ws = _store(tmp_path, "resumed")
    run_id = _interrupted(ws, after_batches=7)
    resumed = resume_validation(ws, run_id)
    whole_ws = _store(tmp_path, "whole")
    whole = validate(whole_ws, "m", "t", config=CONFIG)

    got, want = resumed.result, whole.result
    assert resumed.result.run_id == run_id and got.n_items == ROWS
    assert got.n_failed == want.n_failed > 0
    assert got.failures == want.failures
    assert set(got.failures["by_reason"]) == {
        "model scores are not probabilities (non-finite, negative, or not summing to 1)",
        "missing value in feature column 'a'",
        "no expert label",
    }
    assert got.confusion_matrix == want.confusion_matrix
    for name, value in want.metrics.items():
        assert got.metrics[name].value == value.value, name
        assert (got.metrics[name].ci_low, got.metrics[name].ci_high) == (
            value.ci_low,
            value.ci_high,
        ), name
    assert got.verdict is not None and want.verdict is not None
    assert got.verdict.status == want.verdict.status
    a = pq.read_table(resumed.run_dir / "predictions.parquet")
    b = pq.read_table(whole.run_dir / "predictions.parquet")
    assert a.num_rows == ROWS and a.equals(b)
    ws.close()
    whole_ws.close()


def test_a_crafted_checkpoint_stops_the_resume_and_keeps_the_run_interrupted(
    tmp_path: Path,
) -> None:
    ws = _store(tmp_path, "crafted")
    run_id = _interrupted(ws, after_batches=3)
    run = ws.catalog.get_run(run_id)
    name = recorded_checkpoint(run.artifact_sha256 or {})
    assert name is not None
    path = Path(run.run_dir) / name
    doc = json.loads(path.read_text())
    doc["tasks"][0]["states"][0] = {"c": "os:system", "v": {"command": "echo pwned"}}
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="has changed since it was written"):
        resume_validation(ws, run_id)
    assert ws.catalog.get_run(run_id).status == "interrupted"  # nothing claimed, nothing lost
    ws.close()


def test_an_edited_invocation_or_part_stops_the_resume(tmp_path: Path) -> None:
    """From a review: `--resume` took its policy and model from invocation.json and joined the
    committed parts unread, so a run killed while failing resumed as PASS (a looser policy, or
    every item made right in a part). Both are checked against what the catalog recorded."""
    ws = _store(tmp_path, "edited")
    run_id = _interrupted(ws, after_batches=3)
    run_dir = Path(ws.catalog.get_run(run_id).run_dir)
    invocation = run_dir / "invocation.json"
    kept = invocation.read_bytes()
    doc = json.loads(kept)
    doc["policy"] = {"checks": ["accuracy >= 0.01"]}
    invocation.write_text(json.dumps(doc, indent=2))
    with pytest.raises(InputError, match=r"invocation.json of run .* has changed since"):
        resume_validation(ws, run_id)
    invocation.write_bytes(kept)

    part = run_dir / "predictions.parquet.parts" / "00000.parquet"
    table = pq.read_table(part)
    pq.write_table(table.set_column(3, "correct", pa.array([True] * table.num_rows)), part)
    with pytest.raises(InputError, match="has changed since it was committed"):
        resume_validation(ws, run_id)
    assert ws.catalog.get_run(run_id).status == "interrupted"
    ws.close()


def test_a_run_started_under_other_numerics_is_not_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outputs before the checkpoint came from other runtime versions (an upgrade in between):
    finishing the run here would mix two machines' answers under one run."""
    from assay.services import environment

    ws = _store(tmp_path, "upgraded")
    with monkeypatch.context() as m:
        m.setattr(environment, "NUMERICS_REVISION", environment.NUMERICS_REVISION - 1)
        run_id = _interrupted(ws, after_batches=3)
    with pytest.raises(InputError, match="other numerics"):
        resume_validation(ws, run_id)
    assert ws.catalog.get_run(run_id).status == "interrupted"
    ws.close()


def test_a_run_stopped_after_its_pass_resumes_from_its_first_item(tmp_path: Path) -> None:
    """From a review: a run stopped after its pass (during the explorations or the report)
    still had its checkpoint recorded in the catalog while the file was gone, so `--resume`
    refused it for good ('checkpoint ... cannot be used'), and a web job's retry failed. The
    catalog forgets the checkpoint once the pass is whole; the resume runs the pass again."""
    ws = _store(tmp_path, "late")

    def stop_when_finalising(stage: str) -> None:
        if stage.startswith("finalising"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate(ws, "m", "t", config=CONFIG, on_stage=stop_when_finalising)
    (run,) = ws.catalog.list_runs()
    assert run.status == "interrupted"
    assert recorded_checkpoint(run.artifact_sha256 or {}) is None
    resumed = resume_validation(ws, run.id)
    whole = validate(_store(tmp_path, "whole"), "m", "t", config=CONFIG)
    assert resumed.result.run_id == run.id and resumed.result.n_items == ROWS
    assert resumed.result.confusion_matrix == whole.result.confusion_matrix
    ws.close()


def test_a_resumed_run_is_judged_by_its_policy_file_under_its_name(tmp_path: Path) -> None:
    """A resumed run was judged by the mapping its invocation kept: its verdict named the policy
    'policy' (an uninterrupted run's, 'strict.yaml') and lost the lines of its rules. The file
    is read once and kept, so the two verdicts are one. Editing the file after the start changes
    nothing: the run is judged by what it started with."""
    policy = tmp_path / "strict.yaml"
    policy.write_text("max_unjudged: 50%\nchecks:\n  - accuracy >= 0.99\n")
    verdicts = []
    for name in ("resumed", "whole"):
        ws = _store(tmp_path, name)
        if name == "resumed":
            seen = 0

            def stop_part_way(n: int) -> None:
                nonlocal seen
                seen += 1
                if seen == 7:
                    raise KeyboardInterrupt

            with pytest.raises(KeyboardInterrupt):
                validate(ws, "m", "t", config=CONFIG, policy=policy, on_progress=stop_part_way)
            (run,) = ws.catalog.list_runs()
            policy.write_text("checks:\n  - accuracy >= 0.01\n")  # too late to matter
            outcome = resume_validation(ws, run.id)
            policy.write_text("max_unjudged: 50%\nchecks:\n  - accuracy >= 0.99\n")
        else:
            outcome = validate(ws, "m", "t", config=CONFIG, policy=policy)
        assert outcome.result.verdict is not None
        verdicts.append(outcome.result.verdict.to_dict())
        ws.close()
    resumed, whole = verdicts
    assert resumed["policy"]["source"] == whole["policy"]["source"] == "strict.yaml"
    assert resumed == whole and resumed["status"] == "fail"
