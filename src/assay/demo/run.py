"""run_demo: everything ``make demo`` shows, from nothing to a report."""

from __future__ import annotations

import csv
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from assay.core.config import ValidationConfig
from assay.demo.cable import SIZE, generate_scans
from assay.services.datasets import register_dataset
from assay.services.models import register_model, set_alias
from assay.services.validation import ValidationOutcome, validate
from assay.services.workspace import Workspace

# Two scans are deliberately truncated to show how unreadable items are reported, not dropped.
N_CORRUPT = 2


# The demo's release policy: what a plant might require before a new scanner model goes live.
RELEASE_POLICY = """\
confidence: 0.95
evidence: confident
costs: {false_alarm: 1, missed_defect: 25}   # a missed defect reaching a customer costs 25 stops
operating_constraint: recall >= 0.95         # catch 95% of defects with the fewest false alarms
slices: [camera, line]
checks:
  - metric: accuracy                 # not worse than production by more than one point
    change: {max_regression: 0.01}
  - metric: recall                   # on any defect class, by more than two points
    scope: every_class
    change: {max_regression: 0.02}
  - metric: accuracy                 # on any camera or line, by more than three points
    scope: every_slice
    change: {max_regression: 0.03}
  - false_alarm_rate <= 0.05         # good cable stopped as defective
  - metric: missed_defect_rate       # defects shipped as good
    max: 0.10
    severity: warn
"""


def write_scan_folder(folder: Path, n_items: int, seed: int) -> Path:
    """Write scans as PNG files plus ``manifest.csv`` (path, label, metadata); returns the manifest."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    scans = generate_scans(n_items, seed)
    # A tired expert: 1% of the labels are wrong. They are listed in planted_label_errors.csv so
    # that the report's doubtful-label candidates can be checked against the truth.
    rng = np.random.default_rng(seed + 1)
    wrong = set(rng.choice(n_items, size=max(1, n_items // 100), replace=False).tolist())
    classes = sorted({s.label for s in scans})
    labels = [
        str(rng.choice([c for c in classes if c != s.label])) if i in wrong else s.label
        for i, s in enumerate(scans)
    ]
    with (folder / "planted_label_errors.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["path", "true_label", "recorded_label"])
        out.writerows(
            [f"images/scan_{i:05d}.png", scans[i].label, labels[i]] for i in sorted(wrong)
        )
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as f:
        fields = ["path", "label", *scans[0].metadata]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for i, scan in enumerate(scans):
            rel = f"images/scan_{i:05d}.png"
            Image.fromarray(scan.pixels, mode="L").save(folder / rel)
            writer.writerow({"path": rel, "label": labels[i], **scan.metadata})
    for i in range(N_CORRUPT):
        number = (i + 1) * 97
        if number >= len(scans):  # a small demo holds fewer scans (a review: exit 3 at 120)
            break
        victim = folder / f"images/scan_{number:05d}.png"
        victim.write_bytes(victim.read_bytes()[:60])
    return manifest


def _spec(labels: list[str]) -> dict[str, object]:
    return {
        "task": "classification",
        "labels": labels,
        "input": {
            "kind": "image",
            "size": [SIZE, SIZE],
            "color": "grayscale",
            "layout": "NCHW",
            "scale": 1 / 255,
            "mean": [0.0],
            "std": [1.0],
        },
        "output": {"name": "probabilities", "kind": "probabilities"},
        "negative": "ok",
    }


def run_demo(
    ws: Workspace,
    out: Path,
    n_items: int = 1800,
    echo: Callable[[str], object] = print,
    progress: Callable[[str], AbstractContextManager[tuple[Any, Any, Any]]] | None = None,
) -> ValidationOutcome:
    """Generate data, train and register two models, validate the candidate; returns the outcome."""
    out.mkdir(parents=True, exist_ok=True)
    echo(f"generating {n_items} synthetic cable scans in {out / 'cable-scans'} ...")
    manifest = write_scan_folder(out / "cable-scans", n_items, seed=7)
    echo("training the production and candidate models (scikit-learn -> ONNX) ...")
    train = generate_scans(2400, seed=11)
    pixels = np.stack([s.pixels for s in train])
    models = out / "models"
    models.mkdir(exist_ok=True)
    from assay.demo.models import train_models

    production, candidate, labels = train_models(pixels, [s.label for s in train], models)
    spec_path = models / "scanner.yaml"
    spec_path.write_text(yaml.safe_dump(_spec(labels), sort_keys=False))
    dataset = register_dataset(ws, "cable-scans", manifest).dataset
    prod = register_model(ws, "scanner", production, spec_path).model
    cand = register_model(ws, "scanner", candidate, spec_path).model
    set_alias(ws, prod.ref, "production", "demo")
    echo(
        f"registered dataset {dataset.ref} ({dataset.n_items} items) and models {prod.ref} "
        f"(scanner@production) and {cand.ref} (the candidate)"
    )
    policy = out / "release.yaml"
    policy.write_text(RELEASE_POLICY)

    def run(
        on_start: Callable[[int], None],
        on_progress: Callable[[int], None],
        on_stage: Callable[[str], None],
    ) -> ValidationOutcome:
        return validate(
            ws,
            cand,
            dataset,
            out / "report",
            ValidationConfig(),
            on_start=on_start,
            on_progress=on_progress,
            on_stage=on_stage,
            overwrite=True,  # the demo's own folder: each demo replaces the last one's report
            baseline="scanner@production",
            policy=policy,
        )

    if progress is None:
        return run(lambda n: None, lambda n: None, lambda s: None)
    with progress("validating the candidate against production") as hooks:
        return run(*hooks)
