"""Synthetic height-map scans of an extruded cable, with process metadata.

Each scan is a 64x64 grayscale height map of a cable running left to right: a cylindrical profile,
extrusion striations along the axis, sensor noise, and at most one defect. The process explains
part of the difficulty, as on a real line: fast lines blur the scan along the axis, camera 3 is
slightly out of focus and lower in contrast, and above 1,800 m/min its scans lose most of their
contrast; hot extruders make lumps more frequent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

CLASSES = ("ok", "lump", "neck-down", "scratch", "inclusion", "void")
PRIORS = (0.40, 0.12, 0.12, 0.12, 0.12, 0.12)
SIZE = 64


@dataclass(frozen=True)
class Scan:
    pixels: npt.NDArray[np.uint8]
    label: str
    metadata: dict[str, object]
    # Where the defect is: the class index (in CLASSES) of each defective pixel, 0 elsewhere.
    mask: npt.NDArray[np.uint8] | None = None


def _blur_x(img: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    if width <= 1:
        return img
    kernel = np.ones(width) / width
    return np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="same"), 1, img)


def _blur(img: npt.NDArray[np.float64], passes: int) -> npt.NDArray[np.float64]:
    for _ in range(passes):
        img = (
            img
            + np.roll(img, 1, 0)
            + np.roll(img, -1, 0)
            + np.roll(img, 1, 1)
            + np.roll(img, -1, 1)
        ) / 5
    return img


def _scan(
    rng: np.random.Generator, label: str, speed: float, camera: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The scan and its defect mask. The mask takes no random draw of its own, so the scans are
    the same with or without it."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    defect = np.zeros((SIZE, SIZE), bool)
    centre = SIZE / 2 + rng.normal(0, 1.5)
    radius = np.full(SIZE, SIZE * 0.36 + rng.normal(0, 0.8))
    extra = np.zeros((SIZE, SIZE))
    if label == "neck-down":
        x0, span = rng.uniform(12, 52), rng.uniform(5, 10)
        full = radius.copy()
        radius = radius - rng.uniform(3.5, 6.5) * np.exp(-(((np.arange(SIZE) - x0) / span) ** 2))
        # The material that is missing: between the nominal and the narrowed surface.
        r = np.abs(y - centre)
        defect = (r < full[None, :]) & (r >= radius[None, :]) & (full - radius > 1.0)[None, :]
    d = (y - centre) / radius[None, :]
    height = np.sqrt(np.clip(1 - d**2, 0, 1))
    striations = np.sin(y * rng.uniform(0.9, 1.4) + rng.uniform(0, 6.3)) * 0.03
    height = height + striations * (np.abs(d) < 1)
    if label == "lump":
        cx, cy, r = rng.uniform(10, 54), centre + rng.normal(0, 5), rng.uniform(2.5, 5.0)
        extra += rng.uniform(0.25, 0.45) * np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r)))
        defect = (x - cx) ** 2 + (y - cy) ** 2 < (1.5 * r) ** 2
    elif label == "scratch":
        x0, x1 = sorted(rng.uniform(2, 62, 2))
        x1 = max(x1, x0 + 22)
        y0 = centre + rng.normal(0, 6)
        slope = rng.normal(0, 0.08)
        on = (x >= x0) & (x <= x1) & (np.abs(y - (y0 + slope * (x - x0))) < 0.8)
        extra -= 0.28 * on
        defect = (x >= x0) & (x <= x1) & (np.abs(y - (y0 + slope * (x - x0))) < 1.5)
    elif label == "inclusion":
        for _ in range(rng.integers(2, 5)):
            cx, cy = rng.uniform(10, 54), centre + rng.normal(0, 6)
            extra -= rng.uniform(0.2, 0.4) * np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / 1.4))
            defect |= (x - cx) ** 2 + (y - cy) ** 2 < 2.5
    elif label == "void":
        cx, cy = rng.uniform(12, 52), centre + rng.normal(0, 5)
        a, b = rng.uniform(3, 6), rng.uniform(2, 3.5)
        defect = (((x - cx) / a) ** 2 + ((y - cy) / b) ** 2) < 1
        extra -= 0.5 * defect
    img = (height + extra * (np.abs(d) < 1.05)) * 0.75 + 0.1
    # Process effects: motion blur grows with line speed; camera 3 is soft and flat.
    img = _blur_x(img, int(1 + max(0.0, speed - 1500) / 140))
    if camera == 3:
        img = _blur(img, 2) * 0.7 + 0.12
        if speed >= 1800:
            # Camera 3's lens fogs at high line speed (vapour from the cooling trough):
            # the scan loses most of its contrast.
            img = _blur(img, 3) * 0.45 + 0.3
    img += rng.normal(0, 0.035, img.shape)
    if label != "neck-down":  # only what lies on the cable: no defect in the air beside it
        defect &= np.abs(d) < 1.05
    mask = np.where(defect, CLASSES.index(label), 0).astype(np.uint8)
    return np.clip(img * 255, 0, 255).astype(np.uint8), mask


def generate_scans(n: int, seed: int, speeds: tuple[float, float] = (1200.0, 2200.0)) -> list[Scan]:
    """``n`` scans with labels and metadata, reproducible from ``seed``; line speeds are drawn
    uniformly from ``speeds`` (m/min)."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 2, 6, 0, 0)
    batches = [f"MB-{seed % 97:02d}{i:02d}" for i in range(8)]
    scans = []
    for i in range(n):
        temp = float(np.round(rng.normal(214, 6), 1))
        priors = np.array(PRIORS)
        if temp > 220:  # hot melt: more lumps
            priors[1] *= 2.0
        label = str(rng.choice(CLASSES, p=priors / priors.sum()))
        camera = int(rng.integers(1, 5))
        speed = float(np.round(rng.uniform(*speeds), 0))
        when = start + timedelta(seconds=int(i * 37 + rng.integers(0, 30)))
        meta = {
            "line": f"L{1 + i % 3}",
            "camera": camera,
            "line_speed": speed,
            "extruder_temp": temp,
            "shift": "ABC"[(when.hour // 8) % 3],
            "material_batch": batches[(i * 8) // max(n, 1)],
            "timestamp": when.isoformat(),
        }
        pixels, mask = _scan(rng, label, speed, camera)
        scans.append(Scan(pixels, label, meta, mask))
    return scans
