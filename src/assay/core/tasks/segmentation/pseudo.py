"""Half images a segmenter misses whole, or draws right: what a handful of images cannot show.

Resampling ten images a segmenter drew perfectly gives ten perfect images every time: an interval
[1, 1] for mean IoU, as if no defect could ever be missed (the image-level form of the perfect
handful the classification intervals smooth with Agresti and Min's half items). The intervals
also resample, beside the images, per defect class (every class but the background) half an
image the model misses whole (the experts' pixels of the class called background) and half one
it draws right: the class's mean pixels and boundary over the images holding it. A single run's
intervals are the hull of the plain resamples' and these (``SegmentationMetrics``); a paired
change draws the candidate's miss against the baseline's hit and the reverse
(``paired.segmentation_changes``). Either way the effect shrinks as the images grow.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F = npt.NDArray[np.float64]


def pseudo_images(
    pixels: I64 | F, edges: I64 | F, background: int
) -> tuple[tuple[F, F], tuple[F, F]]:
    """Per defect class that the experts drew, two images: one the candidate misses whole
    (its pixels called background) where the baseline draws it right, and the reverse. Returns
    ((candidate's pixel counts, boundary counts), (baseline's)), [2 x classes, K, 3 or 4]; a
    single model's are the candidate's (a miss, then a hit, per class)."""
    k = pixels.shape[1]
    drawn = (pixels[..., 0] + pixels[..., 2]) > 0  # [images, K]: the experts' pixels hold it
    rows: tuple[list[F], list[F], list[F], list[F]] = ([], [], [], [])
    for c in range(k):
        if c == background or not drawn[:, c].any():
            continue
        area = float((pixels[drawn[:, c], c, 0] + pixels[drawn[:, c], c, 2]).mean())
        edge = float(edges[drawn[:, c], c, 3].mean())
        missed, right = np.zeros((k, 3)), np.zeros((k, 3))
        missed[c, 2] = area
        missed[background, 1] = area
        right[c, 0] = area
        lost, kept = np.zeros((k, 4)), np.zeros((k, 4))
        lost[c, 3] = edge
        kept[c] = edge
        for cand, base, cand_edges, base_edges in (
            (missed, right, lost, kept),
            (right, missed, kept, lost),
        ):
            rows[0].append(cand)
            rows[1].append(cand_edges)
            rows[2].append(base)
            rows[3].append(base_edges)
    if not rows[0]:
        empty3, empty4 = np.zeros((0, k, 3)), np.zeros((0, k, 4))
        return (empty3, empty4), (empty3, empty4)
    stacked = [np.stack(r) for r in rows]
    return (stacked[0], stacked[1]), (stacked[2], stacked[3])
