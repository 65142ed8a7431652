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
    """A YOLO folder: images/ beside labels/, with a file naming the classes (here, or an
    Ultralytics data.yaml one folder up, as a Roboflow split has it), or with nothing else
    beside them and label files in labels/ (opening it then says what it lacks: read as a
    folder of images, its classes were 'images', a review found); or an export whose splits
    (train/, valid/...) are such folders, which opening refuses, naming them."""
    if not path.is_dir():
        return False
    if (path / "images").is_dir() and (path / "labels").is_dir():
        named = any((path / n).is_file() for n in CLASS_FILES) or any(
            (path.parent / n).is_file() for n in CLASS_FILES[1:]
        )
        alone = {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
        return named or (
            alone == {"images", "labels"}
            and next((path / "labels").rglob("*.txt"), None) is not None
        )
    return any((path / n).is_file() for n in CLASS_FILES[1:]) and bool(_splits(path))


def _splits(path: Path) -> list[str]:
    """The subfolders of an export that are YOLO folders themselves (train, valid, test)."""
    return sorted(
        p.name
        for p in path.iterdir()
        if p.is_dir() and (p / "images").is_dir() and (p / "labels").is_dir()
    )


def _class_names(root: Path) -> tuple[list[str], Path]:
    """The class names, by index: classes.txt (one per line), or an Ultralytics data.yaml's
    ``names`` (a list, or a mapping from index to name)."""
    if (root / "classes.txt").is_file():
        file = root / "classes.txt"
        return [n.strip() for n in file.read_text().splitlines() if n.strip()], file
    places = [root / n for n in CLASS_FILES[1:]] + [root.parent / n for n in CLASS_FILES[1:]]
    described = next((p for p in places if p.is_file()), None)
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
    if not isinstance(names, list) or not all(
        isinstance(n, str | int) and not isinstance(n, bool) for n in names
    ):
        raise InputError(
            f"{file}: 'names' must list the class names (or map 0..k-1 to them), quoted where "
            "YAML would read them otherwise ('yes', 'no', 'on', 'off')"
        )
    text = [str(n).strip() for n in names]
    if len(set(text)) < len(text):
        raise InputError(f"{file}: 'names' gives a class name twice")
    assert isinstance(data, dict)
    _check_one_split(root, data, file)
    return text, file


def _check_one_split(root: Path, data: dict[str, Any], file: Path) -> None:
    """Refuse a folder whose data.yaml splits its own images/ into train and val: every image
    under images/ is an item, and the release gate would see the model's training images."""
    inside = []
    for split in ("train", "val", "test"):
        where = data.get(split)
        if not isinstance(where, str):
            continue
        base = Path(str(data.get("path") or file.parent))
        target = (base if base.is_absolute() else file.parent / base) / where
        try:
            target.resolve().relative_to((root / "images").resolve())
        except ValueError:
            continue
        if target.resolve() != (root / "images").resolve():
            inside.append(f"{split}: {where}")
    if len(inside) > 1:
        raise InputError(
            f"{file} splits {root / 'images'} ({', '.join(inside)}): as one dataset it would "
            "hold the training images too; register a folder holding only the split to "
            "validate on (its images/ and labels/)"
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
    if path.is_dir() and not (path / "images").is_dir() and _splits(path):
        raise InputError(
            f"{path}: a YOLO export of {len(_splits(path))} splits ({', '.join(_splits(path))}): "
            f"register the one to validate on, e.g. {path / _splits(path)[-1]}"
        )
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
