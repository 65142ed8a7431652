"""COCO box evaluation of N images (default 5,000) with 20 expert objects each: Assay's mergeable
evaluation against pycocotools and faster-coco-eval, each in a process of its own, side by side.

The images hold 20 expert boxes of 10 classes and sizes in all three COCO ranges; the model finds
most of them (jittered, some with the wrong class, some twice) and adds false alarms: about 25
detections per image. Each tool is timed on loading the boxes it needs (from the same JSON files
for the two references; from arrays for Assay) and evaluating them (evaluate, accumulate,
summarize); peak memory is sampled over the process. Assay's twelve summary numbers are compared
with pycocotools' (the largest difference is printed; it should be 0). The ratio is reference time
/ Assay time. ``--intervals`` times Assay's bootstrap intervals (1,000 resamples of the images)
on top, which neither reference offers.

    .venv/bin/python benchmarks/coco_eval.py [--images 5000] [--intervals]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from measure import run_measured

N_CLASSES = 10


def generate(n_images: int, folder: Path) -> None:
    """Writes gt.json, dt.json (COCO) and boxes.npz (the same boxes for Assay)."""
    rng = np.random.default_rng(0)
    images, annotations, results = [], [], []
    arrays: dict[str, list[np.ndarray]] = {
        k: [] for k in ("gt", "gt_c", "dt", "dt_c", "dt_s", "n_gt", "n_dt")
    }
    for image in range(n_images):
        size = rng.choice([20.0, 60.0, 150.0], 20) * rng.uniform(0.7, 1.3, 20)
        gt = np.column_stack([rng.uniform(0, 600, (20, 2)), size, size * rng.uniform(0.6, 1.4, 20)])
        gt_c = rng.integers(0, N_CLASSES, 20)
        found = rng.random(20) < 0.85
        twice = found & (rng.random(20) < 0.1)
        dt = np.vstack(
            [
                gt[found] + rng.normal(0, 4, (int(found.sum()), 4)),
                gt[twice] + rng.normal(0, 8, (int(twice.sum()), 4)),
                np.column_stack([rng.uniform(0, 600, (6, 2)), rng.uniform(10, 150, (6, 2))]),
            ]
        )
        dt[:, 2:] = np.abs(dt[:, 2:]) + 1
        wrong = rng.random(int(found.sum())) < 0.08
        dt_c = np.concatenate(
            [
                np.where(wrong, rng.integers(0, N_CLASSES, wrong.size), gt_c[found]),
                gt_c[twice],
                rng.integers(0, N_CLASSES, 6),
            ]
        )
        scores = rng.random(len(dt))
        images.append({"id": image + 1})
        for box, c in zip(gt, gt_c, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image + 1,
                    "category_id": int(c) + 1,
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
        for box, c, s in zip(dt, dt_c, scores, strict=True):
            results.append(
                {
                    "image_id": image + 1,
                    "category_id": int(c) + 1,
                    "bbox": box.tolist(),
                    "score": float(s),
                }
            )
        for key, value in (
            ("gt", gt),
            ("gt_c", gt_c),
            ("dt", dt),
            ("dt_c", dt_c),
            ("dt_s", scores),
        ):
            arrays[key].append(value)
        arrays["n_gt"].append(np.array([len(gt)]))
        arrays["n_dt"].append(np.array([len(dt)]))
    categories = [{"id": k + 1, "name": f"c{k}"} for k in range(N_CLASSES)]
    (folder / "gt.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    (folder / "dt.json").write_text(json.dumps(results))
    np.savez(folder / "boxes.npz", **{k: np.concatenate(v) for k, v in arrays.items()})


def run_reference(folder: Path, tool: str) -> None:
    t0 = time.perf_counter()
    if tool == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Evaluator
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Evaluator  # type: ignore[no-redef]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(folder / "gt.json"))
        dt = gt.loadRes(str(folder / "dt.json"))
        evaluation = Evaluator(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    seconds = time.perf_counter() - t0
    (folder / f"{tool}.json").write_text(
        json.dumps({"s": seconds, "stats": list(evaluation.stats)})
    )


def run_assay(folder: Path, intervals: bool) -> None:
    t0 = time.perf_counter()
    from assay.core.intervals import IntervalConfig
    from assay.core.tasks.detection.mean_ap import (
        COCO_SUMMARY,
        CocoBoxEvaluation,
        DetectionImage,
    )

    with np.load(folder / "boxes.npz") as stored:
        data = dict(stored)  # each access to an NpzFile reads the array again
    gt_at = np.concatenate([[0], np.cumsum(data["n_gt"])])
    dt_at = np.concatenate([[0], np.cumsum(data["n_dt"])])
    images = [
        DetectionImage(
            i,
            data["gt"][gt_at[i] : gt_at[i + 1]],
            data["gt_c"][gt_at[i] : gt_at[i + 1]],
            data["dt"][dt_at[i] : dt_at[i + 1]],
            data["dt_s"][dt_at[i] : dt_at[i + 1]],
            data["dt_c"][dt_at[i] : dt_at[i + 1]],
        )
        for i in range(len(data["n_gt"]))
    ]
    evaluation = CocoBoxEvaluation(tuple(f"c{k}" for k in range(N_CLASSES)))
    state = evaluation.empty()
    for start in range(0, len(images), 256):  # batches, as the engine would feed them
        state = evaluation.update(state, images[start : start + 256])
    found = evaluation.finalize(state)
    seconds = time.perf_counter() - t0
    out = {"s": seconds, "stats": [found[k] for k in COCO_SUMMARY]}
    if intervals:
        t1 = time.perf_counter()
        bounds = evaluation.intervals(state, IntervalConfig(n_resamples=1000))
        out["intervals_s"] = time.perf_counter() - t1
        out["map_interval"] = list(bounds["map"])
    (folder / "assay.json").write_text(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5_000)
    parser.add_argument("--intervals", action="store_true")
    parser.add_argument("--run", choices=["pycocotools", "faster", "assay"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run == "assay":
        run_assay(args.folder, args.intervals)
        return
    if args.run:
        run_reference(args.folder, args.run)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(args.images, folder)
        n_dt = len(json.loads((folder / "dt.json").read_text()))
        print(
            f"{args.images:,} images, {args.images * 20:,} expert boxes, {n_dt:,} detections, {N_CLASSES} classes"
        )
        rows = {}
        for tool in ("pycocotools", "faster", "assay"):
            extra = ["--intervals"] if tool == "assay" and args.intervals else []
            _, peak = run_measured(
                [sys.executable, __file__, "--run", tool, "--folder", str(folder), *extra]
            )
            rows[tool] = (json.loads((folder / f"{tool}.json").read_text()), peak)
        assay_s = rows["assay"][0]["s"]
        for tool, (found, peak) in rows.items():
            ratio = "" if tool == "assay" else f"  reference/Assay {found['s'] / assay_s:.2f}"
            print(f"  {tool:12s} {found['s']:7.2f} s  peak {peak:6.0f} MiB{ratio}")
        reference = np.array(rows["pycocotools"][0]["stats"])
        ours = np.array([-1.0 if v is None else v for v in rows["assay"][0]["stats"]])
        faster = np.array(rows["faster"][0]["stats"])
        print(
            f"  largest difference from pycocotools: Assay {np.abs(ours - reference).max():.2e}, faster-coco-eval {np.abs(faster - reference).max():.2e}"
        )
        print(f"  mAP {reference[0]:.4f}, AP50 {reference[1]:.4f}")
        if args.intervals:
            found = rows["assay"][0]
            low, high = found["map_interval"]
            print(
                f"  Assay's bootstrap interval of mAP (1,000 resamples of the images): [{low:.4f}, {high:.4f}] in {found['intervals_s']:.2f} s more"
            )


if __name__ == "__main__":
    main()
