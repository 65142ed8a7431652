"""Importer for NEU-DET (steel surface defects): ``IMAGES/<class>_<n>.jpg`` + VOC ``ANNOTATIONS``.

The image-level class is the file-name prefix (the NEU-CLS class). The VOC boxes are kept in
the common ``boxes`` column (``assay.datasets.boxes``) for the detection task, with ``n_boxes`` as
metadata; an image without an annotation file has none (null: not judged as a detection). The
XML is read as any Pascal VOC annotation (``voc.voc_boxes``): an object marked difficult is a
crowd region, left out of the count as VOC's and COCO's protocols leave it out. Images and annotations are paired by file stem, because some XML ``<filename>`` values
lack their extension.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.boxes import BOX
from assay.datasets.images import is_image_file
from assay.datasets.registry import Reader, ReadOptions, register_reader
from assay.datasets.source import DatasetSource
from assay.datasets.voc import voc_boxes

_CLASS = re.compile(r"^(?P<label>.+)_(?P<n>\d+)$")


def _detect(path: Path) -> bool:
    return path.is_dir() and (path / "IMAGES").is_dir() and (path / "ANNOTATIONS").is_dir()


def open_neu_det(path: Path, options: ReadOptions) -> DatasetSource:
    """Every image of ``IMAGES/`` with its class and boxes."""
    if not _detect(path):
        raise InputError(f"{path}: NEU-DET needs IMAGES/ and ANNOTATIONS/ folders")
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to NEU-DET")
    root = path.resolve()
    images = sorted(p for p in (root / "IMAGES").iterdir() if is_image_file(p))
    annotations = {p.stem: p for p in (root / "ANNOTATIONS").glob("*.xml")}
    unmatched = [p.name for p in images if not _CLASS.match(p.stem)]
    if unmatched:
        raise InputError(f"{root}: image {unmatched[0]!r} does not follow <class>_<n>")

    def batches() -> Iterator[pa.RecordBatch]:
        rows: dict[str, list[Any]] = {
            k: [] for k in (cols.ITEM_ID, cols.LABEL, cols.PATH, "boxes", "n_boxes", "annotation")
        }
        for img in images:
            match = _CLASS.match(img.stem)
            assert match is not None
            xml = annotations.get(img.stem)
            boxes = voc_boxes(xml) if xml else None
            rows[cols.ITEM_ID].append(img.relative_to(root).as_posix())
            rows[cols.LABEL].append(match["label"])
            rows[cols.PATH].append(str(img))
            rows["boxes"].append(boxes)
            rows["n_boxes"].append(None if boxes is None else len(boxes))
            rows["annotation"].append(xml.relative_to(root).as_posix() if xml else None)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(rows[cols.ITEM_ID], pa.string()),
                pa.array(rows[cols.LABEL], pa.string()),
                pa.array(rows[cols.PATH], pa.string()),
                pa.array(rows["boxes"], pa.list_(BOX)),
                pa.array(rows["n_boxes"], pa.int32()),
                pa.array(rows["annotation"], pa.string()),
            ],
            names=[cols.ITEM_ID, cols.LABEL, cols.PATH, "boxes", "n_boxes", "annotation"],
        )

    missing = sum(1 for p in images if p.stem not in annotations)
    notes = [f"{missing} image(s) have no annotation"] if missing else []
    return DatasetSource("neu-det", "image", root, sorted(annotations.values()), batches, {}, notes)


register_reader(
    Reader(
        name="neu-det",
        description="NEU-DET steel surface defects (IMAGES/ + VOC ANNOTATIONS/)",
        detect=_detect,
        open=open_neu_det,
        priority=10,
    )
)
