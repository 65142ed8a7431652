"""task_deltas: a vision task's own numbers against the baseline's, with paired intervals, from
what both runs wrote (``predictions.parquet``) and the dataset's expert annotations.

- detection: the COCO numbers (``services.paired_boxes``);
- segmentation: mean IoU, pixel accuracy, boundary F1, each class's IoU and Dice, from both
  runs' stored masks against the experts' (``core.tasks.segmentation.paired``);
- anomaly: image AUROC, AUPR and F1-max from both runs' raw anomaly scores
  (``core.tasks.anomaly.paired``).

Only the images both runs judged count. A pixel AUROC, AUPRO and region recall have no paired
interval (they would need both models' anomaly maps, which runs do not keep): their change is
given on the estimate only (``POINT_ONLY_CHANGES``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from assay.core.comparison import Delta
from assay.core.errors import InputError
from assay.core.intervals import IntervalConfig
from assay.core.spec import ModelSpec, parse_model_spec
from assay.core.tasks.anomaly.paired import anomaly_changes
from assay.core.tasks.anomaly.task import AnomalyTask
from assay.core.tasks.segmentation.boundary import boundary_counts
from assay.core.tasks.segmentation.paired import segmentation_changes
from assay.core.tasks.segmentation.pixel_confusion import image_counts, tp_fp_fn
from assay.core.tasks.segmentation.task import (
    IGNORE,
    PIXEL_COUNTS,
    SegmentationTask,
    resize_nearest,
)
from assay.datasets import columns as cols
from assay.services.task_inputs import expectation, task_columns
from assay.store.manifests import manifest_schema
from assay.store.predictions import rebatch

CHUNK = 256  # images decoded at once (both models' masks and the expert's)


def task_deltas(
    model_spec: dict[str, Any],
    base_spec: dict[str, Any],
    candidate: Path,
    baseline: Path,
    manifest: Path,
    config: IntervalConfig,
) -> dict[str, Delta]:
    """The task's changes, by metric name (none for classification: ``services.comparison``).
    ``model_spec`` and ``base_spec``: the two runs' models' specs, as their results keep them."""
    task = model_spec.get("task")
    if base_spec.get("task") != task:
        return {}
    if task == "detection":
        from assay.services.paired_boxes import box_deltas

        return box_deltas(candidate, baseline, manifest, tuple(model_spec["labels"]), config)
    if task not in ("segmentation", "anomaly"):
        return {}
    try:
        spec, other = parse_model_spec(model_spec), parse_model_spec(base_spec)
    except InputError:
        return {}  # a spec this version cannot read: no change rather than a wrong one
    if set(spec.labels) != set(other.labels):
        return {}
    if task == "anomaly":
        return anomaly_deltas(spec, candidate, baseline, config)
    return mask_deltas(spec, other, candidate, baseline, manifest, config)


def _both_judged(cand: pa.Table, base: pa.Table) -> npt.NDArray[np.bool_]:
    if cand.column("item_id").to_pylist() != base.column("item_id").to_pylist():
        raise InputError("the two runs list different items; compare runs of the same dataset")
    judged: npt.NDArray[np.bool_] = np.asarray(
        cand.column("correct").is_valid().to_numpy(zero_copy_only=False)
        & base.column("correct").is_valid().to_numpy(zero_copy_only=False),
        bool,
    )
    return judged


def anomaly_deltas(
    spec: ModelSpec, candidate: Path, baseline: Path, config: IntervalConfig
) -> dict[str, Delta]:
    """Image AUROC, AUPR and F1-max changes on the images both runs judged."""
    wanted = ["item_id", "label", "correct", "anomaly_score"]
    cand = pq.read_table(candidate, columns=wanted)
    base = pq.read_table(baseline, columns=wanted)
    judged = _both_judged(cand, base)
    scores = [
        np.asarray(t.column("anomaly_score").to_numpy(zero_copy_only=False), np.float64)
        for t in (cand, base)
    ]
    judged &= np.isfinite(scores[0]) & np.isfinite(scores[1])
    good = AnomalyTask(spec).good
    defective = np.asarray(
        [label is not None and label != good for label in cand.column("label").to_pylist()],
        bool,
    )
    return anomaly_changes(defective[judged], scores[0][judged], scores[1][judged], config)


def _chunks(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    file = pq.ParquetFile(path, pre_buffer=False)
    yield from rebatch(file.iter_batches(batch_size=CHUNK, columns=columns), CHUNK)


def _mask(png: bytes) -> npt.NDArray[Any]:
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img)


def _stored_counts(
    candidate: Path, baseline: Path, k: int
) -> tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]], ...] | None:
    """Both runs' per-image pixel and boundary counts on the images both judged, as the runs
    kept them (``PIXEL_COUNTS``); None where a run kept none for one of them (runs from before,
    or rows reused from one): the masks are then compared again."""
    wanted = ["item_id", "correct", PIXEL_COUNTS]
    if any(PIXEL_COUNTS not in pq.read_schema(path).names for path in (candidate, baseline)):
        return None
    cand = pq.read_table(candidate, columns=wanted)
    base = pq.read_table(baseline, columns=wanted)
    rows = pa.array(np.flatnonzero(_both_judged(cand, base)))
    out = []
    for table in (cand, base):
        column = table.column(PIXEL_COUNTS).take(rows)
        if column.null_count:
            return None
        flat = np.asarray(pc.list_flatten(column).to_numpy(zero_copy_only=False), np.int64)
        if flat.size != len(rows) * k * 7:
            return None
        per_image = flat.reshape(len(rows), 7 * k)
        out.append(
            (per_image[:, : 3 * k].reshape(-1, k, 3), per_image[:, 3 * k :].reshape(-1, k, 4))
        )
    return tuple(out) if len(rows) else None


def mask_deltas(
    spec: ModelSpec,
    base_spec: ModelSpec,
    candidate: Path,
    baseline: Path,
    manifest: Path,
    config: IntervalConfig,
) -> dict[str, Delta]:
    """Mean IoU, pixel accuracy, boundary F1 and each class's IoU and Dice changes, from both
    runs' stored masks against the experts' on the images both judged (streamed: per image,
    counts are kept, never masks). Both models list their classes in the same order (refused
    before: ``check_comparable``), the order the masks' indices follow."""
    if base_spec.labels != spec.labels:
        return {}
    task = SegmentationTask(spec)
    k = len(spec.labels)
    stored = _stored_counts(candidate, baseline, k)
    if stored is not None:
        return segmentation_changes(
            spec.labels, task.tolerance, stored[0], stored[1], config, task.background
        )
    wanted = ["item_id", "correct", "mask"]
    schema = manifest_schema(manifest)
    expect = expectation(spec)
    if expect is None:
        return {}
    counts: tuple[list[Any], list[Any]] = ([], [])
    edges: tuple[list[Any], list[Any]] = ([], [])
    with ThreadPoolExecutor(max_workers=2) as pool:
        for cand, base, truth in zip(
            _chunks(candidate, wanted),
            _chunks(baseline, wanted),
            _chunks(manifest, [cols.ITEM_ID, *task_columns(spec, schema)]),
            strict=True,
        ):
            ids = [str(i) for i in truth.column(cols.ITEM_ID).to_pylist()]
            if ids != [str(i) for i in cand.column("item_id").to_pylist()]:
                raise InputError("the runs and the dataset list different items")
            judged = _both_judged(pa.Table.from_batches([cand]), pa.Table.from_batches([base]))
            rows = np.flatnonzero(judged)
            if not rows.size:
                continue
            experts = expect(truth.take(pa.array(rows)), pool) or []
            masks = [cand.column("mask").to_pylist(), base.column("mask").to_pylist()]
            for j, i in enumerate(rows.tolist()):
                expert = experts[j]
                if not isinstance(expert, np.ndarray) or masks[0][i] is None or masks[1][i] is None:
                    # The dataset's mask changed or went missing since the runs judged it:
                    # the image cannot be counted alike for both.
                    raise InputError(
                        f"item {ids[i]}: its expert mask or a run's mask cannot be read "
                        f"({expert if isinstance(expert, str) else 'no stored mask'})"
                    )
                for side in (0, 1):  # at the expert mask's size, as the runs judged them
                    shape = (int(expert.shape[0]), int(expert.shape[1]))
                    model = resize_nearest(_mask(masks[side][i]), shape)
                    counts[side].append(tp_fp_fn(image_counts(expert, model, k, IGNORE))[None])
                    edges[side].append(
                        boundary_counts(expert, model, k, task.tolerance, IGNORE)[None]
                    )
    if not counts[0]:
        return {}
    return segmentation_changes(
        spec.labels,
        task.tolerance,
        (np.concatenate(counts[0]), np.concatenate(edges[0])),
        (np.concatenate(counts[1]), np.concatenate(edges[1])),
        config,
        task.background,
    )
