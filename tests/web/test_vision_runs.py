"""A detection model dropped onto the web app: the run's item images show what the experts and
the model drew, in two colours."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from assay.demo.vision_models import grid_detector_onnx
from assay.reports.thumbnails import EXPERT, MODEL
from assay.services.datasets import register_dataset
from assay.services.workspace import Workspace
from tests.models import write_spec
from tests.vision_data import plates, reference_image, write_coco
from tests.web.conftest import Web


def test_detection_run_images_draw_experts_and_model(web: Web, tmp_path: Path) -> None:
    ws = Workspace.open(web.home)
    register_dataset(ws, "plates", write_coco(tmp_path / "plates", plates(20, seed=40)))
    ws.close()
    model = grid_detector_onnx(tmp_path / "grid.onnx", reference_image(), cell=16)
    spec = write_spec(
        tmp_path / "grid.yaml",
        task="detection",
        labels=["spot"],
        input={"kind": "image", "size": [64, 64], "color": "grayscale"},
        output={"boxes": "boxes", "scores": "scores", "classes": "classes"},
    )
    files = {"file": ("grid.onnx", model.read_bytes()), "spec": ("grid.yaml", spec.read_bytes())}
    r = web.client.post(
        "/api/models", data={"name": "grid"}, files=files, headers=web.auth("validator")
    )
    assert r.status_code == 201, r.text
    r = web.client.post(
        "/api/runs", json={"model": "grid", "datasets": ["plates"]}, headers=web.auth("validator")
    )
    assert r.status_code == 202, r.text
    (job,) = r.json()
    assert web.work() == 1
    result = web.client.get(f"/api/runs/{job['id']}/result", headers=web.auth("viewer")).json()
    assert result["task"]["name"] == "detection" and result["metrics"]["map"]["value"] is not None
    colours: set[tuple[int, ...]] = set()
    for label, predicted in (("defect", "defect"), ("defect", "good"), ("good", "defect")):
        cell = web.client.get(
            f"/api/runs/{job['id']}/items",
            params={"label": label, "predicted": predicted},
            headers=web.auth("viewer"),
        ).json()
        for item in cell["items"][:5]:
            image = web.client.get(
                f"/api/runs/{job['id']}/items/{item['row']}/image", headers=web.auth("viewer")
            )
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            pixels = np.asarray(Image.open(io.BytesIO(image.content)).convert("RGB")).reshape(-1, 3)
            colours |= {c for c in (EXPERT, MODEL) if (pixels == c).all(axis=1).any()}
    assert colours == {EXPERT, MODEL}


def test_an_anomaly_run_calibrates_on_the_web_too(web: Web, tmp_path: Path) -> None:
    from assay.demo.vision_models import anomaly_onnx
    from tests.vision_data import write_mask_manifest

    ws = Workspace.open(web.home)
    register_dataset(ws, "test", write_mask_manifest(tmp_path / "t", plates(20, seed=41)))
    register_dataset(
        ws, "good", write_mask_manifest(tmp_path / "g", plates(40, seed=42, max_defects=0))
    )
    ws.close()
    model = anomaly_onnx(tmp_path / "a.onnx", reference_image())
    spec = write_spec(
        tmp_path / "a.yaml",
        task="anomaly",
        labels=["good", "defect"],
        input={"kind": "image", "size": [64, 64], "color": "grayscale"},
        output={"score": "score", "map": "anomaly_map"},
    )
    files = {"file": ("a.onnx", model.read_bytes()), "spec": ("a.yaml", spec.read_bytes())}
    assert (
        web.client.post(
            "/api/models", data={"name": "ano"}, files=files, headers=web.auth("validator")
        ).status_code
        == 201
    )
    body = {"model": "ano", "datasets": ["test"]}
    r = web.client.post("/api/runs", json=body, headers=web.auth("validator"))
    assert r.status_code == 422 and "has no threshold" in r.json()["detail"]
    r = web.client.post(
        "/api/runs",
        json=body | {"calibration": "good", "false_alarm_rate": 2},
        headers=web.auth("validator"),
    )
    assert (
        r.status_code == 422
        and "false_alarm_rate must be a number between 0 and 1" in r.json()["detail"]
    )
    r = web.client.post(
        "/api/runs",
        json=body | {"calibration": "good", "false_alarm_rate": 0.05},
        headers=web.auth("validator"),
    )
    assert r.status_code == 202, r.text
    (job,) = r.json()
    assert web.work() == 1
    result = web.client.get(f"/api/runs/{job['id']}/result", headers=web.auth("viewer")).json()
    assert result["threshold"]["target_false_alarm_rate"] == 0.05
    assert result["threshold"]["calibration_dataset"] == "good@1"
