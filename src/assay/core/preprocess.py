"""Image tensors from decoded pixels, as the spec's scale, mean, std and layout say."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from assay.core.spec import ImageInput


def image_tensor(pixels: npt.NDArray[np.uint8], spec: ImageInput) -> npt.NDArray[np.float32]:
    """[N, H, W, C] uint8 pixels -> float32 tensor: (pixel * scale - mean) / std, in spec layout."""
    x = pixels.astype(np.float32) * np.float32(spec.scale)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    x = (x - mean) / std
    if spec.layout == "NCHW":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x
