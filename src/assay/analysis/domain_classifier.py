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
    """A fold for each row: identical rows share one (a copy of a validation row in
    production, trained on in another fold, would be recognised as its twin and called
    validation, hiding a shift), and each set's rows are dealt evenly over the folds. None
    when groups cannot be dealt so that every fold trains on both sets (a production sample
    of one repeated row): then rows are dealt one by one."""
    rows = np.ascontiguousarray(x).view(np.dtype((np.void, x.dtype.itemsize * x.shape[1])))
    _, group = np.unique(rows.ravel(), return_inverse=True)
    n_groups = int(group.max()) + 1
    production = np.zeros(n_groups, np.int64)
    np.maximum.at(production, group, y)  # a group with a production row deals as production
    order = np.random.default_rng(seed).permutation(n_groups)
    fold = np.empty(n_groups, np.int64)
    for side in (0, 1):
        members = order[production[order] == side]
        fold[members] = np.arange(members.size) % k
    out: npt.NDArray[np.int64] = fold[group.ravel()]
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
