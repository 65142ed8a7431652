"""label_regions: the defect regions of an expert mask, as the MVTec AD evaluation finds them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def label_regions(mask: npt.NDArray[np.generic]) -> npt.NDArray[np.int64]:
    """Connected regions of a mask's nonzero pixels, 8-connected (diagonal neighbours join a
    region), numbered 1..n; 0 for good pixels."""
    from scipy.ndimage import label

    labelled, _ = label(np.asarray(mask) != 0, structure=np.ones((3, 3), dtype=int))
    return np.asarray(labelled, dtype=np.int64)
