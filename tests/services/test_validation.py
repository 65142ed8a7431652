"""validate() end to end on small real files: outputs, failure accounting, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from assay.core.errors import InputError, NotFoundError
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.datasets.test_readers import make_image
from tests.models import fit_logistic, tabular_onnx, write_spec


@pytest.fixture
def table_setup(tmp_path: Path, workspace: Workspace) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 2))
    y = np.where(x[:, 0] - x[:, 1] + rng.normal(0, 0.7, 500) > 0, "defect", "ok")
    csv = tmp_path / "press.csv"
    lines = ["Torque [Nm],speed,label,line"]
    for i, (row, label) in enumerate(zip(x, y, strict=True)):
        a = "" if i in (3, 77) else f"{row[0]:.6f}"  # two rows with a missing feature
        lines.append(f"{a},{row[1]:.6f},{label},L{i % 2}")
    csv.write_text("\n".join(lines) + "\n")
    model = fit_logistic(x.astype(np.float32), y)
    onnx = tabular_onnx(model, 2, tmp_path / "press.onnx")
    spec = write_spec(
        tmp_path / "press.yaml",
        labels=["defect", "ok"],
        input={"kind": "tabular", "columns": ["Torque [Nm]", "speed"]},
    )
    register_dataset(workspace, "press", csv)
    register_model(workspace, "press-model", onnx, spec)
    return {
        "ws": workspace,
        "tmp": tmp_path,
        "x": x,
        "y": y,
        "onnx": onnx,
        "spec": spec,
        "csv": csv,
    }


def test_validation_writes_the_three_artifacts_with_the_promised_fields(
    table_setup: dict[str, Any],
) -> None:
    out = table_setup["tmp"] / "runs" / "first"
    outcome = validate(table_setup["ws"], "press-model", "press", out)
    assert {p.name for p in out.iterdir()} == {
        "report.html",
        "result.json",
        "predictions.parquet",
        "verdict.md",
        "junit.xml",
        "doubtful_labels.parquet",
    }
    result = json.loads((out / "result.json").read_text())
    for key in (
        "run_id",
        "model",
        "dataset",
        "n_items",
        "n_failed",
        "labels",
        "metrics",
        "confusion_matrix",
    ):
        assert key in result
    assert result["model"]["name"] == "press-model" and len(result["model"]["version"]) == 64
    assert result["n_items"] == 500 and result["n_failed"] == 2
    assert result["n_items"] == sum(map(sum, result["confusion_matrix"])) + result["n_failed"]
    assert set(result["metrics"]["per_class"]["defect"]) >= {"precision", "recall", "f1", "support"}
    assert set(result["metrics"]["accuracy"]) >= {"value", "ci_low", "ci_high"}
    preds = pq.read_table(out / "predictions.parquet")
    assert preds.column_names == [
        "item_id",
        "label",
        "predicted",
        "correct",
        "score_defect",
        "score_ok",
        "error",
    ]
    errors = {r["item_id"]: r["error"] for r in preds.to_pylist() if r["error"]}
    assert errors == {
        "3": "missing value in feature column 'Torque [Nm]'",
        "77": "missing value in feature column 'Torque [Nm]'",
    }
    run = table_setup["ws"].catalog.get_run(outcome.result.run_id)
    assert run.status == "finished" and run.n_items == 500 and run.n_failed == 2
    assert run.environment["packages"]["onnxruntime"]


def test_dataset_labels_the_model_does_not_cover_are_refused_before_any_run(
    table_setup: dict[str, Any],
) -> None:
    ws, tmp = table_setup["ws"], table_setup["tmp"]
    spec = write_spec(
        tmp / "narrow.yaml",
        labels=["defect", "fine"],
        input={"kind": "tabular", "columns": ["Torque [Nm]", "speed"]},
    )
    register_model(ws, "narrow", table_setup["onnx"], spec)
    with pytest.raises(
        InputError,
        match=r"labels \['ok'\] that the model's labels \['defect', 'fine'\] do not cover",
    ):
        validate(ws, "narrow", "press")
    assert ws.catalog.list_runs() == []


def test_unknown_model_dataset_and_version_are_not_found(table_setup: dict[str, Any]) -> None:
    ws = table_setup["ws"]
    with pytest.raises(NotFoundError, match="model nope not found"):
        validate(ws, "nope", "press")
    with pytest.raises(NotFoundError, match="dataset press@9 not found"):
        validate(ws, "press-model", "press@9")


def test_corrupt_and_missing_images_are_recorded_not_dropped(
    tmp_path: Path, workspace: Workspace
) -> None:
    from tests.models import image_spec

    for i in range(6):
        make_image(tmp_path / "imgs" / f"{i}.png", 30 * i, (4, 4))
    (tmp_path / "imgs" / "4.png").write_bytes(b"\x89PNG broken")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label\n"
        + "".join(f"imgs/{i}.png,{'ok' if i % 2 else 'defect'}\n" for i in range(6))
        + "imgs/gone.png,ok\n"
    )
    register_dataset(workspace, "imgs", manifest)
    (tmp_path / "imgs" / "5.png").write_bytes(
        (tmp_path / "imgs" / "0.png").read_bytes() + b"tamper"
    )

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    # A tiny real ONNX image model: mean brightness -> logistic -> two probabilities.
    w = numpy_helper.from_array(np.array([[-8.0, 8.0]], np.float32), "w")
    b = numpy_helper.from_array(np.array([2.0, -2.0], np.float32), "b")
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "ax"], ["m2"]),
        helper.make_node("Gemm", ["m2", "w", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    ax = numpy_helper.from_array(np.array([1], np.int64), "ax")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        [w, b, ax],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (tmp_path / "bright.onnx").write_bytes(model.SerializeToString())
    onnx.checker.check_model(model)
    spec = write_spec(tmp_path / "bright.yaml", **image_spec(["defect", "ok"], (4, 4)))
    register_model(workspace, "bright", tmp_path / "bright.onnx", spec)
    result = validate(workspace, "bright", "imgs").result
    assert result.n_items == 7 and result.n_failed == 3
    assert result.failures["by_reason"] == {
        "image cannot be decoded (UnidentifiedImageError: cannot identify image file)": 1,
        "image file not found": 1,
        "image file changed since the dataset was registered": 1,
    }
    assert sum(map(sum, result.confusion_matrix)) == 4


def test_a_named_good_class_makes_the_other_one_positive(table_setup: dict[str, Any]) -> None:
    """labels [defect, ok] with negative: ok: the positive class of the binary metrics and of
    the operating point is defect (it was the second label whatever the spec said, so the
    headline PR-AUC and every "false alarm" were ok's), checked against scikit-learn."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    ws, tmp = table_setup["ws"], table_setup["tmp"]
    spec = write_spec(
        tmp / "good-named.yaml",
        labels=["defect", "ok"],
        negative="ok",
        input={"kind": "tabular", "columns": ["Torque [Nm]", "speed"]},
    )
    register_model(ws, "named", table_setup["onnx"], spec)
    result = validate(ws, "named", "press").result
    assert result.operating_point is not None and result.operating_point["positive"] == "defect"
    preds = pq.read_table(validate(ws, "named", "press").run_dir / "predictions.parquet")
    judged = np.asarray([e is None for e in preds.column("error").to_pylist()])
    defect = np.asarray(preds.column("label").to_pylist())[judged] == "defect"
    score = np.asarray(preds.column("score_defect").to_pylist())[judged]
    assert result.metrics["pr_auc"].value == pytest.approx(average_precision_score(defect, score))
    assert result.metrics["roc_auc"].value == pytest.approx(roc_auc_score(defect, score))
    assert average_precision_score(defect, score) != pytest.approx(
        average_precision_score(~defect, -score)
    )  # the two classes' AP differ here: the test can tell them apart


@pytest.mark.parametrize("when", ["before the profile", "at a stage"])
def test_a_cancel_after_the_pass_stops_the_run(table_setup: dict[str, Any], when: str) -> None:
    """A review: a cancel arriving once every item was scored was answered 'running' and then
    ignored through minutes of profiling and finalising; the run ended finished. It stops at
    the profile or the next stage now, and the run is cancelled, with no result."""
    from assay.engines.job import RunCancelledError
    from assay.services.validation import ValidationConfig

    ws = table_setup["ws"]
    scored: list[int] = []
    stages: list[str] = []

    def cancelled() -> bool:  # once the pass is over (and, "at a stage", once one began)
        return sum(scored) >= 500 and (when == "before the profile" or bool(stages))

    config = ValidationConfig(profile=when == "before the profile", explore=False)
    with pytest.raises(RunCancelledError):
        validate(ws, "press-model", "press", config=config, on_progress=scored.append,
                 on_stage=stages.append, should_cancel=cancelled)  # fmt: skip
    (run,) = ws.catalog.list_runs()
    assert run.status == "cancelled" and run.error == "cancelled by the user"
    assert not (Path(run.run_dir) / "result.json").exists()
