"""The demo for detection, segmentation and anomaly detection: ``assay demo --task TASK``.

The synthetic cable scans carry their defects' masks. For the three vision tasks they are
written as a COCO file (one box per defect region, class "defect"; the scan's line, camera, speed
and shift as image fields) and as a manifest with a ``mask`` column (PNG, 1 = defect), and
judged by small ONNX models written directly as graphs (``assay.demo.vision_models``): each
compares a scan with a reference image of good cable. The production model compares with the mean
good training scan; the candidate with the mean of each pixel's own row, which follows the
cable wherever it lies and however it is lit. The anomaly models'
threshold is calibrated on a separate set of good scans at a 2% false-alarm rate.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from assay.core.config import ValidationConfig
from assay.demo.cable import SIZE, Scan, generate_scans
from assay.services.datasets import register_dataset
from assay.services.models import register_model, set_alias
from assay.services.validation import ValidationOutcome, validate
from assay.services.workspace import Workspace

TASKS = ("detection", "segmentation", "anomaly")
DEMO_POLICY = """\
confidence: 0.95
slices: [camera, line]
checks:
  - metric: accuracy                 # images judged right: not worse than production
    change: {max_regression: 0.01}
  - metric: accuracy                 # on any camera or line, by more than three points
    scope: every_slice
    change: {max_regression: 0.03}
"""


def _regions(mask: np.ndarray) -> list[list[float]]:
    """One [x, y, width, height] box per 8-connected defect region of a mask."""
    from assay.analysis.regions import label_regions

    regions = label_regions(mask)
    boxes = []
    for k in range(1, int(regions.max(initial=0)) + 1):
        ys, xs = np.nonzero(regions == k)
        boxes.append(
            [
                float(xs.min()),
                float(ys.min()),
                float(xs.max() - xs.min() + 1),
                float(ys.max() - ys.min() + 1),
            ]
        )
    return boxes


def write_task_folder(folder: Path, scans: list[Scan]) -> tuple[Path, Path]:
    """Images, binary masks, ``manifest.csv`` (path, mask, label, metadata) and ``instances.json``
    (COCO); returns both."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as f:
        fields = ["path", "mask", "label", *scans[0].metadata]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for i, scan in enumerate(scans):
            name = f"scan_{i:05d}.png"
            Image.fromarray(scan.pixels, mode="L").save(folder / "images" / name)
            binary = (scan.mask if scan.mask is not None else np.zeros((SIZE, SIZE))) > 0
            Image.fromarray(binary.astype(np.uint8), mode="L").save(folder / "masks" / name)
            label = "good" if scan.label == "ok" else "defect"
            writer.writerow(
                {"path": f"images/{name}", "mask": f"masks/{name}", "label": label, **scan.metadata}
            )
            images.append(
                {
                    "id": i + 1,
                    "file_name": f"images/{name}",
                    "width": SIZE,
                    "height": SIZE,
                    **scan.metadata,
                }
            )
            for box in _regions(binary):
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": 1,
                        "bbox": box,
                        "area": box[2] * box[3],
                        "iscrowd": 0,
                    }
                )
    coco = folder / "instances.json"
    coco.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "defect"}],
            }
        )
    )
    return manifest, coco


def _spec(task: str) -> dict[str, Any]:
    image = {"kind": "image", "size": [SIZE, SIZE], "color": "grayscale", "scale": 1 / 255}
    if task == "detection":
        return {
            "task": "detection",
            "labels": ["defect"],
            "input": image,
            "output": {
                "boxes": "boxes",
                "scores": "scores",
                "classes": "classes",
                "box_format": "xyxy",
            },
            "threshold": 0.5,
            "iou_threshold": 0.3,
        }
    if task == "segmentation":
        return {
            "task": "segmentation",
            "labels": ["background", "defect"],
            "input": image,
            "output": {"name": "logits", "kind": "logits"},
        }
    return {
        "task": "anomaly",
        "labels": ["good", "defect"],
        "good": "good",
        "input": image,
        "output": {"score": "score", "map": "anomaly_map"},
    }


def _models(task: str, folder: Path, reference: np.ndarray) -> tuple[Path, Path]:
    """The production and candidate ONNX models of a task."""
    from assay.demo.vision_models import anomaly_onnx, blob_detector_onnx, segmenter_onnx

    paths = folder / f"{task}-production.onnx", folder / f"{task}-candidate.onnx"
    size = (SIZE, SIZE)
    # Production compares with the mean good scan; the candidate with each pixel's own row,
    # which follows the cable wherever it lies and however the camera lights it.
    if task == "detection":
        blob_detector_onnx(paths[0], reference, size, gain=40.0, offset=0.1, margin=4)
        blob_detector_onnx(paths[1], None, size, gain=40.0, offset=0.08, margin=4)
    elif task == "segmentation":
        segmenter_onnx(paths[0], reference, gain=40.0, offset=0.1, margin=4)
        segmenter_onnx(paths[1], None, gain=40.0, offset=0.08, size=size, margin=4)
    else:
        anomaly_onnx(paths[0], reference, margin=4)
        anomaly_onnx(paths[1], None, size=size, margin=4)
    return paths


def run_task_demo(
    ws: Workspace,
    out: Path,
    task: str,
    n_items: int = 1800,
    echo: Callable[[str], object] = print,
    progress: Callable[[str], AbstractContextManager[tuple[Any, Any, Any]]] | None = None,
) -> ValidationOutcome:
    """Generate the scans with boxes and masks, build and register both models, validate."""
    out.mkdir(parents=True, exist_ok=True)
    folder = out / "cable-scans-annotated"
    echo(f"generating {n_items} synthetic cable scans with defect boxes and masks in {folder} ...")
    manifest, coco = write_task_folder(folder, generate_scans(n_items, seed=7))
    good = [s for s in generate_scans(max(400, n_items // 3), seed=23) if s.label == "ok"]
    calibration, _ = write_task_folder(out / "cable-scans-good", good)
    train = [s.pixels for s in generate_scans(600, seed=11) if s.label == "ok"]
    reference = (np.mean(np.stack(train), axis=0) / 255.0).astype(np.float32)
    models = out / "models"
    models.mkdir(exist_ok=True)
    production, candidate = _models(task, models, reference)
    spec = models / f"{task}.yaml"
    spec.write_text(yaml.safe_dump(_spec(task), sort_keys=False))
    source = coco if task == "detection" else manifest
    dataset = register_dataset(ws, f"cable-{task}", source).dataset
    cal = register_dataset(ws, "cable-good", calibration).dataset if task == "anomaly" else None
    name = f"scanner-{task}"
    prod = register_model(ws, name, production, spec).model
    cand = register_model(ws, name, candidate, spec).model
    set_alias(ws, prod.ref, "production", "demo")
    echo(
        f"registered dataset {dataset.ref} ({dataset.n_items} items) and models {prod.ref} "
        f"({name}@production) and {cand.ref} (the candidate)"
    )
    policy = out / f"release-{task}.yaml"
    policy.write_text(DEMO_POLICY)

    def run(
        on_start: Callable[[int], None],
        on_progress: Callable[[int], None],
        on_stage: Callable[[str], None],
    ) -> ValidationOutcome:
        return validate(
            ws,
            cand,
            dataset,
            out / f"report-{task}",
            ValidationConfig(false_alarm_rate=0.02),
            on_start=on_start,
            on_progress=on_progress,
            on_stage=on_stage,
            overwrite=True,  # the demo's own folder: each demo replaces the last one's report
            baseline=f"{name}@production",
            policy=policy,
            calibration=cal,
        )

    if progress is None:
        return run(lambda n: None, lambda n: None, lambda s: None)
    with progress(f"validating the {task} candidate against production") as hooks:
        return run(*hooks)
