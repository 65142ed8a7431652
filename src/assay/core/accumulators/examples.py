"""Examples of misclassified items: per (expert label, predicted) cell, the most confident errors.

This accumulator carries no metric; it feeds the report's gallery. Its state is bounded (``k``
items per cell) and merges exactly: the top ``k`` of a union is the top ``k`` of the two tops.
Ties on confidence are broken by item id so that any sharding gives the same examples. The full
list of errors always stays in the predictions file; the report says how many it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assay.core.accumulators.base import Finalized
from assay.core.batch import ScoredBatch

Example = tuple[float, str, str | None]  # confidence, item id, reference (e.g. image path)
ExampleState = dict[tuple[int, int], tuple[Example, ...]]


def _top(examples: list[Example], k: int) -> tuple[Example, ...]:
    return tuple(sorted(examples, key=lambda e: (-e[0], e[1]))[:k])


@dataclass(frozen=True)
class ErrorExamplesAccumulator:
    """The ``k`` most confident mistakes of each confusion cell."""

    labels: tuple[str, ...]
    k: int = 24
    name: str = "error_examples"

    def empty(self) -> ExampleState:
        return {}

    def update(self, state: ExampleState, batch: ScoredBatch) -> ExampleState:
        wrong = np.flatnonzero(batch.y_true != batch.y_pred)
        if wrong.size == 0:
            return state
        conf = batch.confidence
        grouped: dict[tuple[int, int], list[Example]] = {}
        for i in wrong:
            cell = (int(batch.y_true[i]), int(batch.y_pred[i]))
            item_id = batch.item_ids[i] if batch.item_ids else str(i)
            ref = batch.refs[i] if batch.refs else None
            grouped.setdefault(cell, []).append((float(conf[i]), item_id, ref))
        return self.merge(state, {cell: _top(ex, self.k) for cell, ex in grouped.items()})

    def merge(self, a: ExampleState, b: ExampleState) -> ExampleState:
        out = dict(a)
        for cell, examples in b.items():
            out[cell] = _top([*out.get(cell, ()), *examples], self.k)
        return out

    def finalize(self, state: ExampleState) -> Finalized:
        examples = [
            {
                "label": self.labels[t],
                "predicted": self.labels[p],
                "confidence": conf,
                "item_id": item_id,
                "ref": ref,
            }
            for (t, p), cell in sorted(state.items())
            for conf, item_id, ref in cell
        ]
        return Finalized(extras={"error_examples": examples})
