"""ClassificationTask: class scores in, the predicted class judged against the expert label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from assay.core.accumulators import Accumulator, classification_accumulators
from assay.core.batch import Picked, ScoredBatch
from assay.core.failures import DISPUTED, NO_LABEL
from assay.core.intervals import IntervalConfig
from assay.core.prepared import DISPUTED_LABEL, MISSING_LABEL, PreparedBatch
from assay.core.scoring import predict_classes, to_probabilities
from assay.core.spec import ModelSpec
from assay.core.tasks.base import I64, F, Judged, decision_accumulators


class ClassificationTask:
    name = "classification"

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.item_labels = spec.labels

    def decode(self, raw: Any, n: int) -> F:
        probs = to_probabilities(raw, self.spec)
        if probs.shape[0] != n:
            raise ValueError(f"the model returned {probs.shape[0]} rows of scores for {n} items")
        return probs

    def combine(self, parts: Sequence[F | None]) -> F:
        out = np.full((len(parts), self.spec.n_classes), np.nan)
        for j, part in enumerate(parts):
            if part is not None:
                out[j] = part[0]
        return out

    def judge(
        self, prepared: PreparedBatch, rows: I64, outputs: F, errors: dict[int, str], offset: int
    ) -> Judged:
        n, k = prepared.n_items, self.spec.n_classes
        scores = np.full((n, k), np.nan)
        scores[rows] = outputs
        finite = np.isfinite(scores).all(axis=1)
        label_index = prepared.label_index
        failed = ~finite | (label_index < 0)
        if errors:
            failed[list(errors)] = True
        for row in np.flatnonzero(failed).tolist():
            errors[row] = errors.get(row) or _reason(bool(finite[row]), int(label_index[row]))
        judged = np.flatnonzero(~failed)
        predicted = np.full(n, -1, dtype=np.int64)
        if finite.any():
            predicted[finite] = predict_classes(scores[finite], self.spec)
        ids = prepared.item_ids
        batch = ScoredBatch(
            y_true=label_index[judged],
            y_pred=predicted[judged],
            scores=scores[judged],
            item_ids=Picked(ids, judged) if failed.any() else ids,
            refs=tuple(prepared.refs[i] for i in judged) if prepared.refs else (),
        )
        return Judged(batch, judged, predicted, scores, errors)

    def accumulators(
        self, intervals: IntervalConfig, auc_mode: Literal["exact", "binned"], n_examples: int
    ) -> list[Accumulator[Any]]:
        spec = self.spec
        if not spec.has_scores:  # a class per item, no scores: what the decisions alone say
            return decision_accumulators(spec.labels, intervals, n_examples, spec.negative_index)
        return classification_accumulators(
            spec.labels,
            intervals,
            spec.positive_index,
            auc_mode,
            n_examples,
            spec.negative_index,
        )

    def prediction_fields(self) -> dict[str, str]:
        return {}

    def rule(self) -> str:
        return "an item is right when the predicted class is the expert's label"


def _reason(finite: bool, label_index: int) -> str:
    """Why a decoded, predicted item still cannot be judged."""
    if not finite:
        return "model scores are not probabilities (non-finite, negative, or not summing to 1)"
    if label_index == MISSING_LABEL:
        return NO_LABEL
    if label_index == DISPUTED_LABEL:
        return DISPUTED
    return "expert label is not one of the model's labels"
