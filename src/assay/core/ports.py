"""Protocols the engines depend on; adapters in runtimes/, datasets/ and store/ implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from assay.core.prepared import PreparedBatch


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as the model declares it (None for a dynamic dimension)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str

    def describe(self) -> str:
        dims = ", ".join("?" if d is None or isinstance(d, str) else str(d) for d in self.shape)
        return f"{self.name}[{dims}] {self.dtype}"


@dataclass(frozen=True)
class ModelSignature:
    """What a loaded model declares: its tensors, and facts about it (runtime, version...)."""

    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [i.describe() for i in self.inputs],
            "outputs": [o.describe() for o in self.outputs],
            **self.extra,
        }


@dataclass(frozen=True)
class ModelBatch:
    """What a runtime is asked to predict: the inputs of a batch's readable items, and their
    ids, by which runtimes that look items up (recorded predictions) find them."""

    inputs: npt.NDArray[np.float32]
    item_ids: Sequence[str]
    # Each item's position in the dataset (its manifest row); None outside a pass.
    positions: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def take(self, start: int, stop: int) -> ModelBatch:
        """Items ``start``..``stop`` (one at a time when a batch failed, pieces of a fixed size)."""
        pos = None if self.positions is None else self.positions[start:stop]
        return ModelBatch(self.inputs[start:stop], self.item_ids[start:stop], pos)

    @classmethod
    def of(cls, inputs: npt.NDArray[np.float32]) -> ModelBatch:
        """Inputs with positional ids, for callers with no items (profiles, smoke tests)."""
        return cls(inputs, [str(i) for i in range(inputs.shape[0])])


@dataclass(frozen=True)
class PartialOutput:
    """A runtime's answer for a batch it could predict only in part: ``outputs`` as usual, with
    placeholders where ``errors`` (position in the batch -> reason) says an item has no answer.
    The engine records those items as not judged with that reason."""

    outputs: Any
    errors: Mapping[int, str]


def model_batch(
    prepared: PreparedBatch, rows: npt.NDArray[np.int64], offset: int | None = None
) -> ModelBatch:
    """The runtime's view of a decoded batch: the readable rows' inputs and ids, and their
    positions in the dataset when the batch's first item is item ``offset``."""
    ids = prepared.item_ids
    if rows.size != len(ids):  # some items unreadable: the ids of the rest (most batches: none)
        ids = [ids[i] for i in rows.tolist()]
    return ModelBatch(prepared.inputs, ids, None if offset is None else rows + offset)


class Runtime(Protocol):
    """A loaded model: one batch in, the raw output the task reads out (an array for
    classification, {role: array} for the other tasks, or a PartialOutput of either)."""

    signature: ModelSignature

    def predict(self, batch: ModelBatch) -> Any: ...

    def close(self) -> None:
        """Release what the runtime holds (connections, threads); most hold nothing."""
        ...


class EmbeddingRuntime(Runtime, Protocol):
    """A runtime that also returns the spec's embedding output, from the same run."""

    def predict_with_embedding(self, batch: ModelBatch) -> tuple[Any, npt.NDArray[np.float32]]: ...


class ReusedOutputs(Protocol):
    """A model's outputs that an earlier run recorded, by position in this pass's dataset
    (incremental validation: see ``assay.services.reuse``)."""

    def has(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of ``positions`` have a recorded output."""
        ...

    def take(self, positions: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], Any]:
        """Which of ``positions`` have a recorded output, and the task's outputs for those
        (in order); the others go through the model."""
        ...


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


class SkippingDecoder(Decoder, Protocol):
    """A decoder that can leave items undecoded when their outputs are reused (images: decoding
    is most of the cost), still checking that each is what was registered. ``skips`` is True."""

    skips: bool

    def __call__(self, batch: Any, skip: npt.NDArray[np.bool_] | None = None) -> PreparedBatch: ...


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
