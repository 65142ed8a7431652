"""Importer for COCO detection files: ``assay dataset add NAME instances.json``.

Every entry of ``images`` becomes an item: its id is the image's ``file_name``, its path that
name relative to the JSON file's folder. Its expert boxes (``annotations`` with a ``bbox`` of
[x, y, width, height] in pixels, their ``area`` as stated or the box's, and ``iscrowd``) are kept
as a list column ``boxes`` of (name, x, y, width, height, area, iscrowd), with ``n_boxes`` as
metadata. The image-level label is "defect" when the image holds a box that is not a crowd
region and "good" otherwise: the expert's decision for the image, which the item-level
comparison of detectors rests on. Segmentation polygons and RLE are not read yet.

Every reference is checked: an annotation naming an image or category that does not exist, a
box that is not four finite numbers with a non-negative size, or two images with one id or one
file name, is refused with the annotation or image it concerns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.boxes import BOX
from assay.datasets.coco_masks import SEGMENTS
from assay.datasets.registry import Reader, ReadOptions, inside_root, register_reader
from assay.datasets.source import DatasetSource

DEFECT, GOOD = "defect", "good"


# Fields of a COCO image record that are not metadata.
_IMAGE_FIELDS = {
    "id",
    "file_name",
    "width",
    "height",
    "license",
    "coco_url",
    "flickr_url",
    "date_captured",
}


def _detect(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".json"):
        return False
    with path.open("rb") as f:
        head = f.read(1 << 16)
    # COCO files open with info/licenses/images; the annotations may come hundreds of MB later.
    return head.lstrip()[:1] == b"{" and b'"images"' in head


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{where}: {value!r} is not a finite number")
    return float(value)


SEGMENT = pa.struct([("name", pa.string()), ("iscrowd", pa.bool_()), ("segmentation", pa.string())])


def _segmentation(value: Any, where: str) -> str:
    """A segmentation checked for its shape (polygons, or an RLE of counts), kept as JSON."""
    if isinstance(value, list):
        for polygon in value:
            if (
                not isinstance(polygon, list)
                or len(polygon) < 6
                or len(polygon) % 2
                or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                    for v in polygon
                )
            ):
                raise InputError(f"{where}: a segmentation polygon is at least three x, y pairs")
    elif isinstance(value, dict):
        counts, size = value.get("counts"), value.get("size")
        if not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)
            and (
                isinstance(counts, str)
                or (isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts))
            )
        ):
            raise InputError(f"{where}: an RLE segmentation needs counts and size [height, width]")
    else:
        raise InputError(f"{where}: segmentation must be polygons or an RLE")
    return json.dumps(value, separators=(",", ":"))


def _hashable(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _id(value: Any, where: str) -> int | str:
    """An id of the file: a whole number or a string (pycocotools' are numbers)."""
    if not _hashable(value):
        raise InputError(f"{where} {str(value)[:40]!r} is neither a number nor a string")
    return value  # type: ignore[no-any-return]


def _text(value: str, where: str) -> str:
    """Text that can be written (no lone surrogate from a \\ud800 escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: {value[:60]!r} is not valid text (a lone surrogate)") from None
    return value


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON file ({exc})") from None
    except RecursionError:  # arrays nested thousands deep: crafted, never a COCO file
        raise InputError(f"{path}: JSON nested too deeply to be a COCO file") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a COCO file is a JSON object, not a {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{path}: a COCO file needs a list {key!r}")
    return data


def open_coco(path: Path, options: ReadOptions) -> DatasetSource:
    """Every image of the COCO file with its boxes."""
    if options.label_column or options.id_column:
        raise InputError("--label-column and --id-column do not apply to a COCO file")
    json_path = path.resolve()
    root = json_path.parent
    data = _load(json_path)
    categories: dict[Any, str] = {}
    for c in data["categories"]:
        if not isinstance(c, dict) or "id" not in c:
            raise InputError(f"{path}: a category without an id: {str(c)[:80]}")
        key = _id(c["id"], f"{path}: category id")
        if key in categories:
            raise InputError(f"{path}: two categories have the id {key!r}")
        name = c.get("name", key)
        if not isinstance(name, str | int) or isinstance(name, bool) or str(name) == "":
            raise InputError(f"{path}: category {key!r} has no name")
        name = _text(str(name), f"{path}: category {key!r}")
        if name in categories.values():
            raise InputError(f"{path}: two categories are named {name!r}")
        categories[key] = name
    images: dict[Any, str] = {}
    written: dict[str, Any] = {}
    extras: dict[Any, dict[str, Any]] = {}
    for image in data["images"]:
        if not isinstance(image, dict) or "id" not in image:
            raise InputError(f"{path}: an image without an id: {str(image)[:80]}")
        key = _id(image["id"], f"{path}: image id")
        name = image.get("file_name")
        if not isinstance(name, str) or not name:
            raise InputError(f"{path}: image {key!r} has no file_name")
        name = _text(name, f"{path}: image {key!r}")
        if key in images:
            raise InputError(f"{path}: two images have the id {key!r}")
        if str(key) in written:  # 1 and "1": a results file's image_id 1 named both (a review)
            raise InputError(
                f"{path}: two images have the id {key!r} written as {written[str(key)]!r} and "
                f"{key!r}: ids must differ as text"
            )
        written[str(key)] = key
        images[key] = name
        extras[key] = {
            _text(k, f"{path}: image {key!r} field"): _text(v, f"{path}: image {key!r} {k}")
            if isinstance(v, str)
            else v
            for k, v in image.items()
            if k not in _IMAGE_FIELDS and isinstance(v, str | int | float | bool)
        }
    if len(set(images.values())) < len(images):
        raise InputError(f"{path}: two images have the same file_name")
    boxes: dict[Any, list[dict[str, Any]]] = {i: [] for i in images}
    annotation_ids: set[Any] = set()
    segments: dict[Any, list[dict[str, Any]]] = {i: [] for i in images}
    for a in data["annotations"]:
        where = f"{path}: annotation {a.get('id', '?') if isinstance(a, dict) else '?'}"
        if not isinstance(a, dict):
            raise InputError(f"{where} is not an object")
        if "id" in a:
            ann_id = _id(a["id"], f"{path}: annotation id")
            if ann_id in annotation_ids:
                raise InputError(f"{path}: two annotations have the id {ann_id!r}")
            annotation_ids.add(ann_id)
        if not _hashable(a.get("image_id")) or a.get("image_id") not in images:
            raise InputError(f"{where} names image {a.get('image_id')!r}, which is not in images")
        if not _hashable(a.get("category_id")) or a.get("category_id") not in categories:
            raise InputError(
                f"{where} names category {a.get('category_id')!r}, which is not in categories"
            )
        bbox = a.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise InputError(f"{where}: bbox must be [x, y, width, height]")
        x, y, w, h = (_number(v, f"{where} bbox") for v in bbox)
        if w < 0 or h < 0:
            raise InputError(f"{where}: bbox has a negative width or height")
        area = _number(a["area"], f"{where} area") if "area" in a else w * h
        if area < 0:
            raise InputError(f"{where}: area {area} is negative")
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float):
            raise InputError(f"{where}: iscrowd must be 0 or 1, got {crowd!r}")
        if "segmentation" in a:
            segments[a["image_id"]].append(
                {
                    "name": categories[a["category_id"]],
                    "iscrowd": bool(crowd),
                    "segmentation": _segmentation(a["segmentation"], where),
                }
            )
        boxes[a["image_id"]].append(
            {
                "name": categories[a["category_id"]],
                "x": x,
                "y": y,
                "width": w,
                "height": h,
                "area": area,
                "iscrowd": bool(crowd),
            }
        )
    files = {
        image_id: inside_root(root / name, root, f"{path}: image {name!r}", options.allow_outside)
        for image_id, name in images.items()
    }

    # Further scalar fields of the image records (line, camera, shift...) are kept as metadata,
    # in the order they first appear; an image without one has null there.
    metadata = list(dict.fromkeys(k for e in extras.values() for k in e))
    reserved = set(cols.RESERVED) | {"boxes", "n_boxes", SEGMENTS}
    clash = [k for k in metadata if k in reserved]
    if clash:
        raise InputError(f"{path}: image field {clash[0]!r} is a name Assay reserves")

    with_segments = any(segments.values())

    # The images in the order of their ids, as pycocotools takes them (sorted(getImgIds())):
    # it breaks ties of scores across images by that order, and so does the AP here, by the
    # dataset's; in the file's order, AP of scores rounded to 0.1 moved by 0.05 when only the
    # images list was shuffled (a review). Most files list them so already.
    numbers = all(isinstance(i, int) for i in images)
    ordered = sorted(images, key=(lambda i: i) if numbers else str)

    def batches() -> Iterator[pa.RecordBatch]:
        ids = ordered
        per_image = [boxes[i] for i in ids]
        meta = []
        for key in metadata:
            values = [extras[i].get(key) for i in ids]
            try:
                meta.append(pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed or huge: text
                meta.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([images[i] for i in ids], pa.string()),
                pa.array(
                    [DEFECT if any(not b["iscrowd"] for b in bs) else GOOD for bs in per_image],
                    pa.string(),
                ),
                pa.array([str(files[i]) for i in ids], pa.string()),
                pa.array(per_image, pa.list_(BOX)),
                pa.array([len(bs) for bs in per_image], pa.int32()),
                *meta,
                *(
                    [pa.array([segments[i] for i in ids], pa.list_(SEGMENT))]
                    if with_segments
                    else []
                ),
                pa.array([str(i) for i in ids], pa.string()),
            ],
            names=[
                cols.ITEM_ID,
                cols.LABEL,
                cols.PATH,
                "boxes",
                "n_boxes",
                *metadata,
                *([SEGMENTS] if with_segments else []),
                cols.SOURCE_ID,
            ],
        )

    notes = [f"{len(images)} images, {len(data['annotations'])} boxes, {len(categories)} classes"]
    return DatasetSource(
        "coco",
        "image",
        root,
        [json_path],
        batches,
        # Category ids too: a COCO results file names its classes by them.
        {
            "categories": list(categories.values()),
            "category_ids": {str(k): v for k, v in categories.items()},
        },
        notes,
    )


register_reader(
    Reader(
        name="coco",
        description="COCO detection JSON (images, annotations with bbox, categories)",
        detect=_detect,
        open=open_coco,
        priority=20,
    )
)
