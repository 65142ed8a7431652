"""How often a detector's COCO intervals claim more than the truth: coverage by simulation.

A generated detector (``--classes`` classes, 1 to 3 boxes per image of 10 to 200 pixels, 5% of
boxes missed, each found box placed off by ``--noise`` of its size, about 0.3 false boxes per
image) is scored on a large set (the truth) and on ``--trials`` samples of ``--images`` images.
For mAP, AP50, AP75 and AR@100 it prints how often the lower bound lies above the truth (the
stated level is 2.5%): Assay's interval (``CocoBoxEvaluation.intervals``), and, from the same
plain resamples, a basic bootstrap and a bias-corrected percentile one, for comparison; then how
often the upper bound lies below the truth, and how far below the truth the lower bound lies on
average (the price of the correction), Assay's against the plain percentile bootstrap's.

    .venv/bin/python benchmarks/coco_interval_coverage.py [--images 60] [--trials 40]
"""

from __future__ import annotations

import argparse
import time
from statistics import NormalDist

import numpy as np

from assay.core.intervals import IntervalConfig, draw_multinomial
from assay.core.tasks.detection.mean_ap import CocoBoxEvaluation, DetectionImage

NAMES = ("map", "map_50", "map_75", "mar_100")


def generate(
    rng: np.random.Generator, n: int, classes: int, noise: float, miss: float = 0.05
) -> list[DetectionImage]:
    images = []
    for i in range(n):
        m = int(rng.integers(1, 4))
        cls = rng.integers(0, classes, m)
        side = np.exp(rng.uniform(np.log(10), np.log(200), m))
        gt = np.c_[rng.uniform(0, 500, (m, 2)), side, side * rng.uniform(0.7, 1.3, m)]
        keep = rng.random(m) >= miss
        found = gt[keep]
        boxes = (
            found + rng.normal(0, noise, (int(keep.sum()), 4)) * np.c_[found[:, 2:], found[:, 2:]]
        )
        scores, labels = rng.beta(5, 2, int(keep.sum())), cls[keep]
        false = rng.poisson(0.3)
        if false:
            fs = np.exp(rng.uniform(np.log(10), np.log(200), false))
            boxes = np.r_[boxes, np.c_[rng.uniform(0, 500, (false, 2)), fs, fs]]
            scores = np.r_[scores, rng.beta(2, 5, false)]
            labels = np.r_[labels, rng.integers(0, classes, false)]
        images.append(DetectionImage(i, gt, cls, boxes, scores, labels.astype(np.int64)))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--noise", type=float, default=0.08)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    evaluation = CocoBoxEvaluation(tuple(f"c{i}" for i in range(args.classes)))
    rng = np.random.default_rng(1)
    t0 = time.time()
    big = evaluation.update(evaluation.empty(), generate(rng, 8000, args.classes, args.noise))
    truth = evaluation.finalize(big)
    above = {name: {"assay": 0, "basic": 0, "bias-corrected": 0} for name in NAMES}
    # The other side and the cost: upper bounds below the truth, and how far below the truth
    # the lower bounds lie on average (Assay's and the plain percentile bootstrap's).
    below = {name: {"assay": 0, "percentile": 0} for name in NAMES}
    slack = {name: {"assay": 0.0, "percentile": 0.0} for name in NAMES}
    bias = dict.fromkeys(NAMES, 0.0)
    normal = NormalDist()
    for t in range(args.trials):
        state = evaluation.update(
            evaluation.empty(), generate(rng, args.images, args.classes, args.noise)
        )
        estimate = evaluation.finalize(state)
        config = IntervalConfig(0.95, args.resamples, t)
        cis = evaluation.intervals(state, config)
        orders = np.sort(np.concatenate(state.orders))
        draws = draw_multinomial(np.ones(orders.size, np.int64), config, salt="coverage")
        plain = evaluation.replicates(state, orders, draws.astype(np.float64))
        for name in NAMES:
            reps = plain[name][np.isfinite(plain[name])]
            est, true = estimate[name], truth[name]
            bias[name] += (est - true) / args.trials
            above[name]["assay"] += cis[name][0] > true
            below[name]["assay"] += cis[name][1] < true
            below[name]["percentile"] += np.quantile(reps, 0.975) < true
            slack[name]["assay"] += (true - cis[name][0]) / args.trials
            slack[name]["percentile"] += (true - np.quantile(reps, 0.025)) / args.trials
            above[name]["basic"] += 2 * est - np.quantile(reps, 0.975) > true
            z0 = normal.inv_cdf(min(max(float((reps < est).mean()), 1e-3), 1 - 1e-3))
            low = np.quantile(reps, normal.cdf(2 * z0 - normal.inv_cdf(0.975)))
            above[name]["bias-corrected"] += low > true
    print(
        f"{args.classes} classes, {args.images} images per sample, {args.trials} samples, "
        f"boxes off by {args.noise:.0%} of their size ({time.time() - t0:.0f} s)"
    )
    print(f"  {'number':8s} {'truth':>6s} {'bias':>7s}  lower bound above the truth")
    for name in NAMES:
        shares = ", ".join(f"{k} {v / args.trials:.0%}" for k, v in above[name].items())
        print(f"  {name:8s} {truth[name]:6.3f} {bias[name]:+7.3f}  {shares}")
    print("  number   upper bound below the truth; mean distance lower bound to truth")
    for name in NAMES:
        shares = ", ".join(f"{k} {v / args.trials:.0%}" for k, v in below[name].items())
        gaps = ", ".join(f"{k} {v:.3f}" for k, v in slack[name].items())
        print(f"  {name:8s} {shares}; {gaps}")


if __name__ == "__main__":
    main()
