"""SparkEngine against LocalEngine on the real datasets: the same counts exactly, the same
floating-point metrics to 1e-12, the same predictions row for row. One Spark session (local[2])
for the module."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from assay.cli.main import main
from assay.core.config import ValidationConfig
from assay.services.validation import validate
from assay.services.workspace import Workspace
from tests.models import tabular_onnx, write_spec
from tests.real_datasets import neu_det, neu_onnx_model, secom

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI"):
            pytest.fail("CI is set but Java is missing: the Spark engine needs Java 17")
        pytest.skip("no Java on this machine: the Spark engine needs Java 17")
    from assay.engines.spark import spark_session

    session = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


def close(a: Any, b: Any, path: str = "") -> None:
    """Equal structures: ints and strings exactly, floats to 1e-12."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12, nan_ok=True), path
    else:
        assert a == b, path


def both_engines(
    ws: Workspace, model: str, dataset: str, rows_per_task: int, baseline: str | None = None
) -> tuple[Any, Any]:
    """The same validation on Spark, then locally. With a baseline, the Spark pass judges both
    models in one pass; the local run then reuses that baseline run's predictions, so the two
    comparisons rest on the same baseline and must agree exactly. Four batches per task: a
    task holds whole batches (the local pass's), and several tasks merge."""
    batch_size = max(1, rows_per_task // 4)
    on_spark = validate(
        ws,
        model,
        dataset,
        config=ValidationConfig(
            profile=False,
            n_resamples=200,
            engine="spark",
            spark_rows_per_task=rows_per_task,
            batch_size=batch_size,
        ),
        baseline=baseline,
    )
    local = validate(
        ws,
        model,
        dataset,
        config=ValidationConfig(profile=False, n_resamples=200, batch_size=batch_size),
        baseline=baseline,
    )
    return local, on_spark


FINDINGS = ("error_slices", "error_slice_search", "doubtful_labels", "expert_agreement")


def compare(local: Any, on_spark: Any) -> None:
    a, b = local.result.to_dict(), on_spark.result.to_dict()
    assert b["config"]["engine"] == "spark"
    for key in ("n_items", "n_judged", "n_failed", "confusion_matrix", "label_counts", "failures"):
        assert a[key] == b[key], key
    for key in (
        "metrics",
        "curves",
        "reliability",
        "operating_point",
        "verdict",
        "slices",
        *FINDINGS,
    ):
        close(a[key], b[key], key)
    if a["comparison"] is not None or b["comparison"] is not None:
        ca, cb = dict(a["comparison"]), dict(b["comparison"])
        for c in (ca, cb):  # which run the baseline's predictions came from differs, nothing else
            c["baseline"] = {
                k: v for k, v in c["baseline"].items() if k not in ("run_id", "reused")
            }
        close(ca, cb, "comparison")
        ledgers = [pd.read_parquet(o.run_dir / "comparison.parquet") for o in (local, on_spark)]
        pd.testing.assert_frame_equal(*ledgers)
    pa_, pb = (pd.read_parquet(o.run_dir / "predictions.parquet") for o in (local, on_spark))
    pd.testing.assert_frame_equal(pa_, pb)  # the same rows in the manifest's order


def test_spark_equals_local_on_secom(spark: Any, tmp_path: Path) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root, x, y = secom()
    cols = [f"f{j:03d}" for j in range(x.shape[1])]
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)).fit(
        np.nan_to_num(x[::2]).astype(np.float32), y[::2]
    )
    onnx = tabular_onnx(model, x.shape[1], tmp_path / "secom.onnx")
    spec = write_spec(
        tmp_path / "secom.yaml",
        labels=[str(c) for c in model.classes_],
        input={"kind": "tabular", "columns": cols, "missing": "allow"},
        positive="fail",
    )
    # The model in production: fitted on the other half, more strongly regularised.
    older = make_pipeline(
        SimpleImputer(), StandardScaler(), LogisticRegression(C=0.01, max_iter=500)
    ).fit(np.nan_to_num(x[1::2]).astype(np.float32), y[1::2])
    old_onnx = tabular_onnx(older, x.shape[1], tmp_path / "old.onnx")
    home = str(tmp_path / "home")
    assert main(["dataset", "add", "secom", str(root), "--home", home]) == 0
    assert main(["model", "add", "secom", str(onnx), "--spec", str(spec), "--home", home]) == 0
    assert main(["model", "add", "old", str(old_onnx), "--spec", str(spec), "--home", home]) == 0
    ws = Workspace.open(home)
    local, on_spark = both_engines(ws, "secom", "secom", rows_per_task=400)  # 4 tasks
    compare(local, on_spark)
    local, on_spark = both_engines(ws, "secom", "secom", rows_per_task=400, baseline="old")
    assert on_spark.result.comparison["baseline"]["reused"] is False  # judged in the Spark pass
    # Reused: its tasks said they ran where this process runs (what reuse compares, not the
    # driver's word).
    assert local.result.comparison["baseline"]["reused"] is True
    from assay.services.environment import describe_environment, numerics

    executors = ws.catalog.get_run(on_spark.result.run_id).environment["spark_executors"]
    assert executors == [numerics(describe_environment())]
    compare(local, on_spark)
    # The baseline's own run from the Spark pass equals the baseline validated alone, locally.
    spark_base = ws.catalog.get_run(on_spark.result.comparison["baseline"]["run_id"])
    alone = validate(ws, "old", "secom", config=ValidationConfig(profile=False, n_resamples=200))
    pd.testing.assert_frame_equal(
        pd.read_parquet(Path(spark_base.run_dir) / "predictions.parquet"),
        pd.read_parquet(alone.run_dir / "predictions.parquet"),
    )
    ws.close()
    run = ["validate", "--model", "secom", "--dataset", "secom", "--no-profile", "--home", home]
    out = tmp_path / "cli"
    spark_args = ["--engine", "spark", "--spark-master", "local[2]"]
    assert (
        main(
            [*run, *spark_args, "--spark-conf", "spark.sql.shuffle.partitions=2", "--out", str(out)]
        )
        == 0
    )
    assert json.loads((out / "result.json").read_text())["config"]["engine"] == "spark"
    assert main([*run, *spark_args, "--spark-conf", "no-equals-sign"]) == 2
    assert main([*run, "--engine", "hadoop"]) == 2


def test_spark_equals_local_on_neu_det_images(spark: Any, tmp_path: Path) -> None:
    root, _, _, _ = neu_det()
    onnx, spec, _ = neu_onnx_model(tmp_path)
    home = str(tmp_path / "home")
    main(["dataset", "add", "neu", str(root), "--home", home])
    main(["model", "add", "neu", str(onnx), "--spec", str(spec), "--home", home])
    ws = Workspace.open(home)
    local, on_spark = both_engines(ws, "neu", "neu", rows_per_task=500)  # 4 tasks
    compare(local, on_spark)
    assert json.loads((on_spark.run_dir / "result.json").read_text())["n_items"] == 1800
    ws.close()


def test_spark_keeps_the_error_embeddings_like_local(spark: Any, tmp_path: Path) -> None:
    """Tasks write the misclassified items' embeddings as parts; combined, they equal the local
    engine's file row for row, and the error groups found on them are the same."""
    from assay import api
    from tests.services.test_error_groups import planted, rule_model

    csv, _ = planted(tmp_path)
    onnx, spec = rule_model(tmp_path)
    home = tmp_path / "home"
    api.add_dataset("parts", csv, home=home)
    api.add_model("m", onnx, spec=spec, home=home)
    ws = Workspace.open(home)
    local, on_spark = both_engines(ws, "m", "parts", rows_per_task=700)  # 5 tasks
    ws.close()
    compare(local, on_spark)
    frames = [pd.read_parquet(o.run_dir / "error_embeddings.parquet") for o in (local, on_spark)]
    cm = np.asarray(local.result.confusion_matrix)
    assert len(frames[0]) == cm.sum() - np.trace(cm) > 0  # every error has its vector
    assert frames[0]["row"].tolist() == frames[1]["row"].tolist()
    assert frames[0]["item_id"].tolist() == frames[1]["item_id"].tolist()
    assert np.array_equal(np.stack(frames[0]["vector"]), np.stack(frames[1]["vector"]))
    assert not (on_spark.run_dir / "error_embeddings.parts").exists()
    groups = [o.result.error_groups for o in (local, on_spark)]
    assert groups[0] is not None and "embedding output" in groups[0]["method"]
    close(groups[0], groups[1], "error_groups")


def test_spark_equals_local_for_detection_segmentation_and_anomaly(
    spark: Any, tmp_path: Path
) -> None:
    """The three vision tasks: COCO numbers on NEU-DET's real boxes, segmentation and anomaly
    metrics on generated plates, all equal between the engines, predictions row for row."""
    from assay.demo.vision_models import anomaly_onnx, grid_detector_onnx, segmenter_onnx
    from tests.conftest import shared_dataset
    from tests.vision_data import plates, reference_image, write_mask_manifest

    root = shared_dataset("neu-det")
    labels = sorted({p.stem.rsplit("_", 1)[0] for p in (root / "IMAGES").glob("*.jpg")})
    grid = grid_detector_onnx(
        tmp_path / "grid.onnx", np.full((200, 200), 0.5, np.float32), 40, 8.0, 0.1
    )
    image = {"kind": "image", "color": "grayscale"}
    det_spec = write_spec(
        tmp_path / "grid.yaml",
        task="detection",
        labels=labels,
        input={**image, "size": [200, 200]},
        output={"boxes": "boxes", "scores": "scores", "classes": "classes"},
    )
    manifest = write_mask_manifest(tmp_path / "plates", plates(60, seed=12))
    good = write_mask_manifest(tmp_path / "good", plates(40, seed=13, max_defects=0))
    seg = segmenter_onnx(tmp_path / "seg.onnx", reference_image())
    seg_spec = write_spec(
        tmp_path / "seg.yaml",
        task="segmentation",
        labels=["background", "spot"],
        input={**image, "size": [64, 64]},
        output={"name": "logits", "kind": "logits"},
    )
    ano = anomaly_onnx(tmp_path / "ano.onnx", reference_image())
    ano_spec = write_spec(
        tmp_path / "ano.yaml",
        task="anomaly",
        labels=["good", "defect"],
        input={**image, "size": [64, 64]},
        output={"score": "score", "map": "anomaly_map"},
    )
    home = str(tmp_path / "home")
    for name, path in (("neu", root), ("plates", manifest), ("good", good)):
        assert main(["dataset", "add", name, str(path), "--home", home]) == 0
    for name, path, spec in (
        ("grid", grid, det_spec),
        ("seg", seg, seg_spec),
        ("ano", ano, ano_spec),
    ):
        assert main(["model", "add", name, str(path), "--spec", str(spec), "--home", home]) == 0
    ws = Workspace.open(home)
    for model, dataset, rows, extra in (
        ("grid", "neu", 500, {}),
        ("seg", "plates", 25, {}),
        ("ano", "plates", 25, {"calibration": "good"}),
    ):
        runs = [
            validate(
                ws,
                model,
                dataset,
                config=ValidationConfig(
                    profile=False,
                    n_resamples=200,
                    engine=engine,  # type: ignore[arg-type]
                    spark_rows_per_task=rows,
                    false_alarm_rate=0.05,
                ),
                **extra,  # type: ignore[arg-type]
            )
            for engine in ("local", "spark")
        ]
        compare(*runs)
        a, b = (o.result.to_dict() for o in runs)
        close(a["task"], b["task"], "task")
        assert a.get("threshold") == b.get("threshold")
        assert (
            a["metrics"][{"grid": "map", "seg": "mean_iou", "ano": "image_auroc"}[model]]["value"]
            is not None
        )
    ws.close()


def test_a_master_or_settings_the_running_session_lacks_are_refused_before_a_run(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: a second validation in one process asked for local[1] and executor settings;
    Spark handed back the running local[2] session, and the run recorded the master and
    settings it never had. A mistyped master was an internal error (exit 3, a Java stack trace)
    and a failed run. Each is now one line, exit 2, nothing recorded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from assay.core.errors import InputError
    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from tests.models import passthrough_onnx

    pq.write_table(pa.table({"a": [0.2, 0.9] * 20, "b": [0.8, 0.1] * 20,
                             "label": ["good", "bad"] * 20}), tmp_path / "t.parquet")  # fmt: skip
    home = tmp_path / "home"
    ws = Workspace.open(home)
    register_dataset(ws, "t", tmp_path / "t.parquet")
    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["a", "b"]},
            "output": {"name": "probabilities"}}  # fmt: skip
    register_model(ws, "m", passthrough_onnx(tmp_path / "m.onnx", 2), spec)
    for master, conf, says in (
        ("local[1]", (), "already running in this process"),
        ("local[2]", (("spark.task.maxFailures", "7"),), "spark.task.maxFailures"),
    ):
        config = ValidationConfig(profile=False, engine="spark", spark_master=master,
                                  spark_conf=conf)  # fmt: skip
        with pytest.raises(InputError, match=says):
            validate(ws, "m", "t", config=config)
    assert ws.catalog.list_runs() == []
    ok = validate(ws, "m", "t", config=ValidationConfig(profile=False, engine="spark",
                                                        spark_master="local[2]"))  # fmt: skip
    assert ok.result.config["spark_master"] == "local[2]"
    ws.close()
    capsys.readouterr()
    args = ["validate", "--model", "m", "--dataset", "t", "--home", str(home), "--no-profile"]
    assert main([*args, "--engine", "spark", "--spark-master", "lcoal[2]"]) == 2
    err = capsys.readouterr().err
    assert "is not a Spark master URL" in err and len(err.strip().splitlines()) == 1


def test_a_spark_pass_reports_progress_as_tasks_finish_and_can_be_cancelled(
    spark: Any, tmp_path: Path
) -> None:
    """A review: the pass sat at 0% until its end, and a cancel was only seen after every task
    had run. Progress adds up to the items; a cancel stops the tasks and the run says so."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from assay.engines.job import RunCancelledError
    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from tests.models import passthrough_onnx

    pq.write_table(pa.table({"a": [0.2, 0.9] * 50, "b": [0.8, 0.1] * 50,
                             "label": ["good", "bad"] * 50}), tmp_path / "t.parquet")  # fmt: skip
    ws = Workspace.open(tmp_path / "home")
    register_dataset(ws, "t", tmp_path / "t.parquet")
    spec = {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["a", "b"]},
            "output": {"name": "probabilities"}}  # fmt: skip
    register_model(ws, "m", passthrough_onnx(tmp_path / "m.onnx", 2), spec)
    config = ValidationConfig(profile=False, explore=False, engine="spark", batch_size=5,
                              spark_rows_per_task=10)  # fmt: skip
    steps: list[int] = []
    validate(ws, "m", "t", config=config, on_progress=steps.append)
    assert sum(steps) == 100 and all(s > 0 for s in steps)
    with pytest.raises(RunCancelledError):
        validate(ws, "m", "t", config=config, should_cancel=lambda: True)
    assert [r.status for r in ws.catalog.list_runs()].count("cancelled") == 1
    ws.close()
