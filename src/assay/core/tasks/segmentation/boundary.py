"""Boundary F1 at a tolerance: how well the model's class edges follow the experts'.

A pixel is on a class's boundary when it belongs to the class and a 4-neighbour does not (the
image's own edge is no boundary). A model boundary pixel is
right when an expert boundary pixel of the same class lies within ``tolerance`` pixels
(Chebyshev distance, a square window), and the reverse for recall. The four counts per class add
over images, so the score is mergeable; it is pooled over the dataset's boundary pixels, as
precision and recall of objects are pooled over objects.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


def boundary(mask: B) -> B:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image's own edge does not count)."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    out: B = mask & ~inner
    return out


def dilate(mask: B, radius: int) -> B:
    """Every pixel within ``radius`` (Chebyshev) of a pixel of ``mask``."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for shift in range(1, radius + 1):
            if axis == 0:
                grown[shift:, :] |= out[:-shift, :]
                grown[:-shift, :] |= out[shift:, :]
            else:
                grown[:, shift:] |= out[:, :-shift]
                grown[:, :-shift] |= out[:, shift:]
        out = grown
    return out


def boundary_counts(
    expert: I64, model: I64, n_classes: int, tolerance: int, ignore: int | None = 255
) -> I64:
    """[K, 4] per class: model boundary pixels near an expert one, model boundary pixels,
    expert boundary pixels near a model one, expert boundary pixels (``ignore`` pixels left out)."""
    keep = np.ones(expert.shape, bool) if ignore is None else expert != ignore
    out = np.zeros((n_classes, 4), np.int64)
    for k in range(n_classes):
        e, m = boundary((expert == k) & keep), boundary((model == k) & keep)
        if not (e.any() or m.any()):
            continue
        out[k] = (
            int((m & dilate(e, tolerance)).sum()),
            int(m.sum()),
            int((e & dilate(m, tolerance)).sum()),
            int(e.sum()),
        )
    return out


def boundary_f1(counts: I64 | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per class F1 from [..., K, 4] counts; nan where neither mask has a boundary of the class."""
    near_m, m, near_e, e = (counts[..., i].astype(np.float64) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(m > 0, near_m / m, 0.0)
        recall = np.where(e > 0, near_e / e, 0.0)
        f1 = 2 * precision * recall / (precision + recall)
    f1 = np.where((precision + recall) > 0, f1, 0.0)
    out: npt.NDArray[np.float64] = np.where((m + e) > 0, f1, np.nan)
    return out
