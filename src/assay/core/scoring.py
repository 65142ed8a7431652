"""From a model's raw output to class probabilities and a predicted class, as the spec says."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError
from assay.core.spec import ModelSpec


def softmax(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def to_probabilities(raw: npt.ArrayLike, spec: ModelSpec) -> npt.NDArray[np.float64]:
    """Turn the model output into an [N, n_classes] float64 probability matrix.

    A binary model may return one column (the positive class, or the logit of it); it is expanded
    to two columns in ``labels`` order.
    """
    out = np.asarray(raw, dtype=np.float64)
    k = spec.n_classes
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise InputError(f"model output has shape {out.shape}; expected [N, {k}]")
    if out.shape[1] == 1 and k == 2:
        col = out[:, 0]
        if spec.output.kind == "logits":
            with np.errstate(over="ignore"):
                col = 1.0 / (1.0 + np.exp(-col))
        else:
            # One column is the positive class's probability: rounding-sized excursions are
            # clipped, anything further outside [0, 1] is no probability (nan: not judged).
            inside = (col >= -NEGATIVE_TOLERANCE) & (col <= 1.0 + NEGATIVE_TOLERANCE)
            col = np.where(inside, np.clip(col, 0.0, 1.0), np.nan)
        pos = 1 if spec.positive_index is None else spec.positive_index
        two = np.empty((out.shape[0], 2), dtype=np.float64)
        two[:, pos] = col
        two[:, 1 - pos] = 1.0 - col
        return two
    if out.shape[1] != k:
        raise InputError(f"model output has {out.shape[1]} columns but the spec lists {k} labels")
    if spec.output.kind == "logits":
        return softmax(out)
    return renormalise(out)


# Float32 arithmetic leaves rounding in probabilities: a forest exported by skl2onnx gives rows like
# [-3.58e-07, 1.0000004]. Entries down to -NEGATIVE_TOLERANCE are rounding (clipped to 0), and rows
# summing to 1 within SUM_TOLERANCE are rescaled to sum to 1. Anything further off is no
# probability: the item is not judged, with that reason.
NEGATIVE_TOLERANCE = 1e-5
SUM_TOLERANCE = 1e-3


def renormalise(probabilities: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Clip rounding-sized negatives, rescale rows to sum to one; rows that are not probabilities
    (an entry below -NEGATIVE_TOLERANCE, a sum off by more than SUM_TOLERANCE, non-finite) are nan."""
    clipped = np.where(
        (probabilities < 0) & (probabilities >= -NEGATIVE_TOLERANCE), 0.0, probabilities
    )
    sums = clipped.sum(axis=1, keepdims=True)
    valid = (np.abs(sums - 1.0) <= SUM_TOLERANCE) & (clipped >= 0).all(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: npt.NDArray[np.float64] = np.where(valid, clipped / sums, np.nan)
    return out


def predict_classes(
    probabilities: npt.NDArray[np.float64], spec: ModelSpec
) -> npt.NDArray[np.int64]:
    """Predicted class index per row: the binary threshold rule when set, else the argmax."""
    if spec.threshold is not None and spec.positive_index is not None:
        pos = spec.positive_index
        positive = probabilities[:, pos] >= spec.threshold
        return np.where(positive, pos, 1 - pos).astype(np.int64)
    out: npt.NDArray[np.int64] = np.argmax(probabilities, axis=1).astype(np.int64)
    return out
