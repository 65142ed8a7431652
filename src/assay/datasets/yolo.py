"""Importer for YOLO detection folders: ``classes.txt``, ``images/`` and ``labels/``.

Every image under ``images/`` (subfolders such as ``train/`` and ``val/`` included) is an item;
its boxes are the lines of the text file with the same relative path under ``labels/``
(``<class index> <x centre> <y centre> <width> <height>``, fractions of the image's size), and
an image without one has no box, as YOLO means it. The boxes are stored in pixels, in the same
``boxes`` column as COCO files (name, x, y, width, height, area, iscrowd), which needs each
image's size: read from its header, without decoding it. The image-level label is "defect" when
the image holds a box, else "good". A line that is not five numbers, a class index beyond
``classes.txt`` or a fraction outside 0..1 is refused with the file and line it is on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from PIL import Image

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.boxes import BOX
from assay.datasets.coco import DEFECT, GOOD
from assay.datasets.images import is_image_file
from assay.datasets.registry import Reader, ReadOptions, register_reader
from assay.datasets.source import DatasetSource


def _detect(path: Path) -> bool:
    return (
        path.is_dir()
        and (path / "classes.txt").is_file()
        and (path / "images").is_dir()
        and (path / "labels").is_dir()
    )


def _boxes(label_file: Path, names: list[str], size: tuple[int, int]) -> list[dict[str, Any]]:
    width, height = size
    out = []
    for number, line in enumerate(label_file.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{label_file}:{number}"
        fields = line.split()
        if len(fields) != 5:
            raise InputError(f"{where}: a box is '<class> <x> <y> <width> <height>', not {line!r}")
        try:
            index = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            raise InputError(f"{where}: {line!r} holds something that is not a number") from None
        if not 0 <= index < len(names):
            raise InputError(f"{where}: class {index} is not in classes.txt ({len(names)} classes)")
        if not all(math.isfinite(v) and 0 <= v <= 1 for v in (cx, cy, w, h)):
            raise InputError(f"{where}: coordinates are fractions of the image, 0 to 1: {line!r}")
        x, y = (cx - w / 2) * width, (cy - h / 2) * height
        out.append(
            {
                "name": names[index],
                "x": x,
                "y": y,
                "width": w * width,
                "height": h * height,
                "area": w * width * h * height,
                "iscrowd": False,
            }
        )
    return out


def open_yolo(path: Path, options: ReadOptions) -> DatasetSource:
    """Every image under ``images/`` with the boxes of its label file."""
    if not _detect(path):
        raise InputError(f"{path}: a YOLO folder needs classes.txt, images/ and labels/")
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to a YOLO folder")
    root = path.resolve()
    names = [n.strip() for n in (root / "classes.txt").read_text().splitlines() if n.strip()]
    if not names:
        raise InputError(f"{root / 'classes.txt'} names no class")
    images = sorted(p for p in (root / "images").rglob("*") if is_image_file(p))
    label_files = sorted((root / "labels").rglob("*.txt"))
    stems = {p.relative_to(root / "labels").with_suffix("").as_posix(): p for p in label_files}

    def batches() -> Iterator[pa.RecordBatch]:
        ids, labels, paths, boxes = [], [], [], []
        for image in images:
            key = image.relative_to(root / "images").with_suffix("").as_posix()
            found: list[dict[str, Any]] = []
            if key in stems:
                try:
                    with Image.open(image) as opened:
                        size = opened.size
                except OSError as exc:
                    raise InputError(f"{image}: not a readable image ({exc})") from None
                found = _boxes(stems[key], names, size)
            ids.append(image.relative_to(root).as_posix())
            labels.append(DEFECT if found else GOOD)
            paths.append(str(image))
            boxes.append(found)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids, pa.string()),
                pa.array(labels, pa.string()),
                pa.array(paths, pa.string()),
                pa.array(boxes, pa.list_(BOX)),
                pa.array([len(b) for b in boxes], pa.int32()),
            ],
            names=[cols.ITEM_ID, cols.LABEL, cols.PATH, "boxes", "n_boxes"],
        )

    image_keys = {p.relative_to(root / "images").with_suffix("").as_posix() for p in images}
    orphans = sorted(set(stems) - image_keys)
    notes = (
        [f"{len(orphans)} label file(s) have no image, e.g. {orphans[0]}.txt"] if orphans else []
    )
    return DatasetSource(
        "yolo",
        "image",
        root,
        [root / "classes.txt", *label_files],
        batches,
        {"classes": names},
        notes,
    )


register_reader(
    Reader(
        name="yolo",
        description="YOLO detection folder (classes.txt, images/, labels/*.txt)",
        detect=_detect,
        open=open_yolo,
        priority=20,
    )
)
