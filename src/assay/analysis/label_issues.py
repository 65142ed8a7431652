"""ConfidentLearning: items whose expert label the data doubt, in passes over the predictions.

Confident learning (Northcutt et al., cleanlab) estimates, from the model's out-of-sample
probabilities, how often each label is confused with each other, and flags the items most likely
to carry a wrong label. The model never trained on the validation set, so its probabilities are
out-of-sample, as the method needs. The result is a list of candidates for an expert to review,
never a correction.

This is cleanlab's ``find_label_issues(filter_by="prune_by_noise_rate")``, computed in passes so
that memory does not grow with the items: cleanlab needs every probability in memory at once
(about 140 bytes per item with its copies), and its batched API ranks differently. The passes
hold per-class sums, the K x K confident joint, and the candidates themselves:

1. label counts and, per class, the sum of its probability over the items labelled with it (the
   per-class thresholds are their means);
2. the confident joint: each item counted under its label and the class whose probability clears
   that class's threshold (the most probable one if several do), then calibrated to the label
   counts; cleanlab's own functions turn it into how many items to prune per pair of classes;
3. for each label k and other class j, the items labelled k with the largest margin
   p(j) - p(k), as many as the pair's count, kept in a bounded buffer (row and margin only);
4. what the report shows of the chosen items; those whose given label is (within 1e-6) the
   model's top class are dropped, as cleanlab does.

The tests compare the flagged items with cleanlab's on the test data. Where margins tie at a
pair's cut, cleanlab's pick depends on numpy's unstable sort; here the earlier item wins.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F = npt.NDArray[np.float64]

# cleanlab's constants (cleanlab.internal.constants): the slack in "clears the threshold" and in
# "the given label is the top class", and the floor of a threshold.
FLOATING_POINT_COMPARISON = 1e-6
CONFIDENT_THRESHOLDS_LOWER_BOUND = 2 * FLOATING_POINT_COMPARISON
TINY_VALUE = 1e-100
# Fewer judged items, or a single class among the labels: no confident joint worth the name.
MIN_ITEMS = 10


@dataclass(frozen=True)
class LabelIssues:
    """The flagged items, most doubtful first (lowest probability of their label)."""

    rows: I64  # the items' positions, as given to ``update``
    labels: I64  # the given label (class index)
    suggested: I64  # the model's top class
    confidence: F  # the model's top probability
    quality: F  # the probability of the given label, 0 (doubtful) .. 1
    method: str


# What the report shows of a flagged item, gathered in the last pass.
FIELDS = ("rows", "labels", "suggested", "confidence", "quality", "ranked_by", "near_top")


@dataclass
class _Pruned:
    """For one (label, other class) pair, the ``keep`` items with the largest margins so far."""

    keep: int
    parts: list[dict[str, npt.NDArray[np.generic]]] = field(default_factory=list)
    held: int = 0

    def add(self, part: dict[str, npt.NDArray[np.generic]]) -> None:
        self.parts.append(part)
        self.held += part["margin"].size
        if self.held > 2 * self.keep + 65_536:
            self.compact()

    def compact(self) -> dict[str, npt.NDArray[np.generic]]:
        if not self.parts:
            return {}
        joined = {name: np.concatenate([p[name] for p in self.parts]) for name in self.parts[0]}
        margin = joined["margin"]
        if margin.size > self.keep:
            # The largest margins, in linear time; of the items tied at the cut, the earliest.
            cut = margin[np.argpartition(margin, margin.size - self.keep)[margin.size - self.keep]]
            above = np.flatnonzero(margin > cut)
            tied = np.flatnonzero(margin == cut)
            tied = tied[np.argsort(joined["rows"][tied], kind="stable")[: self.keep - above.size]]
            chosen = np.concatenate((above, tied))
            joined = {name: values[chosen] for name, values in joined.items()}
        self.parts, self.held = [joined], joined["margin"].size
        return joined


class ConfidentLearning:
    """Feed every batch of judged items (positions, given labels, probabilities [n, K] whose
    rows sum to one) to ``update``, in the same order each pass, and call ``end_pass`` after
    each pass until ``done``; ``result`` then holds the flagged items."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes
        self.passes = 0
        # then "sums" (only when a class is absent), "joint", "prune", "describe"
        self.stage = "count"
        self.counts = np.zeros(n_classes, np.int64)
        self._sums = np.zeros(n_classes)
        self._present = np.ones(n_classes, bool)
        self._thresholds = np.zeros(n_classes)
        self._joint = np.zeros((n_classes, n_classes), np.int64)
        self._pruned: dict[tuple[int, int], _Pruned] = {}
        self._chosen = np.empty(0, np.int64)  # rows chosen by pruning, sorted
        self._described: list[dict[str, npt.NDArray[np.generic]]] = []
        self.result: LabelIssues | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def n_items(self) -> int:
        return int(self.counts.sum())

    def update(self, rows: I64, labels: I64, probs: F) -> None:
        if self.done or rows.size == 0:
            return
        at = np.arange(labels.size)
        if self.stage == "count":
            self.counts += np.bincount(labels, minlength=self.n_classes)
            self._sums += np.bincount(labels, probs[at, labels], self.n_classes)
            return
        # cleanlab needs every class to occur among the labels: absent classes are dropped and
        # each row renormalised (only then: the rows already sum to one).
        given = (np.cumsum(self._present) - 1)[labels]
        p = probs
        if not self._present.all():
            kept = probs[:, self._present]
            p = kept / kept.sum(axis=1, keepdims=True)
        k = p.shape[1]
        if self.stage == "sums":
            self._sums += np.bincount(given, p[at, given], k)
        elif self.stage == "joint":
            confident = p >= self._thresholds - FLOATING_POINT_COMPARISON
            n_confident = confident.sum(axis=1)
            guess = np.where(n_confident > 1, p.argmax(axis=1), confident.argmax(axis=1))
            some = n_confident > 0
            cells = np.bincount(given[some] * k + guess[some], minlength=k * k)
            self._joint += cells.reshape(k, k)
        elif self.stage == "prune":
            self._prune(rows, given, p)
        else:
            self._describe(rows, labels, given, probs, p)

    def _prune(self, rows: I64, given: I64, p: F) -> None:
        for (k, j), pruned in self._pruned.items():
            mine = np.flatnonzero(given == k)
            if mine.size:
                pruned.add({"rows": rows[mine], "margin": p[mine, j] - p[mine, k]})

    def _describe(self, rows: I64, labels: I64, given: I64, probs: F, p: F) -> None:
        """What the report shows of the chosen items in this batch."""
        where = np.searchsorted(self._chosen, rows)
        mine = np.flatnonzero(self._chosen[np.minimum(where, self._chosen.size - 1)] == rows)
        if mine.size == 0:
            return
        rows, labels, given, probs, p = rows[mine], labels[mine], given[mine], probs[mine], p[mine]
        at = np.arange(mine.size)
        nudged = p.copy()
        nudged[at, given] += FLOATING_POINT_COMPARISON
        self._described.append(
            {
                "rows": rows,
                "labels": labels,
                "suggested": probs.argmax(axis=1),
                "confidence": probs.max(axis=1),
                "quality": probs[at, labels],
                "ranked_by": p[at, given],
                "near_top": nudged.argmax(axis=1) == given,
            }
        )

    def end_pass(self) -> None:
        if self.done:
            return
        self.passes += 1
        if self.stage == "count":
            self._present = self.counts > 0
            if self._present.sum() < 2 or self.n_items < MIN_ITEMS:
                self.result = self._issues([])
            elif self._present.all():
                self._thresholds = self._means(self._sums)
                self.stage = "joint"
            else:
                self._sums = np.zeros(int(self._present.sum()))
                self.stage = "sums"
        elif self.stage == "sums":
            self._thresholds = self._means(self._sums)
            self.stage = "joint"
        elif self.stage == "joint":
            counts = self.counts[self._present]
            self._pruned = {
                (k, j): _Pruned(int(n))
                for (j, k), n in np.ndenumerate(self._prune_counts())
                # cleanlab prunes nothing in a class of min_examples_per_class (1) or fewer.
                if k != j and n > 0 and counts[k] > 1
            }
            self.stage = "prune"
            if not self._pruned:
                self.result = self._issues([])
        elif self.stage == "prune":
            # An item chosen for several classes counts once.
            chosen = [pruned.compact().get("rows") for pruned in self._pruned.values()]
            self._chosen = np.unique(np.concatenate([c for c in chosen if c is not None]))
            self._pruned = {}
            self.stage = "describe"
            if self._chosen.size == 0:
                self.result = self._issues([])
        else:
            self.result = self._issues(self._described)

    def _means(self, sums: F) -> F:
        present = int(self._present.sum())
        self._joint = np.zeros((present, present), np.int64)  # over the classes present
        means = sums / self.counts[self._present]
        return np.clip(means, CONFIDENT_THRESHOLDS_LOWER_BOUND, None)

    def _prune_counts(self) -> I64:
        """cleanlab's prune count matrix (transposed: [other class, given label]) from the
        confident joint, calibrated to the label counts."""
        _keep_at_least_n_per_class, round_preserving_row_totals = _cleanlab()
        joint = self._joint.copy()
        np.fill_diagonal(joint, joint.diagonal().clip(min=1))
        counts = self.counts[self._present]
        calibrated = (joint.T / np.clip(joint.sum(axis=1), TINY_VALUE, None) * counts).T
        calibrated = calibrated / np.clip(calibrated.sum(), TINY_VALUE, None) * counts.sum()
        joint = round_preserving_row_totals(calibrated)
        out: I64 = _keep_at_least_n_per_class(joint.T, n=1, frac_noise=1.0)
        return out

    def _issues(self, chosen: list[dict[str, npt.NDArray[np.generic]]]) -> LabelIssues:
        version = metadata.version("cleanlab")
        method = (
            f"confident learning (prune_by_noise_rate, as cleanlab {version} computes it, in "
            "streaming passes), ranked by self-confidence"
        )
        if not chosen:
            empty = np.empty(0, np.int64)
            return LabelIssues(empty, empty, empty, np.empty(0), np.empty(0), method)
        flagged = {name: np.concatenate([c[name] for c in chosen]) for name in FIELDS}
        chosen.clear()  # the batches' parts, now joined
        self._described = []
        # An item whose label is the model's top class (within 1e-6) is no issue. The rest, most
        # doubtful first; ties in item order (cleanlab's ranking with a stable sort).
        kept = np.flatnonzero(~flagged["near_top"].astype(bool))
        order = kept[np.lexsort((flagged["rows"][kept], flagged["ranked_by"][kept]))]
        f = {name: values[order] for name, values in flagged.items()}
        return LabelIssues(
            f["rows"].astype(np.int64),
            f["labels"].astype(np.int64),
            f["suggested"].astype(np.int64),
            f["confidence"].astype(np.float64),
            f["quality"].astype(np.float64),
            method,
        )


def _cleanlab() -> tuple[Any, Any]:
    """cleanlab's two helpers. cleanlab.filter imports tqdm.auto, which in a Jupyter kernel
    without ipywidgets warns "IProgress not found" as it is imported: nothing here draws a
    progress bar, so the warning would only be noise in the user's notebook."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        from cleanlab.filter import _keep_at_least_n_per_class
        from cleanlab.internal.util import round_preserving_row_totals
    return _keep_at_least_n_per_class, round_preserving_row_totals
