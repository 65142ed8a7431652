"""A domain classifier: can a model tell production items from validation items by their columns?

scikit-learn's HistGradientBoostingClassifier (missing values and categories handled natively)
predicts, out of fold (stratified k-fold), the probability that each item comes from production;
the probabilities give the importance weights of ``assay.core.drift``.

The ROC-AUC is the overall measure of shift: 0.5 when production looks like the validation set,
1.0 when every production item is told apart. It is measured as a classifier two-sample test
(Lopez-Paz and Oquab, 2017): the items are split in two halves, each half is scored by a model
fitted on the other, and the AUC is the mean of the two halves' AUCs. Each half's DeLong interval
is valid, its scores being fixed before its labels are looked at; the interval of the mean takes
the mean of their widths, which holds whatever the two halves' correlation. DeLong's interval
around the AUC of pooled out-of-fold scores is too narrow: every score depends on the labels of
the items it was trained on, and with both sets drawn alike (300 a side, 5 folds) the spread of
that AUC was 1.4 times DeLong's and a shift was called in 7 to 11% of draws, not 2.5%.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.paired_auc import placements

F = npt.NDArray[np.float64]
Rows = npt.NDArray[np.int64]


# DeLong's variance needs some items of each set: with 2 or 3 production items in a half, the
# interval came out 0.04 wide and a shift was called in 12 to 15% of draws of 5 production items
# with no shift (a review; 3% at 10, 1.7% at 20). Below this many of a set in each half, the AUC
# has no interval, and no shift is called.
MIN_PER_HALF = 10


@dataclass(frozen=True)
class DomainFit:
    p_validation: F  # out-of-fold P(production) of each validation item
    p_production: F
    auc: float
    ci_low: float
    ci_high: float
    # Whether the two-sample test could be run (enough items of each set in each half).
    tested: bool = True


def delong_auc(negatives: F, positives: F, confidence: float = 0.95) -> tuple[float, float, float]:
    """ROC-AUC of ``positives`` over ``negatives`` and DeLong's confidence interval, from the
    same placements as the paired change of ``assay.core.paired_auc``."""
    m, n = positives.size, negatives.size
    positive = np.r_[np.ones(m, bool), np.zeros(n, bool)]
    v10, v01 = placements(positive, np.concatenate([positives, negatives]))
    auc = float(v10.mean())
    var = np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n if m > 1 and n > 1 else 0.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * float(np.sqrt(max(var, 0.0)))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def _folds(x: F, y: npt.NDArray[np.int64], k: int, seed: int) -> npt.NDArray[np.int64] | None:
    """A fold for each row, each set's rows dealt evenly over the folds, such that no row is
    judged by a model trained on its twin: a small group of identical rows (under ``2 k``)
    shares one fold. Were a validation row's copy in production trained on in another fold, the
    row would be recognised as its twin and called validation, hiding a shift. Larger groups
    (a value many rows share: a line, a camera) are dealt row by row, so that the value is
    learnt from the other folds: held out whole, the classifier could not tell that production
    prefers it. The rule looks at the rows' values only, never at which set they are in: a rule
    that held out mixed groups and dealt the others row by row let the classifier recognise
    the twins of rows found in one set only, and called shifts where there were none. None
    when the rows cannot be dealt so that every fold trains on both sets (a production sample
    of one repeated row): then rows are dealt one by one."""
    rows = np.ascontiguousarray(x).view(np.dtype((np.void, x.dtype.itemsize * x.shape[1])))
    _, group = np.unique(rows.ravel(), return_inverse=True)
    group = group.ravel()
    n_groups = int(group.max()) + 1
    size = np.bincount(group, minlength=n_groups)
    whole = size < 2 * k
    n = y.size
    unit = np.where(whole[group], group, n_groups + np.arange(n))
    _, first, unit_of_row = np.unique(unit, return_index=True, return_inverse=True)
    # A group held whole deals with the production rows if it holds any, so that production's
    # rows stay spread over the folds.
    in_production = np.zeros(n_groups, bool)
    in_production[group[y == 1]] = True
    side = np.where(whole[group[first]], in_production[group[first]], y[first] == 1)
    order = np.random.default_rng(seed).permutation(first.size)
    fold_of_unit = np.empty(first.size, np.int64)
    for s in (False, True):
        members = order[side[order] == s]
        fold_of_unit[members] = np.arange(members.size) % k
    out: npt.NDArray[np.int64] = fold_of_unit[unit_of_row.ravel()]
    for f in range(k):
        train, held = y[out != f], y[out == f]
        if held.size == 0 or train.min() == train.max():
            return None
    return out


def _split(x: F, y: npt.NDArray[np.int64], k: int, seed: int) -> Iterator[tuple[Rows, Rows]]:
    """Train and test rows of each of ``k`` folds (``_folds``, or stratified k-fold)."""
    from sklearn.model_selection import StratifiedKFold

    dealt = _folds(x, y, k, seed)
    if dealt is None:
        yield from StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y)
        return
    for f in range(k):
        yield np.flatnonzero(dealt != f), np.flatnonzero(dealt == f)


def _held_out_auc(
    model: Any, x: F, y: npt.NDArray[np.int64], seed: int, confidence: float
) -> tuple[float, float, float] | None:
    """The classifier two-sample test: the mean AUC of two halves, each scored by a model
    fitted on the other, and the mean of their DeLong intervals' half-widths; None when a half
    holds fewer than ``MIN_PER_HALF`` items of a set."""
    from sklearn.base import clone

    aucs, widths = [], []
    for train, test in _split(x, y, 2, seed + 1):
        p = clone(model).fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        held = y[test]
        if min(int(held.sum()), int((held == 0).sum())) < MIN_PER_HALF:
            return None
        if np.ptp(p) == 0:
            # One score for every item: the classifier learnt nothing, so the AUC of 0.5 is
            # no evidence of 'no shift' (its interval came out [0.5, 0.5]; a review).
            return None
        auc, low, high = delong_auc(p[held == 0], p[held == 1], confidence)
        aucs.append(auc)
        widths.append((high - low) / 2)
    auc = float(np.mean(aucs))
    half = float(np.mean(widths))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def fit_domain(
    validation: F,
    production: F,
    categorical: npt.NDArray[np.bool_],
    seed: int = 0,
    folds: int = 5,
    confidence: float = 0.95,
) -> DomainFit:
    """Out-of-fold P(production) for every item of both sets (``folds`` folds), and the AUC
    of the classifier two-sample test with its interval."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    x = np.vstack([validation, production])
    y = np.r_[np.zeros(len(validation), int), np.ones(len(production), int)]
    k = int(max(2, min(folds, len(validation), len(production))))
    model = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        # scikit-learn's 20 items per leaf: a half of under 40 items could not be split, and
        # production 10 standard deviations away scored like validation (a review: 30 a side).
        min_samples_leaf=int(np.clip(len(y) // 2 // 8, 2, 20)),
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )
    cv = list(_split(x, y, k, seed))
    p = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    p_val, p_prod = p[: len(validation)], p[len(validation) :]
    tested = _held_out_auc(model, x, y, seed, confidence)
    if tested is None:  # too few items for halves: the out-of-fold AUC, and no interval
        return DomainFit(p_val, p_prod, delong_auc(p_val, p_prod)[0], 0.0, 1.0, tested=False)
    return DomainFit(p_val, p_prod, *tested)
