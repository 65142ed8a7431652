"""The demo's second act: a model's life across dataset and model versions.

After the first validation (``assay.demo.run``), the line keeps going:

- new scans arrive: ``cable-scans@2`` holds every scan of version 1 and 10% more; the candidate
  is validated on it again, and only the new scans go through the model (incremental);
- a third model version is trained, ``scanner@3``;
- its training set is registered (``--role training``), and one of its scans is, by mistake,
  also a validation scan: the leakage audit finds it;
- a sample of this week's production is registered (``--role production``, no labels): the line
  now runs faster, which the coverage audit finds, and the candidate's accuracy is re-weighted to
  that mix;
- ``scanner@3`` is validated on ``cable-scans@2`` against ``scanner@2`` with all of it, under a
  policy with a decision budget; the item history of the three versions closes the act.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from assay.core.config import ValidationConfig
from assay.demo.cable import Scan, generate_scans
from assay.demo.run import RELEASE_POLICY
from assay.services.datasets import register_dataset
from assay.services.history import item_history
from assay.services.models import register_model, set_alias
from assay.services.validation import ValidationOutcome, validate
from assay.services.workspace import Workspace

FAST = (1800.0, 2300.0)  # this week's line speeds (m/min); validation scans span 1,200 to 2,200


def _write(
    folder: Path, scans: list[Scan], prefix: str, labelled: bool = True
) -> list[dict[str, object]]:
    rows = []
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for i, scan in enumerate(scans):
        rel = f"images/{prefix}_{i:05d}.png"
        Image.fromarray(scan.pixels, mode="L").save(folder / rel)
        rows.append({"path": rel, **({"label": scan.label} if labelled else {}), **scan.metadata})
    return rows


def _manifest(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_lifecycle(
    ws: Workspace, out: Path, first: ValidationOutcome, echo: Callable[[str], object] = print
) -> ValidationOutcome:
    """Version 2 of the data, a third model, a leaked scan and a faster line; returns the last
    validation."""
    scans = out / "cable-scans"
    with (scans / "manifest.csv").open() as f:
        old_rows = list(csv.DictReader(f))
    n_new = max(1, len(old_rows) // 10)
    new_rows = _write(scans, generate_scans(n_new, seed=8), "new")
    v2 = register_dataset(
        ws, "cable-scans", _manifest(scans / "manifest-v2.csv", old_rows + new_rows)
    ).dataset
    echo(
        f"\nnew scans arrived: {v2.ref} holds the {len(old_rows)} scans of version 1 and {n_new} new ones"
    )
    cand = ws.catalog.get_model_by_id(ws.catalog.get_run(first.result.run_id).model_id)
    if not first.blocking:  # the release gate passed: the candidate goes into production
        set_alias(ws, cand.ref, "production", "demo")
        echo(f"{cand.ref} passed the release gate: scanner@production now points at it")
    again = validate(ws, cand, v2, config=ValidationConfig(profile=False, explore=False))
    echo(
        f"validated {cand.ref} on {v2.ref}: {again.result.n_reused} scans reused their recorded "
        f"outputs, {again.result.n_inferred} went through the model (incremental validation)"
    )

    echo("training scanner@3 ...")
    from assay.demo.models import train_models

    train_scans = generate_scans(1200, seed=12)
    models = out / "models"
    (models / "v3").mkdir(parents=True, exist_ok=True)
    _, third_model, _ = train_models(np.stack([s.pixels for s in train_scans]),
                                     [s.label for s in train_scans], models / "v3")  # fmt: skip
    third = register_model(ws, "scanner", third_model, models / "scanner.yaml").model

    train_dir = out / "cable-train"
    shutil.rmtree(train_dir, ignore_errors=True)
    train_rows = _write(train_dir, train_scans[:400], "train")
    # The mistake the audit is for: one validation scan was copied into the training set.
    leaked = old_rows[5]
    shutil.copy(scans / str(leaked["path"]), train_dir / "images" / "copied.png")
    train_rows.append({**leaked, "path": "images/copied.png"})
    training = register_dataset(ws, "cable-train", _manifest(train_dir / "manifest.csv", train_rows),
                                role="training").dataset  # fmt: skip

    sample_dir = out / "line-sample"
    shutil.rmtree(sample_dir, ignore_errors=True)
    week = generate_scans(300, seed=21, speeds=FAST)
    batches = sorted({str(r["material_batch"]) for r in old_rows})
    for k, scan in enumerate(week):  # the same batches and shifts as the validation scans
        scan.metadata["material_batch"] = batches[k % len(batches)]
        scan.metadata["shift"] = "ABC"[k % 3]
    sample_rows = _write(sample_dir, week, "line", False)
    sample = register_dataset(ws, "line-sample", _manifest(sample_dir / "manifest.csv", sample_rows),
                              role="production").dataset  # fmt: skip
    echo(
        f"registered {third.ref}, its training set {training.ref} ({training.n_items} scans) "
        f"and this week's production sample {sample.ref} ({sample.n_items} unlabelled scans, "
        f"line speed {FAST[0]:.0f}-{FAST[1]:.0f} m/min)"
    )
    policy = out / "release-with-budget.yaml"
    policy.write_text(
        RELEASE_POLICY.replace(
            "checks:\n", "reuse_budget: {max_decisions: 20, on_exceeded: warn}\nchecks:\n", 1
        )
        + "  - leaked_items == 0               # no validation scan was trained on\n"
    )
    final = validate(
        ws,
        third,
        v2,
        out / "report-v3",
        ValidationConfig(profile=False),
        overwrite=True,
        baseline="scanner@production",
        policy=policy,
        train=training,
        production=sample,
    )
    r = final.result
    leak, cov = r.leakage or {}, r.coverage or {}
    echo(
        f"validated {third.ref} on {v2.ref} against scanner@production (scanner@"
        f"{r.comparison['baseline']['number'] if r.comparison else '-'}): "
        f"{leak.get('n_leaked_items')} leaked scan(s) found; "
        f"production coverage: domain classifier ROC-AUC {cov['domain']['auc']:.3f}, "
        f"largest PSI {cov['max_psi'] or 0:.2f}"
        + (
            f" ({cov['regions'][0]['column']} {cov['regions'][0]['bin']} barely covered)"
            if cov.get("regions")
            else ""
        )
    )
    history = item_history(ws, "cable-scans").summary(limit=0)
    echo(
        f"item history of cable-scans over {len(history['versions'])} model versions: "
        f"{history['broken']['n']} scans broken by {history['candidate']} that every earlier "
        f"version got right, {history['never_right']['n']} never right, "
        f"{history['flip_flop']['n']} flipping (assay history cable-scans)"
    )
    return final
