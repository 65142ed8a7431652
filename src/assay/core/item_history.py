"""What the outcomes of many model versions on the same items say: which items a candidate breaks
that every earlier version got right, which no version ever got right, which flip back and forth,
and how much the answers churn between consecutive versions.

The input is an outcome matrix: one row per item, one column per model version in release order,
each cell RIGHT, WRONG, NOT_JUDGED (the run holds the item but could not judge it) or ABSENT (the
version never ran on a dataset version holding the item). Only judged cells take part in the
churn and the other counts, except one: an item every earlier version got right that the
candidate cannot judge is broken by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assay.core.intervals import wilson_interval
from assay.core.stattests import mcnemar_exact

RIGHT, WRONG, NOT_JUDGED, ABSENT = 1, 0, -1, -2
OUTCOME_NAMES = {RIGHT: "right", WRONG: "wrong", NOT_JUDGED: "not judged", ABSENT: None}

Outcomes = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]


def broken_by(outcomes: Outcomes, candidate: int) -> Mask:
    """Items the ``candidate`` column gets wrong, or holds and cannot judge (a NaN where every
    earlier version answered right is a break on the line too), although every earlier column
    that judged them got them right (and at least one did)."""
    earlier = outcomes[:, :candidate]
    judged = (earlier == RIGHT) | (earlier == WRONG)
    always_right = judged.any(axis=1) & ~(earlier == WRONG).any(axis=1)
    lost = (outcomes[:, candidate] == WRONG) | (outcomes[:, candidate] == NOT_JUDGED)
    broken: Mask = always_right & lost
    return broken


def never_right(outcomes: Outcomes, min_versions: int = 2) -> Mask:
    """Items judged by at least ``min_versions`` columns and right in none of them: the label is
    as likely to be wrong as every model (see the doubtful labels)."""
    judged = ((outcomes == RIGHT) | (outcomes == WRONG)).sum(axis=1)
    never: Mask = (judged >= min_versions) & ~(outcomes == RIGHT).any(axis=1)
    return never


def flips(outcomes: Outcomes) -> npt.NDArray[np.int64]:
    """Per item, how often its outcome changes from one judging column to the next (columns
    that did not judge it are skipped)."""
    n_items, n_cols = outcomes.shape
    count = np.zeros(n_items, np.int64)
    last = np.full(n_items, NOT_JUDGED, np.int8)
    for j in range(n_cols):
        col = outcomes[:, j]
        judged = (col == RIGHT) | (col == WRONG)
        count += judged & (last != NOT_JUDGED) & (col != last)
        last = np.where(judged, col, last)
    return count


@dataclass(frozen=True)
class Churn:
    """The change between two consecutive versions on the items both judged."""

    n_common: int
    n_broken: int  # right before, wrong after
    n_fixed: int  # wrong before, right after
    rate: float | None  # (broken + fixed) / common
    ci_low: float | None
    ci_high: float | None
    mcnemar_p: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "n_common": self.n_common,
            "n_broken": self.n_broken,
            "n_fixed": self.n_fixed,
            "rate": self.rate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "mcnemar_p": self.mcnemar_p,
        }


def churn(before: Outcomes, after: Outcomes, confidence: float = 0.95) -> Churn:
    """How many of the items both columns judged changed outcome, with a Wilson interval on the
    rate and McNemar's exact p for "as many broken as fixed"."""
    both = ((before == RIGHT) | (before == WRONG)) & ((after == RIGHT) | (after == WRONG))
    n = int(both.sum())
    broken = int((both & (before == RIGHT) & (after == WRONG)).sum())
    fixed = int((both & (before == WRONG) & (after == RIGHT)).sum())
    if n == 0:
        return Churn(0, 0, 0, None, None, None, None)
    low, high = wilson_interval(broken + fixed, n, confidence)
    return Churn(n, broken, fixed, (broken + fixed) / n, low, high, mcnemar_exact(broken, fixed))
