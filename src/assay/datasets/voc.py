"""Importer for Pascal VOC folders: ``Annotations/*.xml`` beside ``JPEGImages/`` (or ``images/``).

Every image of the image folder is an item, paired with the XML of the same stem (an image
without one was not annotated: its boxes are null and it is not judged as a detection). Each
``<object>`` gives a box in the common ``boxes`` column, corners converted to [x, y, width,
height]; an object marked ``<difficult>1`` is kept as a crowd region, which COCO's protocol
leaves out of the count as VOC's evaluation leaves difficult objects out. The image-level label
is "defect" when the image holds a box that is not difficult, else "good". A broken XML, or a
box without its four corners, is refused with the file it is in.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.boxes import BOX, corner_box
from assay.datasets.coco import DEFECT, GOOD
from assay.datasets.images import is_image_file
from assay.datasets.registry import Reader, ReadOptions, register_reader
from assay.datasets.source import DatasetSource

IMAGE_FOLDERS = ("JPEGImages", "images", "Images")


def _image_folder(path: Path) -> Path | None:
    return next((path / name for name in IMAGE_FOLDERS if (path / name).is_dir()), None)


def _detect(path: Path) -> bool:
    return path.is_dir() and (path / "Annotations").is_dir() and _image_folder(path) is not None


def voc_boxes(xml_path: Path) -> list[dict[str, Any]]:
    """The objects of one VOC annotation as BOX rows (difficult ones as crowd regions)."""
    try:
        tree = ET.parse(xml_path)
    except ET.ParseError as exc:
        raise InputError(f"{xml_path}: not a valid VOC annotation ({exc})") from None
    out = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise InputError(f"{xml_path}: an object without its name or bndbox")
        try:
            corners = [float(box.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise InputError(f"{xml_path}: a box corner of {name!r} is not a number") from None
        if not all(math.isfinite(v) for v in corners):
            raise InputError(f"{xml_path}: a box corner of {name!r} is missing or not finite")
        if corners[2] < corners[0] or corners[3] < corners[1]:
            raise InputError(f"{xml_path}: the box of {name!r} needs xmin <= xmax and ymin <= ymax")
        row = corner_box(name, *corners)
        difficult = (obj.findtext("difficult") or "0").strip().lower()
        if difficult not in ("0", "1", "true", "false", ""):
            raise InputError(
                f"{xml_path}: <difficult> of {name!r} is {difficult!r}, not 0 or 1"
            )  # (true and false too: some tools write them)
        row["iscrowd"] = difficult in ("1", "true")
        out.append(row)
    return out


def _annotated_images(images: list[Path], folder: Path, annotations_root: Path) -> dict[Path, Path]:
    """Each image's annotation: the one at the same relative path under Annotations/
    (``JPEGImages/a/x.png`` and ``Annotations/a/x.xml``), else the one of its name stem when
    only one annotation has it. Where two images share a name (a.jpg and a.png), the
    annotation's <filename> says which it describes (both got its boxes, a review found); one
    naming neither is refused, and so are two annotations of one stem an image cannot tell
    apart by its path."""
    xmls = sorted(annotations_root.rglob("*.xml"))
    by_path = {p.relative_to(annotations_root).with_suffix("").as_posix(): p for p in xmls}
    by_stem: dict[str, list[Path]] = {}
    for xml_path in xmls:
        by_stem.setdefault(xml_path.stem, []).append(xml_path)
    wanted: dict[Path, list[Path]] = {}  # annotation -> the images it may describe
    for image in images:
        xml = by_path.get(image.relative_to(folder).with_suffix("").as_posix())
        if xml is None:
            same = by_stem.get(image.stem, [])
            if len(same) > 1:
                raise InputError(
                    f"{annotations_root}: {', '.join(str(p.relative_to(annotations_root)) for p in same)} "
                    f"all annotate images named {image.stem!r}, and {image.relative_to(folder)} "
                    "is at none of their paths"
                )
            xml = same[0] if same else None
        if xml is not None:
            wanted.setdefault(xml, []).append(image)
    out: dict[Path, Path] = {}
    for xml_path, found in wanted.items():
        if len(found) > 1:
            try:
                named = (ET.parse(xml_path).getroot().findtext("filename") or "").strip()
            except ET.ParseError as exc:
                raise InputError(f"{xml_path}: not a valid VOC annotation ({exc})") from None
            fitting = [p for p in found if p.name == Path(named).name]
            if len(fitting) != 1:
                raise InputError(
                    f"{xml_path}: images {', '.join(sorted(p.name for p in found))} share its "
                    f"name, and its <filename> ({named or 'none'}) names "
                    + ("neither" if not fitting else "several")
                )
            found = fitting
        out[found[0]] = xml_path
    return out


def open_voc(path: Path, options: ReadOptions) -> DatasetSource:
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to a Pascal VOC folder")
    root = path.resolve()
    folder = _image_folder(root)
    if folder is None or not (root / "Annotations").is_dir():
        raise InputError(f"{root}: a Pascal VOC folder needs Annotations/ and JPEGImages/")
    images = sorted(p for p in folder.rglob("*") if is_image_file(p))
    annotations = sorted((root / "Annotations").rglob("*.xml"))
    annotated = _annotated_images(images, folder, root / "Annotations")

    def batches() -> Iterator[pa.RecordBatch]:
        ids, labels, paths, boxes, counts = [], [], [], [], []
        for image in images:
            xml = annotated.get(image)
            found = voc_boxes(xml) if xml is not None else None
            ids.append(image.relative_to(root).as_posix())
            paths.append(str(image))
            boxes.append(found)
            counts.append(None if found is None else len(found))
            labels.append(
                None if found is None else DEFECT if any(not b["iscrowd"] for b in found) else GOOD
            )
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids, pa.string()),
                pa.array(labels, pa.string()),
                pa.array(paths, pa.string()),
                pa.array(boxes, pa.list_(BOX)),
                pa.array(counts, pa.int32()),
            ],
            names=[cols.ITEM_ID, cols.LABEL, cols.PATH, "boxes", "n_boxes"],
        )

    missing = sum(1 for p in images if p not in annotated)
    notes = [f"{len(images)} images, {len(annotations)} annotations"]
    notes += [f"{missing} image(s) have no annotation and will not be judged"] if missing else []
    return DatasetSource("voc", "image", root, annotations, batches, {}, notes)


register_reader(
    Reader(
        name="voc",
        description="Pascal VOC folder (Annotations/*.xml and JPEGImages/)",
        detect=_detect,
        open=open_voc,
        priority=15,
    )
)
