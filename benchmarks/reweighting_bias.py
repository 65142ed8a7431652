"""How far the production-mix accuracy of the coverage audit is from the truth, by simulation.

Validation items and a production sample are drawn with three normal columns, production's
first one shifted by ``--shift`` standard deviations; whether the model is right on an item
depends on that column (a logistic curve, falling with it, or rising with ``--better``). The
audit's own pipeline gives the estimate: the domain classifier's out-of-fold probabilities
(``fit_domain``), the importance weights and the weighted accuracy with its bootstrap interval.
The truth is the accuracy over two million production draws. Printed: the mean estimate, its
bias and spread, and how often the 95% interval held the truth.

    .venv/bin/python benchmarks/reweighting_bias.py [--shift 0.7] [--better] [--draws 60]
"""

from __future__ import annotations

import argparse
import os
from multiprocessing import Pool

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _right(a: np.ndarray, sign: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(0.5 - 1.5 * sign * a)))


def _draw(args: tuple[int, float, float, int, int]) -> tuple[float, float, float]:
    from assay.analysis.domain_classifier import fit_domain
    from assay.core import drift

    seed, shift, sign, n_val, n_prod = args
    rng = np.random.default_rng(seed)
    val = rng.normal(size=(n_val, 3))
    prod = rng.normal(size=(n_prod, 3))
    prod[:, 0] += shift
    hits = rng.uniform(size=n_val) < _right(val[:, 0], sign)
    fit = fit_domain(val, prod, np.zeros(3, bool), seed=0)
    weighted = drift.weighted_rate(hits, drift.importance_weights(fit.p_validation, n_val, n_prod))
    return (
        float(weighted.value or np.nan),
        float(weighted.ci_low or np.nan),
        float(weighted.ci_high or np.nan),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shift", type=float, default=0.7)
    parser.add_argument(
        "--better", action="store_true", help="the model is better where production moves"
    )
    parser.add_argument("--draws", type=int, default=60)
    parser.add_argument("--validation", type=int, default=1000)
    parser.add_argument("--production", type=int, default=500)
    args = parser.parse_args()
    sign = -1.0 if args.better else 1.0
    truth = float(_right(np.random.default_rng(99).normal(args.shift, 1, 2_000_000), sign).mean())
    jobs = [(i, args.shift, sign, args.validation, args.production) for i in range(args.draws)]
    with Pool(max(1, min(4, os.cpu_count() or 1))) as pool:
        found = np.array(pool.map(_draw, jobs))
    value, low, high = found.T
    print(f"shift {args.shift} SD, model {'better' if args.better else 'worse'} there, "
          f"{args.validation} validation and {args.production} production items, {args.draws} draws")  # fmt: skip
    print(f"true production accuracy {truth:.4f}; estimate {value.mean():.4f} (bias "
          f"{value.mean() - truth:+.4f}, sd {value.std():.4f}); 95% interval held the truth in "
          f"{np.mean((low <= truth) & (truth <= high)):.0%} of draws, lay above it in "
          f"{np.mean(low > truth):.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
