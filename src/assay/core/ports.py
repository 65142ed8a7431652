"""Protocols the engines depend on; adapters in runtimes/, datasets/ and store/ implement them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from assay.core.prepared import PreparedBatch


class Runtime(Protocol):
    """A loaded model: one batch of inputs in, the raw scores output out."""

    def predict(self, inputs: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        """Run the model on a batch; returns the output the spec names (or the only score output)."""
        ...


class EmbeddingRuntime(Runtime, Protocol):
    """A runtime that also returns the spec's embedding output, from the same run."""

    def predict_with_embedding(
        self, inputs: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]: ...


class EmbeddingSink(Protocol):
    """Receives the embedding vectors of misclassified items, with their row in the dataset."""

    def write(
        self, rows: npt.NDArray[np.int64], item_ids: list[str], vectors: npt.NDArray[np.float32]
    ) -> None: ...

    def close(self) -> None: ...


class Decoder(Protocol):
    """Turns one raw dataset batch into model inputs, recording rows it cannot read."""

    def __call__(self, batch: Any) -> PreparedBatch: ...

    def close(self) -> None: ...


class PredictionSink(Protocol):
    """Receives every item's outcome, judged or failed, in stream order."""

    def write(
        self,
        item_ids: Any,
        labels: Any,
        predicted: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
        errors: Mapping[int, str],
        extra: Mapping[str, list[Any]] | None = None,
    ) -> None:
        """``item_ids``/``labels``: lists of str, or the decoder's native columns; ``predicted``:
        class index per item, -1 when there is none; ``scores``: nan rows for failed items;
        ``errors``: position in the batch -> why that item was not judged (most batches: none);
        ``extra``: the task's further columns (``Task.prediction_fields``), a value per item."""
        ...

    def close(self) -> None: ...
