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
        conf = batch.confidence[wrong]
        cells = batch.y_true[wrong] * batch.n_classes + batch.y_pred[wrong]
        grouped: ExampleState = {}
        for cell in np.unique(cells):
            members = np.flatnonzero(cells == cell)
            t, p = divmod(int(cell), batch.n_classes)
            kept = state.get((t, p), ())
            if len(kept) >= self.k:
                # Only items at least as confident as the current k-th example can enter the top.
                members = members[conf[members] >= kept[-1][0]]
                if members.size == 0:
                    continue
            if members.size > self.k:
                # Everything tied with the k-th best confidence stays a candidate: ties are then
                # broken by item id, so the choice does not depend on how items were sharded.
                kth = np.partition(conf[members], members.size - self.k)[members.size - self.k]
                members = members[conf[members] >= kth]
            examples = [
                (
                    float(conf[m]),
                    batch.item_ids[wrong[m]] if batch.item_ids else str(wrong[m]),
                    batch.refs[wrong[m]] if batch.refs else None,
                )
                for m in members
            ]
            grouped[(t, p)] = _top(examples, self.k)
        return self.merge(state, grouped)

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
