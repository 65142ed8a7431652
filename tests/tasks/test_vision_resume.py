"""A detection run and a calibrated anomaly run stopped part-way (Ctrl-C) and resumed: the task's
numbers, the threshold and every prediction equal an uninterrupted run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from assay.core.config import ValidationConfig
from assay.demo.vision_models import anomaly_onnx, grid_detector_onnx
from assay.services.datasets import register_dataset
from assay.services.models import register_model
from assay.services.validation import resume_validation, validate
from assay.services.workspace import Workspace
from tests.vision_data import plates, reference_image, write_coco, write_mask_manifest

CONFIG = ValidationConfig(
    batch_size=8, checkpoint_every_s=0, profile=False, n_resamples=200, false_alarm_rate=0.05
)
IMAGE = {"kind": "image", "size": [64, 64], "color": "grayscale"}


def store(tmp: Path, name: str) -> Workspace:
    ws = Workspace.open(tmp / name)
    register_dataset(ws, "coco", write_coco(tmp / "coco", plates(60, seed=50)))
    register_dataset(ws, "masks", write_mask_manifest(tmp / "masks", plates(60, seed=51)))
    register_dataset(
        ws, "good", write_mask_manifest(tmp / "good", plates(40, seed=52, max_defects=0))
    )
    det = {
        "task": "detection",
        "labels": ["spot"],
        "input": IMAGE,
        "output": {"boxes": "boxes", "scores": "scores", "classes": "classes"},
    }
    register_model(ws, "det", grid_detector_onnx(tmp / "det.onnx", reference_image(), cell=16), det)
    ano = {
        "task": "anomaly",
        "labels": ["good", "defect"],
        "input": IMAGE,
        "output": {"score": "score", "map": "anomaly_map"},
    }
    register_model(ws, "ano", anomaly_onnx(tmp / "ano.onnx", reference_image()), ano)
    return ws


@pytest.mark.parametrize(
    ("model", "dataset", "extra"), [("det", "coco", {}), ("ano", "masks", {"calibration": "good"})]
)
def test_a_resumed_vision_run_equals_an_uninterrupted_one(
    tmp_path: Path, model: str, dataset: str, extra: dict[str, Any]
) -> None:
    ws = store(tmp_path, "resumed")
    seen = 0

    def stop_part_way(n: int) -> None:
        nonlocal seen
        seen += 1
        if seen == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        validate(ws, model, dataset, config=CONFIG, on_progress=stop_part_way, **extra)
    (run,) = ws.catalog.list_runs()
    assert run.status == "interrupted"
    resumed = resume_validation(ws, run.id)
    whole = validate(store(tmp_path, "whole"), model, dataset, config=CONFIG, **extra)
    got, want = resumed.result.to_dict(), whole.result.to_dict()
    assert got["metrics"] == want["metrics"]
    assert got["task"] == want["task"]
    assert got.get("threshold") == want.get("threshold")
    assert got["confusion_matrix"] == want["confusion_matrix"] and got["n_items"] == 60
    pd.testing.assert_frame_equal(
        pd.read_parquet(resumed.run_dir / "predictions.parquet"),
        pd.read_parquet(whole.run_dir / "predictions.parquet"),
    )
