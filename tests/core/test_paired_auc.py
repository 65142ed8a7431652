"""DeLong's paired ROC-AUC change against its definition, scikit-learn, a paired bootstrap and
simulation (the interval's false-alarm rate at or below its level)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from sklearn.metrics import roc_auc_score

from assay.core.paired_auc import PairedAuc, class_influence, placements

LABELS3 = ("ok", "scratch", "dent")


def scores_of(rng: np.random.Generator, y: np.ndarray, k: int, strength: float) -> np.ndarray:
    """Softmax scores where the true class gets ``strength`` more logit; rounded to force ties."""
    logits = rng.normal(0, 1, (y.size, k))
    logits[np.arange(y.size), y] += strength
    p = np.exp(logits)
    return np.round(p / p.sum(axis=1, keepdims=True), 2)


def macro_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's one-vs-rest macro average (its multi-class form wants scores summing to 1)."""
    return float(np.mean([roc_auc_score(y == k, scores[:, k]) for k in range(scores.shape[1])]))


def mann_whitney_macro(y: np.ndarray, scores: np.ndarray) -> float:
    aucs = []
    for k in range(scores.shape[1]):
        pos, neg = scores[y == k, k], scores[y != k, k]
        aucs.append(mannwhitneyu(pos, neg).statistic / (pos.size * neg.size))
    return float(np.mean(aucs))


def test_placements_average_to_scikit_learns_auc_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300) + 0.3 * y, 1)
    pos, neg = placements(y, s)
    assert pos.mean() == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert neg.mean() == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_variance_is_delongs_from_the_kernel_matrix() -> None:
    """DeLong (1988), written out: psi(x, y) over every positive-negative pair, the placements as
    its row and column means, S10 and S01 as the sample covariances of the two models'."""
    rng = np.random.default_rng(1)
    y = rng.random(80) < 0.4
    a = np.round(rng.random(80) + 0.4 * y, 1)
    b = np.round(0.5 * a + 0.5 * rng.random(80) + 0.2 * y, 1)

    def psi(s: np.ndarray) -> np.ndarray:
        x, z = s[y][:, None], s[~y][None, :]
        return (x > z) + 0.5 * (x == z)

    m, n = int(y.sum()), int((~y).sum())
    v10 = np.stack([psi(a).mean(axis=1), psi(b).mean(axis=1)])
    v01 = np.stack([psi(a).mean(axis=0), psi(b).mean(axis=0)])
    s10, s01 = np.cov(v10), np.cov(v01)
    contrast = np.array([1.0, -1.0])
    variance = contrast @ s10 @ contrast / m + contrast @ s01 @ contrast / n
    found = class_influence(y, a, b)
    assert found is not None
    base, cand, influence = found
    assert cand - base == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert np.sum(influence**2) == pytest.approx(variance, rel=1e-10)


def test_macro_change_equals_scikit_learn_and_its_error_a_paired_bootstrap() -> None:
    """The macro one-vs-rest change is scikit-learn's difference; its standard error agrees with
    a paired bootstrap over items (2,000 resamples, AUCs from scipy's Mann-Whitney U) within 10%."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 600)
    cand, base = scores_of(rng, y, 3, 1.6), scores_of(rng, y, 3, 1.3)
    cand = np.round(0.6 * cand + 0.4 * base, 2)  # correlated, as two versions of one model are
    acc = PairedAuc(LABELS3, None, 0.95)
    state = acc.update(acc.empty(), y[:250], cand[:250], base[:250])
    state = acc.merge(state, acc.update(acc.empty(), y[250:], cand[250:], base[250:]))
    out = acc.finalize(state)
    expected = macro_auc(y, cand) - macro_auc(y, base)
    assert out["roc_auc"].delta == pytest.approx(expected, abs=1e-12)
    for k, label in enumerate(LABELS3):
        d = roc_auc_score(y == k, cand[:, k]) - roc_auc_score(y == k, base[:, k])
        assert out[f"roc_auc[{label}]"].delta == pytest.approx(d, abs=1e-12)
    boot = []
    for _ in range(2000):
        i = rng.integers(0, y.size, y.size)
        boot.append(mann_whitney_macro(y[i], cand[i]) - mann_whitney_macro(y[i], base[i]))
    assert out["roc_auc"].std_error == pytest.approx(np.std(boot, ddof=1), rel=0.1)


def test_binary_change_reads_the_positive_class_and_undefined_classes_say_so() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    cand, base = scores_of(rng, y, 2, 1.5), scores_of(rng, y, 2, 1.0)
    acc = PairedAuc(("ok", "defect"), 1, 0.95)
    out = acc.finalize(acc.update(acc.empty(), y, cand, base))
    assert out["roc_auc"] == out["roc_auc[defect]"]
    assert out["roc_auc"].ci_low < out["roc_auc"].delta < out["roc_auc"].ci_high
    only_ok = np.zeros(50, np.int64)
    empty = acc.finalize(acc.update(acc.empty(), only_ok, cand[:50], base[:50]))
    assert empty["roc_auc"].delta is None and empty["roc_auc"].std_error is None


@pytest.mark.parametrize("n", [60, 400])
def test_false_alarm_rate_at_or_below_the_level(n: int) -> None:
    """Two models of equal AUC (exchangeable, correlated scores): the 95% interval of the change
    excludes 0 in at most 5% of 1,000 simulated datasets (plus three binomial standard errors)."""
    rng = np.random.default_rng(n)
    acc = PairedAuc(("ok", "defect"), 1, 0.95)
    misses = 0
    for _ in range(1000):
        y = (rng.random(n) < 0.3).astype(np.int64)
        shared = rng.normal(0, 1, n) + 1.0 * y
        a = shared + rng.normal(0, 0.7, n)
        b = shared + rng.normal(0, 0.7, n)
        cand = np.column_stack([-a, a])
        base = np.column_stack([-b, b])
        c = acc.finalize(acc.update(acc.empty(), y, cand, base))["roc_auc"]
        # (No interval, below ten of a class, calls nothing.)
        misses += c.ci_low is not None and not (c.ci_low <= 0.0 <= c.ci_high)
    assert misses / 1000 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 1000)


def test_too_few_or_perfectly_separated_items_give_no_interval() -> None:
    """Both models separating 2 + 2 items perfectly: DeLong's variance is 0 and the interval
    [0, 0] passed 'no ROC-AUC regression'. Below ten of either class, or at a variance of 0,
    the change has no interval (the check says too_few)."""
    acc = PairedAuc(("ok", "defect"), 1, 0.95)
    y = np.array([0, 0, 1, 1])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    tiny = acc.finalize(acc.update(acc.empty(), y, perfect, np.clip(perfect * 1.1, 0, 1)))
    assert tiny["roc_auc"].delta == 0.0 and tiny["roc_auc"].ci_low is None
    y = np.repeat([0, 1], 40)
    separated = np.column_stack([1 - y * 0.9 - 0.05, y * 0.9 + 0.05])
    many = acc.finalize(acc.update(acc.empty(), y, separated, separated))
    assert many["roc_auc"].std_error is None and many["roc_auc"].ci_high is None
