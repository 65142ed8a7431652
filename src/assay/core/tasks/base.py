"""The Task protocol: what the engine asks of classification, detection, segmentation, anomaly.

The engine runs the model and hands the raw output to the task; the task turns it into its own
outputs (``decode``), and judges the batch's items against what the experts said (``judge``).
Every task reduces each item to one **item-level decision** in the task's ``item_labels``, so
paired comparison, McNemar, non-inferiority, slices, error groups and doubtful labels read the
same ``correct`` column whatever the task; the task's own metrics (mAP, IoU, AUPRO) come from its
accumulators, which read the per-item ``detail`` of the judged batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from assay.core.accumulators import Accumulator
from assay.core.batch import Picked, ScoredBatch
from assay.core.intervals import IntervalConfig
from assay.core.prepared import PreparedBatch

I64 = npt.NDArray[np.int64]
F = npt.NDArray[np.float64]

# The item-level classes of detection and segmentation: did the experts mark a defect?
GOOD_DEFECT = ("good", "defect")


def judged_batch(
    prepared: PreparedBatch,
    judged: list[int],
    y_true: list[int],
    predicted: I64,
    scores: F,
    detail: list[Any],
) -> tuple[ScoredBatch, I64]:
    """The accumulators' view of a vision task's batch: its judged items (positions ``judged``),
    their item-level truth and decision, and the task's ``detail`` per item."""
    at = np.array(judged, np.int64)
    batch = ScoredBatch(
        y_true=np.array(y_true, np.int64),
        y_pred=predicted[at],
        scores=scores[at],
        item_ids=Picked(prepared.item_ids, at),
        refs=tuple(prepared.refs[i] for i in judged) if prepared.refs else (),
        detail=detail,
    )
    return batch, at


def decision_accumulators(
    item_labels: tuple[str, ...],
    intervals: IntervalConfig,
    n_examples: int,
    negative_index: int | None = 0,
) -> list[Accumulator[Any]]:
    """What the item-level decision of a detection, segmentation or anomaly model reports: the
    confusion counts and rates (accuracy, false alarms, missed defects...) and the examples. Not
    the score-based metrics (ROC, log loss, calibration): its decision is a rule over boxes,
    pixels or a threshold, not the argmax of the per-image score, which would contradict it.
    Also what a classifier that gives no scores (recorded classes only) reports."""
    from assay.core.accumulators import ConfusionAccumulator, ErrorExamplesAccumulator

    return [
        ConfusionAccumulator(item_labels, intervals, negative_index),
        ErrorExamplesAccumulator(item_labels, k=n_examples),
    ]


@dataclass(frozen=True)
class Judged:
    """One batch, judged: what the accumulators see and what the predictions file records."""

    batch: ScoredBatch  # the judged items only
    judged: I64  # their positions in the batch
    # Per item of the batch: item-level class index, -1 when the model gave none (an item without
    # a usable expert label keeps its prediction; only the judged ones are right or wrong).
    predicted: I64
    scores: F  # per item of the batch: one score per item-level class, nan rows when not judged
    errors: dict[int, str]  # position in the batch -> why the item was not judged
    # The item-level expert label of every item, when the task derives it (e.g. "defect" when an
    # expert drew a box); None: the dataset's label column is that label.
    labels: Sequence[str | None] | None = None
    # Further columns of the predictions file (e.g. the model's boxes), one value per item.
    extra: dict[str, list[Any]] = field(default_factory=dict)


class Task(Protocol):
    """One kind of model output and how it is judged."""

    name: str
    # The classes of the item-level decision (classification: the model's labels).
    item_labels: tuple[str, ...]

    def decode(self, raw: Any, n: int) -> Any:
        """The task's outputs from the runtime's raw output for ``n`` inputs; raises ValueError
        when the output does not have one entry per input."""
        ...

    def combine(self, parts: Sequence[Any | None]) -> Any:
        """Join the outputs of single items (None: that item's inference failed)."""
        ...

    def judge(
        self, prepared: PreparedBatch, rows: I64, outputs: Any, errors: dict[int, str], offset: int
    ) -> Judged:
        """Judge every item: ``outputs`` are those of the readable ``rows`` (in order);
        ``errors`` the reasons known so far; ``offset`` the batch's first position in the
        dataset."""
        ...

    def accumulators(
        self,
        intervals: IntervalConfig,
        auc_mode: Literal["exact", "binned"],
        n_examples: int,
    ) -> list[Accumulator[Any]]:
        """Every accumulator the task's validation runs, in report order."""
        ...

    def rule(self) -> str:
        """The item-level rule, in words, for the report."""
        ...

    def prediction_fields(self) -> dict[str, str]:
        """The columns of ``Judged.extra``: name -> kind, which the sink maps to a file type
        (``boxes``: a list of named, scored boxes per item; ``float``: one number per item)."""
        ...
