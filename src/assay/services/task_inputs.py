"""What each task reads from a dataset beside the image: the decoder, its columns, the checks.

Classification reads the label column; detection the ``boxes`` column; segmentation and anomaly
the ``mask`` column (a PNG path per image). Local and Spark passes build their decoders here, so
both read the same things the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from assay.analysis.regions import label_regions
from assay.core.errors import InputError
from assay.core.records import DatasetVersion
from assay.core.spec import (
    ImageInput,
    ModelSpec,
    RecordedInput,
    TabularInput,
    is_good_name,
    label_key,
)
from assay.datasets import columns as cols
from assay.datasets.boxes import BOXES, box_classes, expert_boxes
from assay.datasets.coco_masks import SEGMENTS, segment_masks
from assay.datasets.features import TabularBatchDecoder, check_feature_columns
from assay.datasets.images import Expectation, ImageBatchDecoder
from assay.datasets.items import ItemBatchDecoder
from assay.datasets.masks import expert_masks
from assay.datasets.tables import MISSING_TEXT
from assay.store.manifests import manifest_schema, read_manifest


def _spelling_hint(uncovered: list[str], labels: tuple[str, ...], found: list[str]) -> str:
    """When the classes differ only in how they are written (a Parquet bool column reads
    ``false``, YAML's unquoted ``false`` reads ``False``; a float column ``1``, a CSV ``1.0``),
    the spec's labels as the dataset writes them. Labels are matched as written: stored
    datasets and runs keep theirs."""
    theirs = {label_key(label): label for label in found}
    if any(label_key(u) not in {label_key(x) for x in labels} for u in uncovered):
        return ""  # another class, not another spelling (case and spaces aside too)
    spelt = [theirs.get(label_key(label), label) for label in labels]
    return (
        " (the same classes written otherwise: give the spec labels: ["
        + ", ".join(f"'{label}'" for label in spelt)
        + "], quoted)"
    )


def check_good_class(spec: ModelSpec, dataset: DatasetVersion) -> None:
    """An anomaly model counts every label but the spec's good class as a defect: a dataset
    that writes the good class otherwise (``OK`` for ``good``) had its good items counted as
    defects, and a model right on every image missed half the 'defects' (a review). Refused
    when the good class is absent but a label reads as good."""
    good = spec.negative or spec.labels[0]
    found = [str(label) for label in dataset.label_counts]
    if good in found:
        return
    alike = [f for f in found if label_key(f) == label_key(good) or is_good_name(f)]
    if alike:
        raise InputError(
            f"dataset {dataset.ref} has no item labelled {good!r}, the model's good class, but "
            f"{alike[0]!r} reads as good: every such item would count as a defect; name the "
            f"good class as the dataset writes it (good: {alike[0]!r} in the spec)"
        )


def _missing_hint(uncovered: list[str]) -> str:
    """When a label is a word a CSV writes for a missing value: read as a class name, never as
    missing (a class "NA" must not vanish from the counts), so say how to leave one out."""
    words = set(MISSING_TEXT.to_pylist())
    said = [u for u in uncovered if u in words]
    if not said:
        return ""
    return (
        f" ({', '.join(repr(u) for u in said)} in a label column is a class name, not a missing "
        "label: leave the field empty for an item without one)"
    )


def _boxes(labels: tuple[str, ...], batch: pa.RecordBatch, pool: ThreadPoolExecutor) -> list[Any]:
    return expert_boxes(batch.column(BOXES), labels)


def _masks(
    labels: tuple[str, ...], background: int, batch: pa.RecordBatch, pool: ThreadPoolExecutor
) -> list[Any]:
    """Segmentation masks: the manifest's PNGs, or a COCO file's segmentations drawn."""
    if cols.MASK in batch.schema.names:
        return expert_masks(batch, pool)
    return segment_masks(batch, labels, background, pool)


def _regions(batch: pa.RecordBatch, pool: ThreadPoolExecutor) -> list[Any] | None:
    """Anomaly masks as numbered defect regions (8-connected), or why not (None: the dataset
    has no masks)."""
    names = batch.schema.names
    if cols.MASK not in names:
        if SEGMENTS not in names:
            return None
        drawn = segment_masks(batch, None, 0, pool)
        return [m if isinstance(m, str) else label_regions(m) for m in drawn]

    def one(mask: Any) -> Any:
        return mask if isinstance(mask, str) else label_regions(mask)

    return list(pool.map(one, expert_masks(batch, pool)))


def task_columns(spec: ModelSpec, schema: pa.Schema | None = None) -> list[str]:
    """The manifest columns the task reads beside id, label, path and digest."""
    if spec.task == "detection":
        return [BOXES]
    if spec.task in ("segmentation", "anomaly"):
        present = schema.names if schema is not None else [cols.MASK, cols.MASK_SHA256]
        if cols.MASK not in present and SEGMENTS in present:
            return [SEGMENTS, "image_width", "image_height"]
        # The images' sizes: a mask of other proportions than its image's is not judged.
        sizes = ["image_width", "image_height"] if schema is not None else []
        return [c for c in (cols.MASK, cols.MASK_SHA256, *sizes) if c in present]
    return []


def decoder_factory(
    spec: ModelSpec, masks: bool = True
) -> Callable[[], ImageBatchDecoder | TabularBatchDecoder | ItemBatchDecoder]:
    """Makes the pass's decoder (once per Spark task, once locally); ``masks`` False: without
    the anomaly masks (the manifest has none, or they are not needed)."""
    if isinstance(spec.input, TabularInput):
        return partial(TabularBatchDecoder, spec.input, spec.labels)
    expect = expectation(spec, masks)
    if isinstance(spec.input, RecordedInput):
        return partial(ItemBatchDecoder, spec.labels, expect)
    return partial(ImageBatchDecoder, spec.input, spec.labels, None, expect)


def expectation(spec: ModelSpec, masks: bool = True) -> Expectation | None:
    """What the task reads of a manifest batch beside the images (the experts' boxes, masks or
    defect regions per row), None for classification; ``masks`` False: no anomaly regions."""
    if spec.task == "detection":
        return partial(_boxes, spec.labels)
    if spec.task == "segmentation":
        background = spec.labels.index(spec.negative) if spec.negative else 0
        return partial(_masks, spec.labels, background)
    if spec.task == "anomaly" and masks and spec.output.map is not None:
        return _regions
    return None


def decoder_columns(spec: ModelSpec, schema: pa.Schema) -> list[str]:
    """The manifest columns the pass reads."""
    if isinstance(spec.input, TabularInput):
        return [cols.ITEM_ID, cols.LABEL, *spec.input.columns]
    if isinstance(spec.input, ImageInput) or cols.PATH in schema.names:
        return [cols.ITEM_ID, cols.LABEL, cols.PATH, cols.SHA256, *task_columns(spec, schema)]
    return [cols.ITEM_ID, cols.LABEL]  # a table judged on recorded predictions


def check_compatible(spec: ModelSpec, dataset: DatasetVersion) -> None:
    """Raise InputError when the model cannot be judged on this dataset at all."""
    if isinstance(spec.input, ImageInput) and dataset.kind != "image":
        raise InputError(f"the model takes images but dataset {dataset.ref} is a table")
    schema = manifest_schema(Path(dataset.manifest_path))
    if spec.task == "detection":
        if BOXES not in schema.names:
            raise InputError(
                f"dataset {dataset.ref} has no expert boxes (a {BOXES!r} column): register a "
                "COCO file, a YOLO folder or Pascal VOC annotations for a detection model"
            )
        found: set[str] = set()
        for batch in read_manifest(Path(dataset.manifest_path), 65_536, [BOXES]):
            found |= box_classes(batch.column(BOXES))
        uncovered = sorted(found - set(spec.labels))
        if uncovered:
            raise InputError(
                f"dataset {dataset.ref} has boxes of classes {uncovered} that the model's "
                f"labels {list(spec.labels)} do not cover"
            )
        return
    if spec.task == "segmentation":
        if cols.MASK not in schema.names and SEGMENTS not in schema.names:
            raise InputError(
                f"dataset {dataset.ref} has no expert masks: register a manifest with a 'mask' "
                "column (a PNG per image, pixel = class index) or a COCO file with "
                "segmentations for a segmentation model"
            )
        if cols.MASK not in schema.names:
            drawn: set[str] = set()
            for batch in read_manifest(Path(dataset.manifest_path), 65_536, [SEGMENTS]):
                drawn |= box_classes(batch.column(SEGMENTS))
            uncovered = sorted(drawn - set(spec.labels))
            if uncovered:
                raise InputError(
                    f"dataset {dataset.ref} has segments of classes {uncovered} that the "
                    f"model's labels {list(spec.labels)} do not cover"
                )
        return  # the image-level label is metadata here, never matched with the pixel classes
    if spec.task == "anomaly":
        check_good_class(spec, dataset)  # any other label is a defect
        return
    uncovered = sorted(set(dataset.label_counts) - set(spec.labels))
    if uncovered:
        raise InputError(
            f"dataset {dataset.ref} has labels {uncovered} that the model's labels "
            f"{list(spec.labels)} do not cover"
            + _spelling_hint(uncovered, spec.labels, list(dataset.label_counts))
            + _missing_hint(uncovered)
        )
    if isinstance(spec.input, TabularInput):
        if dataset.kind != "tabular":
            raise InputError(f"the model takes table rows but dataset {dataset.ref} holds images")
        check_feature_columns(schema, spec.input)
