"""Importer for YOLO detection folders: ``classes.txt`` (or an Ultralytics ``data.yaml`` with
``names``), ``images/`` and ``labels/``.

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

CLASS_FILES = ("classes.txt", "data.yaml", "dataset.yaml")  # Darknet's, then Ultralytics'


def _detect(path: Path) -> bool:
    """images/ beside labels/ holding .txt files: a YOLO folder, with or without the file that
    names its classes (without one, opening it says so: read as a folder of images, its
    classes were 'images', a review found)."""
    return (
        path.is_dir()
        and (path / "images").is_dir()
        and (path / "labels").is_dir()
        and (
            any((path / name).is_file() for name in CLASS_FILES)
            or next((path / "labels").rglob("*.txt"), None) is not None
        )
    )


def _class_names(root: Path) -> tuple[list[str], Path]:
    """The class names, by index: classes.txt (one per line), or an Ultralytics data.yaml's
    ``names`` (a list, or a mapping from index to name)."""
    if (root / "classes.txt").is_file():
        file = root / "classes.txt"
        return [n.strip() for n in file.read_text().splitlines() if n.strip()], file
    described = next((root / n for n in CLASS_FILES[1:] if (root / n).is_file()), None)
    if described is None:
        raise InputError(
            f"{root}: a YOLO folder (images/, labels/) needs classes.txt or data.yaml naming "
            "its classes"
        )
    import yaml

    file = described
    if file.stat().st_size > 1 << 20:
        raise InputError(f"{file}: over 1 MiB, not a dataset description")
    try:
        data = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not valid YAML ({type(exc).__name__})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not isinstance(names, list) or not all(isinstance(n, str | int) for n in names):
        raise InputError(f"{file}: 'names' must list the class names (or map 0..k-1 to them)")
    return [str(n).strip() for n in names], file


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
            raise InputError(f"{where}: class {index} is not among the {len(names)} classes named")
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
    if not (path.is_dir() and (path / "images").is_dir() and (path / "labels").is_dir()):
        raise InputError(f"{path}: a YOLO folder needs images/, labels/ and classes.txt")
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to a YOLO folder")
    root = path.resolve()
    names, class_file = _class_names(root)
    if not names:
        raise InputError(f"{class_file} names no class")
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
        [class_file, *label_files],
        batches,
        {"classes": names},
        notes,
    )


register_reader(
    Reader(
        name="yolo",
        description="YOLO detection folder (classes.txt or data.yaml, images/, labels/*.txt)",
        detect=_detect,
        open=open_yolo,
        priority=20,
    )
)
