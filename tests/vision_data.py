"""Generated vision datasets with known answers: grey plates with bright square defects.

Each image is 64x64 grey (value 128 with noise); a defect is a bright 16-pixel square at a
multiple of 4 pixels, so that a detector on a 16-pixel grid finds some exactly, some at IoU 0.6
and misses the rest.
Boxes go into a COCO file; masks into PNGs (pixel = class index, 0 background).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIZE = 64


def plates(n: int, seed: int = 0, max_defects: int = 2) -> list[dict[str, Any]]:
    """Per image: pixels [64, 64] uint8, boxes [[x, y, w, h]], mask [64, 64] uint8."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pixels = np.clip(rng.normal(128, 4, (SIZE, SIZE)), 0, 255)
        mask = np.zeros((SIZE, SIZE), np.uint8)
        boxes = []
        for _ in range(int(rng.integers(0, max_defects + 1))):
            side = 16
            x, y = (4 * int(v) for v in rng.integers(0, (SIZE - side) // 4 + 1, 2))
            pixels[y : y + side, x : x + side] = 230
            mask[y : y + side, x : x + side] = 1
            boxes.append([x, y, side, side])
        out.append(
            {
                "name": f"plate_{i:04d}.png",
                "pixels": pixels.astype(np.uint8),
                "boxes": boxes,
                "mask": mask,
            }
        )
    return out


def write_coco(folder: Path, items: list[dict[str, Any]], category: str = "spot") -> Path:
    """Images in ``folder/images`` and ``folder/instances.json``."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for k, item in enumerate(items):
        Image.fromarray(item["pixels"]).save(folder / "images" / item["name"])
        images.append(
            {"id": k + 1, "file_name": f"images/{item['name']}", "width": SIZE, "height": SIZE}
        )
        for b in item["boxes"]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k + 1,
                    "category_id": 1,
                    "bbox": b,
                    "area": b[2] * b[3],
                    "iscrowd": 0,
                }
            )
    path = folder / "instances.json"
    path.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": category}],
            }
        )
    )
    return path


def reference_image() -> np.ndarray:
    """A good plate's grey level, 0..1: what the generated models compare against."""
    return np.full((SIZE, SIZE), 128 / 255, np.float32)


def write_mask_manifest(
    folder: Path, items: list[dict[str, Any]], labels: dict[str, str] | None = None
) -> Path:
    """Images, masks (PNG, pixel = class index) and ``manifest.csv`` with path, mask, label and a
    ``line`` column of metadata."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    lines = ["path,mask,label,line"]
    for k, item in enumerate(items):
        Image.fromarray(item["pixels"]).save(folder / "images" / item["name"])
        Image.fromarray(item["mask"]).save(folder / "masks" / item["name"])
        label = (labels or {}).get(item["name"]) or ("defect" if item["boxes"] else "good")
        lines.append(f"images/{item['name']},masks/{item['name']},{label},L{k % 2}")
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path
