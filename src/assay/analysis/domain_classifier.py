"""A domain classifier: can a model tell production items from validation items by their columns?

scikit-learn's HistGradientBoostingClassifier (missing values and categories handled natively)
predicts, out of fold (stratified k-fold), the probability that each item comes from production.
Its ROC-AUC is the overall measure of shift: 0.5 when production looks like the validation set,
1.0 when every production item is told apart. The interval is DeLong's (the AUC's asymptotic
variance from its structural components), so no refitting is needed; the probabilities also give
the importance weights of ``assay.core.drift``.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from assay.core.paired_auc import placements

F = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DomainFit:
    p_validation: F  # out-of-fold P(production) of each validation item
    p_production: F
    auc: float
    ci_low: float
    ci_high: float


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
    judged by a model trained on its twin. A small group of identical rows holding both sets
    (a validation row copied into production) shares one fold: were the copy trained on in
    another fold, the row would be recognised as its twin and called validation, hiding a
    shift. Every other row is dealt on its own, as stratified k-fold deals it, so that a value
    many rows share (a line, a camera) is learnt from the other folds: held out whole, the
    classifier could not tell that production prefers it. None when the rows cannot be dealt
    so that every fold trains on both sets (a production sample of one repeated row): then
    rows are dealt one by one."""
    rows = np.ascontiguousarray(x).view(np.dtype((np.void, x.dtype.itemsize * x.shape[1])))
    _, group = np.unique(rows.ravel(), return_inverse=True)
    group = group.ravel()
    n_groups = int(group.max()) + 1
    count = np.zeros((n_groups, 2), np.int64)
    np.add.at(count, (group, y), 1)
    # Held out one row at a time, a twin is judged by a model that saw its copy; a value many
    # rows share is judged by a model that saw its other rows, as it should be.
    whole = (count.min(axis=1) > 0) & (count.sum(axis=1) < 2 * k)
    n = y.size
    unit = np.where(whole[group], group, n_groups + np.arange(n))
    _, first, unit_of_row = np.unique(unit, return_index=True, return_inverse=True)
    side = np.where(whole[group[first]], True, y[first] == 1)
    # Units in random order, not a group's rows in turn: dealing a group's rows of each set
    # evenly would make a fold's training share of production the group's own, held-out
    # labels included, and call a shift where there is none.
    order = np.random.default_rng(seed).permutation(first.size)
    fold_of_unit = np.empty(first.size, np.int64)
    for s in (False, True):
        members = order[side[order] == s]
        fold_of_unit[members] = np.arange(members.size) % k
    out: npt.NDArray[np.int64] = fold_of_unit[unit_of_row.ravel()]
    for f in range(k):
        train = y[out != f]
        if (out == f).sum() == 0 or train.min() == train.max():
            return None
    return out


def fit_domain(
    validation: F,
    production: F,
    categorical: npt.NDArray[np.bool_],
    seed: int = 0,
    folds: int = 5,
    confidence: float = 0.95,
) -> DomainFit:
    """Out-of-fold P(production) for every item of both sets; their AUC with DeLong's interval."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import PredefinedSplit, StratifiedKFold, cross_val_predict

    x = np.vstack([validation, production])
    y = np.r_[np.zeros(len(validation), int), np.ones(len(production), int)]
    k = int(max(2, min(folds, len(validation), len(production))))
    model = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
    )
    dealt = _folds(x, y, k, seed)
    cv = (
        PredefinedSplit(dealt)
        if dealt is not None
        else StratifiedKFold(k, shuffle=True, random_state=seed)
    )
    p = cross_val_predict(model, x, y, cv=cv, method="predict_proba")[:, 1]
    p_val, p_prod = p[: len(validation)], p[len(validation) :]
    auc, low, high = delong_auc(p_val, p_prod, confidence)
    return DomainFit(p_val, p_prod, auc, low, high)
