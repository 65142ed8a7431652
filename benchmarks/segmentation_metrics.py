"""Segmentation metrics of N masks (default 1,000 of 512x512, 5 classes): Assay's mergeable pixel
confusion against a hand-written numpy pass, each in a process of its own, side by side.

The masks (expert and model, uint8 class indices with a few pixels left out as 255) are written
once to a memory-mapped file, so that both sides read the same bytes and generating them is not
timed. The numpy reference is what a performance engineer would write: per image one
``np.bincount`` of ``expert * K + model`` over the counted pixels, summed, then IoU, Dice and pixel
accuracy from the matrix. Assay runs its segmentation accumulator the way a validation feeds it:
per image the pixel confusion and per-class counts (kept per image for the image-bootstrap
intervals), in batches of 64. The ratio is reference time / Assay time; the per-class IoU of both
is compared (it should be equal). ``--boundary`` adds Assay's boundary F1 (2 px) and
``--intervals`` its bootstrap intervals (1,000 resamples of the images), which the reference
does not compute.

    .venv/bin/python benchmarks/segmentation_metrics.py [--images 1000] [--boundary] [--intervals]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from measure import run_measured

K = 5
SIDE = 512


def generate(n: int, folder: Path) -> None:
    rng = np.random.default_rng(0)
    expert = np.lib.format.open_memmap(folder / "expert.npy", "w+", np.uint8, (n, SIDE, SIDE))
    model = np.lib.format.open_memmap(folder / "model.npy", "w+", np.uint8, (n, SIDE, SIDE))
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    for i in range(n):
        e = np.zeros((SIDE, SIDE), np.uint8)
        m = np.zeros((SIDE, SIDE), np.uint8)
        for _ in range(int(rng.integers(0, 4))):
            c = int(rng.integers(1, K))
            cx, cy = rng.uniform(0, SIDE, 2).tolist()
            r = float(rng.uniform(10, 60))
            e[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = c
            if rng.random() < 0.85:  # the model finds it, a little off, sometimes as another class
                dx, dy = rng.normal(0, r / 5, 2)
                mc = c if rng.random() < 0.9 else int(rng.integers(1, K))
                m[(x - cx - dx) ** 2 + (y - cy - dy) ** 2 < (r * rng.uniform(0.8, 1.2)) ** 2] = mc
        e[rng.random((SIDE, SIDE)) < 0.001] = 255  # a few pixels the experts left out
        expert[i], model[i] = e, m
    expert.flush()
    model.flush()


def run_numpy(folder: Path) -> None:
    t0 = time.perf_counter()
    expert = np.load(folder / "expert.npy", mmap_mode="r")
    model = np.load(folder / "model.npy", mmap_mode="r")
    confusion = np.zeros(K * K, np.int64)
    for i in range(expert.shape[0]):
        e = expert[i].ravel()
        keep = e != 255
        confusion += np.bincount(
            e[keep].astype(np.int64) * K + model[i].ravel()[keep], minlength=K * K
        )
    cm = confusion.reshape(K, K)
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    iou = tp / (tp + fp + fn)
    dice = 2 * tp / (2 * tp + fp + fn)
    accuracy = tp.sum() / cm.sum()
    seconds = time.perf_counter() - t0
    out = {"s": seconds, "iou": iou.tolist(), "dice": dice.tolist(), "accuracy": accuracy}
    (folder / "numpy.json").write_text(json.dumps(out))


def run_assay(folder: Path, boundary: bool, intervals: bool) -> None:
    t0 = time.perf_counter()
    from assay.core.batch import ScoredBatch
    from assay.core.intervals import IntervalConfig
    from assay.core.tasks.segmentation.boundary import boundary_counts
    from assay.core.tasks.segmentation.pixel_confusion import image_counts
    from assay.core.tasks.segmentation.task import SegmentationMetrics

    expert = np.load(folder / "expert.npy", mmap_mode="r")
    model = np.load(folder / "model.npy", mmap_mode="r")
    labels = tuple(f"c{k}" for k in range(K))
    acc = SegmentationMetrics(labels, IntervalConfig(n_resamples=1000 if intervals else 0), 2)
    state = acc.empty()
    empty_edges = np.zeros((K, 4), np.int64)
    boundary_s = 0.0
    for start in range(0, expert.shape[0], 64):
        detail = []
        for i in range(start, min(start + 64, expert.shape[0])):
            e, m = np.asarray(expert[i]), np.asarray(model[i])
            counts = image_counts(e, m, K)
            edges = empty_edges
            if boundary:
                t1 = time.perf_counter()
                edges = boundary_counts(e, m, K, 2)
                boundary_s += time.perf_counter() - t1
            detail.append((i, counts, edges))
        n = len(detail)
        batch = ScoredBatch(
            np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 2)), detail=detail
        )
        state = acc.update(state, batch)
    t2 = time.perf_counter()
    found = acc.finalize(state)
    finalize_s = time.perf_counter() - t2
    seconds = time.perf_counter() - t0
    out = {
        "s": seconds,
        "boundary_s": boundary_s,
        "finalize_s": finalize_s,
        "iou": [found.per_class[label]["iou"].value for label in labels],
        "accuracy": found.metrics["pixel_accuracy"].value,
    }
    (folder / "assay.json").write_text(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1_000)
    parser.add_argument("--boundary", action="store_true")
    parser.add_argument("--intervals", action="store_true")
    parser.add_argument("--run", choices=["numpy", "assay"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run == "numpy":
        run_numpy(args.folder)
        return
    if args.run == "assay":
        run_assay(args.folder, args.boundary, args.intervals)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(args.images, folder)
        print(
            f"{args.images:,} masks of {SIDE}x{SIDE}, {K} classes (expert and model, uint8, memory-mapped)"
        )
        rows = {}
        for tool in ("numpy", "assay"):
            extra = (["--boundary"] if args.boundary else []) + (
                ["--intervals"] if args.intervals else []
            )
            command = [sys.executable, __file__, "--run", tool, "--folder", str(folder)]
            _, peak = run_measured(command + (extra if tool == "assay" else []))
            rows[tool] = (json.loads((folder / f"{tool}.json").read_text()), peak)
        assay_s = rows["assay"][0]["s"]
        for tool, (found, peak) in rows.items():
            ratio = "" if tool == "assay" else f"  reference/Assay {found['s'] / assay_s:.2f}"
            print(f"  {tool:6s} {found['s']:7.2f} s  peak {peak:6.0f} MiB{ratio}")
        a = rows["assay"][0]
        if args.boundary:
            print(f"  of which Assay's boundary F1: {a['boundary_s']:.2f} s")
        if args.intervals:
            print(f"  of which Assay's finalize with intervals: {a['finalize_s']:.2f} s")
        diff = np.abs(np.array(a["iou"]) - np.array(rows["numpy"][0]["iou"])).max()
        print(
            f"  largest per-class IoU difference: {diff:.2e}; pixel accuracy difference: {abs(a['accuracy'] - rows['numpy'][0]['accuracy']):.2e}"
        )


if __name__ == "__main__":
    main()
