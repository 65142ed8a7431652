"""The expert boxes of a detection dataset: one column ``boxes`` whatever the source format.

Every detection reader (COCO, Pascal VOC as in NEU-DET, YOLO) writes a list of ``BOX`` per image,
[x, y, width, height] in the stored image's pixels with the COCO area and crowd flag. A null
list means the image was not annotated (it is not judged); an empty one, that the experts found
nothing (a good image). ``expert_boxes`` reads them back for the detection task.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.core.tasks.detection.task import ExpertBoxes

BOXES = "boxes"
BOX = pa.struct(
    [
        ("name", pa.string()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("width", pa.float64()),
        ("height", pa.float64()),
        ("area", pa.float64()),
        ("iscrowd", pa.bool_()),
    ]
)


def corner_box(name: str, xmin: float, ymin: float, xmax: float, ymax: float) -> dict[str, Any]:
    """A BOX from corners (Pascal VOC), with its area."""
    w, h = xmax - xmin, ymax - ymin
    return {
        "name": name,
        "x": xmin,
        "y": ymin,
        "width": w,
        "height": h,
        "area": w * h,
        "iscrowd": False,
    }


def expert_boxes(column: pa.Array | pa.ChunkedArray, labels: tuple[str, ...]) -> list[Any]:
    """Per row: its ExpertBoxes (class indices into ``labels``), or why it cannot be judged.

    Reads the current ``BOX`` and the corner boxes (name, xmin, ymin, xmax, ymax) that NEU-DET
    manifests registered before it held."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    index = {label: k for k, label in enumerate(labels)}
    out: list[Any] = []
    for row in column.to_pylist():
        if row is None:
            out.append("the image has no expert annotation")
            continue
        if row and "xmin" in row[0]:
            row = [corner_box(b["name"], b["xmin"], b["ymin"], b["xmax"], b["ymax"]) for b in row]
        unknown = sorted({str(b["name"]) for b in row} - set(index))
        if unknown:
            out.append(f"expert box class {unknown[0]!r} is not one of the model's labels")
            continue
        boxes = np.array([[b["x"], b["y"], b["width"], b["height"]] for b in row], np.float64)
        out.append(
            ExpertBoxes(
                boxes.reshape(-1, 4),
                np.array([index[b["name"]] for b in row], np.int64),
                np.array(
                    [
                        b["area"] if b.get("area") is not None else b["width"] * b["height"]
                        for b in row
                    ],
                    np.float64,
                ),
                np.array([bool(b.get("iscrowd")) for b in row], bool),
            )
        )
    return out


def box_classes(column: pa.Array | pa.ChunkedArray) -> set[str]:
    """Every class name the column's boxes use."""
    values = pa.chunked_array([column]) if isinstance(column, pa.Array) else column
    names: set[str] = set()
    for chunk in values.chunks:
        flat = chunk.flatten()
        if len(flat):
            names.update(n for n in flat.field("name").unique().to_pylist() if n is not None)
    return names


def unfindable_boxes(
    column: pa.Array | pa.ChunkedArray,
    widths: pa.Array | pa.ChunkedArray,
    heights: pa.Array | pa.ChunkedArray,
) -> tuple[int, int]:
    """How many expert boxes (crowd regions aside) lie wholly outside their stored image, and
    how many have no area: no detection can find them, and each counts as a miss, as in
    pycocotools. An image of unknown size (unreadable) is not judged on its position."""
    boxes = pa.chunked_array([column]) if isinstance(column, pa.Array) else column
    lengths = np.asarray(pc.fill_null(pc.list_value_length(boxes), 0).to_numpy(), np.int64)
    flat = pa.concat_arrays([c.flatten() for c in boxes.chunks]) if boxes.num_chunks else None
    if flat is None or len(flat) == 0:
        return 0, 0

    def field(name: str) -> npt.NDArray[np.float64]:
        return np.asarray(flat.field(name).to_numpy(zero_copy_only=False), np.float64)

    x, y, w, h = field("x"), field("y"), field("width"), field("height")
    counted = ~np.asarray(flat.field("iscrowd").fill_null(False).to_numpy(zero_copy_only=False))
    per_box = np.repeat(np.arange(len(lengths)), lengths)
    width = np.repeat(_numbers(widths), lengths)[: per_box.size]
    height = np.repeat(_numbers(heights), lengths)[: per_box.size]
    empty = counted & ~(w * h > 0)
    known = np.isfinite(width) & np.isfinite(height)
    outside = counted & known & ((x >= width) | (y >= height) | (x + w <= 0) | (y + h <= 0))
    return int((outside & ~empty).sum()), int(empty.sum())


def _numbers(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.float64]:
    return np.asarray(pc.fill_null(values.cast(pa.float64()), np.nan).to_numpy(), np.float64)
