"""box_iou: intersection over union of boxes [x, y, width, height], as pycocotools computes it."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]


def box_iou(dt: F, gt: F, crowd: npt.NDArray[np.bool_]) -> F:
    """IoU of every detection with every ground-truth box, [D, G].

    Against a crowd box the union is the detection's own area (a detection inside a crowd region
    is not penalised for covering only part of it). The operations are pycocotools' ``bbIou``
    (maskApi.c), in the same order, so that the values are equal to the last bit.
    """
    if dt.size == 0 or gt.size == 0:
        return np.zeros((len(dt), len(gt)))
    dx, dy, dw, dh = (dt[:, i : i + 1] for i in range(4))
    gx, gy, gw, gh = (gt[None, :, i] for i in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    d_area, g_area = dw * dh, gw * gh
    union = np.where(crowd[None, :], d_area, d_area + g_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou: F = np.where((w > 0) & (h > 0), inter / union, 0.0)
    return iou
