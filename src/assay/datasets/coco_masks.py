"""COCO segmentations (polygons and RLE) as masks, exactly as pycocotools rasterises them.

A polygon is drawn the way pycocotools' ``rleFrPoly`` draws it (upsampled five times along its
boundary, then the points where the boundary crosses a pixel column's centre), so that a mask
here is the mask pycocotools' ``annToMask`` gives, pixel for pixel. RLE is read in both of its
forms: a list of counts, or the compressed string (6-bit characters, counts after the third coded
as differences). Runs go down the columns (Fortran order), starting with a run of zeros.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import numpy.typing as npt

B = npt.NDArray[np.bool_]


def decode_rle(counts: list[int] | npt.NDArray[np.int64], h: int, w: int) -> B:
    """The [h, w] mask of run-length ``counts``."""
    runs = np.asarray(counts, dtype=np.int64)
    if (runs < 0).any() or runs.sum() != h * w:
        raise ValueError(f"RLE counts sum to {int(runs.sum())}, not {h} x {w} pixels")
    values = np.zeros(runs.size, bool)
    values[1::2] = True
    flat = np.repeat(values, runs)
    out: B = flat.reshape(w, h).T
    return out


def counts_from_string(s: str) -> list[int]:
    """The counts of a compressed RLE string (pycocotools' ``rleFrString``)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("RLE string ends inside a count")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"RLE string holds {s[p]!r}, not a count character")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def polygon_counts(xy: list[float], h: int, w: int) -> list[int]:
    """The RLE counts of one polygon [x0, y0, x1, y1, ...], as pycocotools' ``rleFrPoly``."""
    scale = 5.0
    k = len(xy) // 2
    x = [int(scale * xy[2 * j] + 0.5) for j in range(k)]
    y = [int(scale * xy[2 * j + 1] + 0.5) for j in range(k)]
    x.append(x[0])
    y.append(y[0])
    u: list[int] = []
    v: list[int] = []
    for j in range(k):
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx else 0.0
            for d in range(dx + 1):
                t = dx - d if flip else d
                u.append(t + xs)
                v.append(int(ys + s * t + 0.5))
        else:
            s = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v.append(t + ys)
                u.append(int(xs + s * t + 0.5))
    starts: list[int] = []
    for j in range(1, len(u)):
        if u[j] == u[j - 1]:
            continue
        xd = u[j] if u[j] < u[j - 1] else u[j] - 1 + 0.0
        xd = (xd + 0.5) / scale - 0.5
        if math.floor(xd) != xd or xd < 0 or xd > w - 1:
            continue
        yd = (v[j] if v[j] < v[j - 1] else v[j - 1]) + 0.0
        yd = (yd + 0.5) / scale - 0.5
        yd = math.ceil(min(max(yd, 0.0), float(h)))
        starts.append(int(xd) * h + int(yd))
    starts.append(h * w)
    starts.sort()
    diffs: list[int] = []
    previous = 0
    for a in starts:
        diffs.append(a - previous)
        previous = a
    counts = [diffs[0]]
    j = 1
    while j < len(diffs):
        if diffs[j] > 0:
            counts.append(diffs[j])
            j += 1
        else:
            j += 1
            if j < len(diffs):
                counts[-1] += diffs[j]
                j += 1
    return counts


def segmentation_mask(segmentation: Any, h: int, w: int) -> B:
    """The mask of a COCO annotation's ``segmentation``: polygons (their union) or an RLE."""
    if isinstance(segmentation, list):
        out = np.zeros((h, w), bool)
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise ValueError("a polygon is a list of at least three x, y pairs")
            out |= decode_rle(polygon_counts([float(v) for v in polygon], h, w), h, w)
        return out
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = segmentation.get("size") or [h, w]
        if [int(size[0]), int(size[1])] != [h, w]:
            raise ValueError(f"RLE of size {list(size)} for an image of {h} x {w}")
        counts = segmentation["counts"]
        runs = counts_from_string(counts) if isinstance(counts, str) else list(counts)
        return decode_rle(runs, h, w)
    raise ValueError("segmentation is neither polygons nor an RLE")


SEGMENTS = "segments"  # the COCO reader's column: per image, its annotations' segmentations


def label_mask(
    segments: list[dict[str, Any]] | None,
    labels: tuple[str, ...],
    background: int,
    h: int,
    w: int,
) -> npt.NDArray[np.uint8] | str:
    """One image's class-index mask from its annotations (in file order, a later one over an
    earlier one; crowd regions 255, left out), or why it cannot be made."""
    if segments is None:
        return "the image has no expert annotation"
    if len(labels) > 255:
        return "more than 255 classes do not fit a mask of bytes"
    index = {label: k for k, label in enumerate(labels)}
    out = np.full((h, w), background, np.uint8)
    crowd = np.zeros((h, w), bool)
    for segment in segments:
        name = segment["name"]
        if name not in index:
            return f"expert segment class {name!r} is not one of the model's labels"
        try:
            mask = segmentation_mask(json.loads(segment["segmentation"]), h, w)
        except (ValueError, TypeError, KeyError) as exc:
            return f"expert segmentation of class {name!r} cannot be drawn ({exc})"
        if segment.get("iscrowd"):
            crowd |= mask
        else:
            out[mask] = index[name]
    out[crowd] = 255
    return out


def segment_masks(
    batch: Any, labels: tuple[str, ...] | None, background: int, pool: Any
) -> list[Any]:
    """Per row of a manifest batch with ``segments``: its mask (class indices in ``labels``; with
    ``labels`` None, 1 wherever any annotation lies, as anomaly masks), or why not. The image's
    size is the one measured from its file at registration."""
    rows = batch.column(SEGMENTS).to_pylist()
    widths = batch.column("image_width").to_pylist()
    heights = batch.column("image_height").to_pylist()

    def one(args: tuple[Any, Any, Any]) -> Any:
        segments, w, h = args
        if w is None or h is None or not (math.isfinite(w) and math.isfinite(h)):
            return "the image's size is unknown (it could not be read at registration)"
        if labels is None:
            if segments is None:
                return "the image has no expert annotation"
            names = tuple(dict.fromkeys(s["name"] for s in segments))
            drawn = label_mask(
                [dict(s, iscrowd=False) for s in segments], ("", *names), 0, int(h), int(w)
            )
            return drawn if isinstance(drawn, str) else (drawn > 0).astype(np.uint8)
        return label_mask(segments, labels, background, int(h), int(w))

    return list(pool.map(one, zip(rows, widths, heights, strict=True)))
