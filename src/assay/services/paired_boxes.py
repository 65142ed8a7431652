"""box_deltas: a detector's COCO numbers against the baseline's, with paired image-bootstrap
intervals.

Both runs wrote their boxes (``predictions.parquet``, in the stored image's pixels) and the
dataset holds the experts'. The images both models judged are evaluated again for each model,
as the runs did (``CocoBoxEvaluation``), and one set of image draws resamples both: a replicate
of the change is the candidate's number minus the baseline's on the same resampled images,
which keeps what the two share (the same hard images) out of the interval. The draws may also
hold, per class, half an image whose box the candidate misses where the baseline finds it, and
half the reverse (``CocoBoxEvaluation.with_pseudo_images``): a sample shows only the misses it
holds.

A run keeps each class's 100 best boxes per image, what COCO's largest ``maxDets`` reads, so the
boxes evaluated here are the boxes the run scored. Runs from before kept the 100 best of all
classes: where an image's may have been cut, no change is given. Nor is an interval below
``MIN_IMAGES`` images (per class: images holding its boxes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from assay.core.comparison import OVERALL, Delta
from assay.core.errors import InputError
from assay.core.intervals import (
    MIN_IMAGES,
    IntervalConfig,
    multinomial_chunks,
    percentile_interval,
    pseudo_shares,
)
from assay.core.tasks.detection.matching import MAX_DETECTIONS
from assay.core.tasks.detection.mean_ap import (
    COCO_SUMMARY,
    REPLICATE_CHUNK,
    CocoBoxEvaluation,
    DetectionImage,
)
from assay.core.tasks.detection.task import ExpertBoxes
from assay.datasets import columns as cols
from assay.datasets.boxes import BOXES, expert_boxes


def box_deltas(
    candidate: Path,
    baseline: Path,
    manifest: Path,
    labels: tuple[str, ...],
    config: IntervalConfig,
) -> dict[str, Delta]:
    """``map``, the other summary numbers and each class's ``ap``, ``ap_50`` and ``ar_100``:
    candidate minus baseline on the images both judged, with paired intervals."""
    wanted = ["item_id", "correct", "boxes"]
    cand = pq.read_table(candidate, columns=wanted)
    base = pq.read_table(baseline, columns=wanted)
    truth = pq.read_table(manifest, columns=[cols.ITEM_ID, BOXES])
    ids = cand.column("item_id").to_pylist()
    if ids != base.column("item_id").to_pylist() or [
        str(i) for i in truth.column(cols.ITEM_ID).to_pylist()
    ] != [str(i) for i in ids]:
        raise InputError("the two runs and the dataset list different items")
    judged = np.array(
        [
            a is not None and b is not None
            for a, b in zip(
                cand.column("correct").to_pylist(), base.column("correct").to_pylist(), strict=True
            )
        ],
        bool,
    )
    experts = expert_boxes(truth.column(BOXES), labels)
    rows = [i for i in np.flatnonzero(judged).tolist() if isinstance(experts[i], ExpertBoxes)]
    if not rows:
        return {}
    evaluation = CocoBoxEvaluation(labels)
    index = {label: k for k, label in enumerate(labels)}
    states = []
    for table in (cand, base):
        boxes = table.column("boxes").to_pylist()
        if any(_maybe_cut(boxes[i] or []) for i in rows):
            # Written before runs kept each class's 100 best: some boxes the run scored may be
            # missing, and an estimate here could be far from the run's own (a baseline at
            # mAP 1.0 read as 0.0). No change is given rather than a wrong one.
            return {}
        images = [_image(i, experts[i], boxes[i] or [], index) for i in rows]
        states.append(evaluation.update(evaluation.empty(), images))
    orders = np.array(rows, np.int64)
    points = [_points(evaluation.finalize(s), labels) for s in states]
    # The resamples may draw, per class, half an image whose box the candidate misses where the
    # baseline finds it first, and half the reverse (``CocoBoxEvaluation.with_pseudo_images``):
    # two detectors right on every image of a sample said "no change" in every resample.
    first = int(orders[-1]) + 1
    (cand_state, more), (base_state, _) = (
        evaluation.with_pseudo_images(states[0], first, missed_first=True),
        evaluation.with_pseudo_images(states[1], first, missed_first=False),
    )
    every = np.r_[orders, more]
    parts: tuple[dict[str, list[Any]], dict[str, list[Any]]] = ({}, {})
    # A class's numbers with its own half images; the summary numbers with one budget the
    # classes share (``pseudo_shares``).
    for spread in (False, True):
        shares = pseudo_shares(orders.size, more.size, more.size // 2 if spread else 1)
        salt = f"paired:coco_boxes{':spread' if spread else ''}"
        for draws in multinomial_chunks(
            shares, config, salt, total=orders.size, chunk=REPLICATE_CHUNK
        ):
            for side, state in zip(parts, (cand_state, base_state), strict=True):
                found = evaluation.replicates(state, every, draws.astype(np.float64))
                for name, values in found.items():
                    if ("[" not in name) == spread:
                        side.setdefault(name, []).append(values)
    reps = [{name: np.concatenate(v) for name, v in side.items()} for side in parts]
    # Images that hold a class's boxes: below MIN_IMAGES the bootstrap's spread means little
    # (both detectors right on two images give [0, 0]).
    with_class = {label: len(states[0].gt_per_image[k]) for k, label in enumerate(labels)}
    out = {}
    for name, reps_c in reps[0].items():
        vc, vb = points[0].get(name), points[1].get(name)
        change = reps_c - reps[1][name]
        low, high = percentile_interval(change, config.confidence)
        delta = None if vc is None or vb is None else vc - vb
        label = name[name.index("[") + 1 : -1] if "[" in name else None
        enough = (with_class[label] if label is not None else len(rows)) >= MIN_IMAGES
        defined = delta is not None and np.isfinite(low) and np.isfinite(high) and enough
        out[name] = Delta(
            name,
            OVERALL,
            vb,
            vc,
            delta,
            float(low) if defined else None,
            float(high) if defined else None,
            change if defined else np.empty(0),
            len(rows),
        )
    return out


def _maybe_cut(boxes: list[dict[str, Any]]) -> bool:
    """Whether an image's stored boxes may have been cut across classes: runs from before each
    class's 100 best were kept stored the 100 best of all classes."""
    return len(boxes) == MAX_DETECTIONS[-1] and len({b.get("name") for b in boxes}) > 1


def _image(
    order: int, truth: ExpertBoxes, boxes: list[dict[str, Any]], index: dict[str, int]
) -> DetectionImage:
    kept = [b for b in boxes if b.get("name") in index]
    return DetectionImage(
        order,
        truth.boxes,
        truth.classes,
        np.array([[b["x"], b["y"], b["width"], b["height"]] for b in kept], np.float64).reshape(
            -1, 4
        ),
        np.array([b["score"] for b in kept], np.float64),
        np.array([index[str(b["name"])] for b in kept], np.int64),
        truth.areas,
        truth.crowd,
    )


def _points(values: dict[str, Any], labels: tuple[str, ...]) -> dict[str, float | None]:
    out: dict[str, float | None] = {name: values[name] for name in COCO_SUMMARY}
    for label in labels:
        per = values["per_class"][label]
        for name in ("ap", "ap_50", "ar_100"):
            out[f"{name}[{label}]"] = per[name]
    return out
