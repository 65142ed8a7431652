"""ScoredBatch: the judged items of one batch, as the accumulators see them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ScoredBatch:
    """Expert labels, class probabilities and predictions of judged items, index-aligned.

    ``y_true`` and ``y_pred`` are class indices into the model's labels; ``scores`` holds one
    probability per class (rows sum to one). Items that could not be judged never appear here:
    they are recorded, with their reason, in the predictions file instead.
    """

    y_true: npt.NDArray[np.int64]
    y_pred: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    # Any sequence: accumulators index it only for the few items they keep (gallery examples), so
    # engines pass lazy views instead of building a Python string per item.
    item_ids: Sequence[str] = ()
    # Per-item reference (e.g. an image path) kept only for galleries of examples.
    refs: Sequence[str | None] = ()
    # Per judged item, what the task's own accumulators read (detection: the image's expert and
    # model boxes); empty for classification.
    detail: Sequence[Any] = ()

    def __post_init__(self) -> None:
        n = len(self.y_true)
        if len(self.y_pred) != n or self.scores.shape[0] != n:
            raise ValueError("y_true, y_pred and scores must have the same length")
        if self.scores.ndim != 2:
            raise ValueError("scores must be a 2-d array [items, classes]")

    @property
    def n_items(self) -> int:
        return len(self.y_true)

    @property
    def n_classes(self) -> int:
        return int(self.scores.shape[1])

    @property
    def confidence(self) -> npt.NDArray[np.float64]:
        """Score of the predicted class for each item."""
        return self.scores[np.arange(self.n_items), self.y_pred]


class Picked(Sequence[str]):
    """The items of ``source`` at ``index``, looked up only when asked for (a lazy ``take``)."""

    def __init__(self, source: Sequence[str], index: npt.NDArray[np.int64]) -> None:
        self._source = source
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._source[int(j)] for j in self._index[i]]
        return self._source[int(self._index[i])]


def make_batch(
    y_true: npt.ArrayLike,
    scores: npt.ArrayLike,
    y_pred: npt.ArrayLike | None = None,
    item_ids: tuple[str, ...] = (),
    refs: tuple[str | None, ...] = (),
) -> ScoredBatch:
    """Convenience constructor: predictions default to the argmax of the scores."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s.reshape(0, 0) if s.size == 0 else s[:, None]
    pred = np.argmax(s, axis=1) if y_pred is None else np.asarray(y_pred)
    return ScoredBatch(
        y_true=np.asarray(y_true, dtype=np.int64),
        y_pred=pred.astype(np.int64),
        scores=s,
        item_ids=item_ids,
        refs=refs,
    )
