"""The metric engine on N predictions (default 10M, 6 classes): all classification metrics with
bootstrap intervals and 20 slices, against references measured side by side in the same run:

- numpy passes computing the same point estimates without intervals (bincounts of the confusion
  matrix overall and per slice, log loss, Brier, one-vs-rest ROC-AUC and average precision),
  compared like with like: the exact pass sorts each class's positives and negatives once and
  counts with ``searchsorted`` (what a performance engineer would write), against Assay's exact
  mode; the binned pass counts 65,536 equal-width score bins with ``bincount``, against Assay's
  binned mode. Both Assay modes' ROC-AUC and average precision are compared with the exact
  numpy values (the largest difference over classes is printed);
- scikit-learn computing the same numbers it can (accuracy, balanced accuracy, macro P/R/F1, MCC,
  kappa, one-vs-rest ROC-AUC and average precision, log loss, Brier per class) overall and per
  slice, without intervals.

Assay's side is the validation pass's accumulators (confusion, exact or binned ROC/PR histograms,
log loss, Brier, calibration, examples) over 65,536-item batches, then ``finalize`` (bootstrap,
1,000 resamples), plus the slice tables and their metrics with intervals (``build_evidence``).
With ``--with-others``, MLflow (``mlflow.evaluate`` on a static predictions table) and Evidently
(a ``ClassificationPreset`` report; with pandas < 3, which it needs) evaluate the same predictions
too, from the labels only (no probabilities: fewer metrics than Assay's, none with intervals). Each
is installed by this script in a throwaway virtual environment (from the package index; minutes)
and timed there on the evaluation alone. Evidently runs on ``--evidently-items`` (default 1M).

    .venv/bin/python benchmarks/metric_engine.py [--items 10000000] [--classes 6] [--with-others]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np

from assay.core.accumulators import Finalized, classification_accumulators
from assay.core.batch import ScoredBatch
from assay.core.comparison import OVERALL, JointCountsAccumulator, PairedBatch
from assay.core.evidence import build_evidence
from assay.core.intervals import IntervalConfig

BATCH = 65_536


def data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    slices = rng.integers(0, 20, n).astype(np.int32)  # one metadata column with 20 values
    return y, p.astype(np.float64), p.argmax(axis=1), slices


def assay_engine(
    y: np.ndarray,
    p: np.ndarray,
    pred: np.ndarray,
    slices: np.ndarray,
    k: int,
    mode: Literal["exact", "binned"] | None = None,
) -> tuple[float, list[tuple[float, float]]]:
    """Assay's time and, per class, (ROC-AUC, average precision); ``mode`` None: as the
    validation picks it (exact up to 250,000 items)."""
    labels = tuple(f"c{i}" for i in range(k))
    intervals = IntervalConfig(n_resamples=1000)
    mode = mode or ("binned" if y.size > 250_000 else "exact")
    accs = classification_accumulators(labels, intervals, None, mode)
    keys = tuple(((("line", f"v{i}"),)) for i in range(20))
    joint = JointCountsAccumulator(labels, {"line": keys})
    t0 = time.perf_counter()
    states = [a.empty() for a in accs]
    jstate = joint.empty()
    for s in range(0, y.size, BATCH):
        e = s + BATCH
        batch = ScoredBatch(y[s:e], pred[s:e], p[s:e])
        states = [a.update(st, batch) for a, st in zip(accs, states, strict=True)]
        paired = PairedBatch(
            y[s:e], pred[s:e], pred[s:e], p[s:e], p[s:e], slice_codes={"line": slices[s:e]}
        )
        jstate = joint.update(jstate, paired)
    report = Finalized()
    for a, st in zip(accs, states, strict=True):
        report.update(a.finalize(st))
    evidence = build_evidence(labels, None, jstate.counts, {}, intervals, False)
    assert len(evidence.candidate) == 21 and OVERALL in evidence.candidate
    elapsed = time.perf_counter() - t0
    per_class = [
        (float(report.per_class[c]["roc_auc"].value), float(report.per_class[c]["pr_auc"].value))  # type: ignore[arg-type]
        for c in labels
    ]
    return elapsed, per_class


def exact_ranking_all(y: np.ndarray, p: np.ndarray, k: int) -> list[tuple[float, float]]:
    return [exact_ranking(p[:, c], y == c) for c in range(k)]


def _largest_gap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> tuple[float, float]:
    """The largest |a - b| over classes, for ROC-AUC and for average precision."""
    return (
        max(abs(x[0] - z[0]) for x, z in zip(a, b, strict=True)),
        max(abs(x[1] - z[1]) for x, z in zip(a, b, strict=True)),
    )


def _common(y: np.ndarray, p: np.ndarray, pred: np.ndarray, slices: np.ndarray, k: int) -> None:
    """The confusion counts overall and per slice, log loss and Brier."""
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    per = np.bincount((slices.astype(np.int64) * k + y) * k + pred, minlength=20 * k * k)
    n = y.size
    log_loss = -np.log(np.clip(p[np.arange(n), y], 1e-15, 1)).mean()
    onehot = np.zeros_like(p)
    onehot[np.arange(n), y] = 1.0
    brier = ((p - onehot) ** 2).sum(axis=1).mean()
    _ = (np.trace(cm) / cm.sum(), per.reshape(20, k, k).sum(), log_loss, brier)


def exact_ranking(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Exact ROC-AUC (ties count half) and average precision (scikit-learn's step definition)
    from one sort of the positives and one of the negatives."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    n_pos, n_neg = pos.size, neg.size
    below = np.searchsorted(neg, pos, "left")
    ties = np.searchsorted(neg, pos, "right") - below
    auc = (below.sum() + 0.5 * ties.sum()) / (n_pos * n_neg)
    # AP: one step per distinct positive score u (descending): recall rises by count(u) / P,
    # at precision TP(u) / (TP(u) + FP(u)), with TP, FP the items scoring >= u.
    values, first = np.unique(pos, return_index=True)
    counts = np.diff(np.append(first, n_pos))
    tp = n_pos - first
    fp = n_neg - np.searchsorted(neg, values, "left")
    ap = float((counts / n_pos * tp / (tp + fp)).sum())
    return float(auc), ap


def binned_ranking(
    scores: np.ndarray, positive: np.ndarray, bins: int = 65_536
) -> tuple[float, float]:
    """ROC-AUC and average precision on equal-width score bins (ties within a bin count half)."""
    code = np.minimum((scores * bins).astype(np.int64), bins - 1)
    pos = np.bincount(code[positive], minlength=bins)[::-1]  # highest scores first
    neg = np.bincount(code[~positive], minlength=bins)[::-1]
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    n_pos, n_neg = tp[-1], fp[-1]
    auc = float((pos * (n_neg - fp) + 0.5 * pos * neg).sum() / (n_pos * n_neg))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
    ap = float((pos / n_pos * precision).sum())
    return auc, ap


def numpy_pass(
    y: np.ndarray, p: np.ndarray, pred: np.ndarray, slices: np.ndarray, k: int, mode: str
) -> tuple[float, list[tuple[float, float]]]:
    """The same point estimates in plain numpy, no intervals; returns the time and, per class,
    (ROC-AUC, average precision)."""
    t0 = time.perf_counter()
    _common(y, p, pred, slices, k)
    rank = exact_ranking if mode == "exact" else binned_ranking
    per_class = [rank(p[:, c], y == c) for c in range(k)]
    return time.perf_counter() - t0, per_class


def sklearn_same(y: np.ndarray, p: np.ndarray, pred: np.ndarray, slices: np.ndarray) -> float:
    from sklearn import metrics as m

    t0 = time.perf_counter()

    def confusion_based(yy: np.ndarray, pp: np.ndarray) -> None:
        m.accuracy_score(yy, pp)
        m.balanced_accuracy_score(yy, pp)
        m.precision_recall_fscore_support(yy, pp, average="macro", zero_division=0)
        m.matthews_corrcoef(yy, pp)
        m.cohen_kappa_score(yy, pp)

    confusion_based(y, pred)
    m.roc_auc_score(y, p, multi_class="ovr")
    for c in range(p.shape[1]):
        m.average_precision_score(y == c, p[:, c])
        m.brier_score_loss(y == c, p[:, c])
    m.log_loss(y, p)
    for v in range(20):
        mask = slices == v
        confusion_based(y[mask], pred[mask])
    return time.perf_counter() - t0


MLFLOW = """
import os, sys, time, tempfile
import pandas as pd
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///" + tempfile.mkdtemp() + "/mlflow.db"
import mlflow
df = pd.read_parquet(sys.argv[1])
t0 = time.perf_counter()
with mlflow.start_run():
    mlflow.evaluate(data=df, targets="label", predictions="predicted", model_type="classifier",
                    evaluators=["default"])
print(time.perf_counter() - t0)
"""

EVIDENTLY = """
import sys, time
import pandas as pd
df = pd.read_parquet(sys.argv[1])
t0 = time.perf_counter()
try:
    from evidently import DataDefinition, Dataset, MulticlassClassification, Report
    from evidently.presets import ClassificationPreset
    definition = DataDefinition(
        classification=[MulticlassClassification(target="label", prediction_labels="predicted")]
    )
    Report([ClassificationPreset()]).run(Dataset.from_pandas(df, data_definition=definition), None)
except ImportError:
    from evidently import ColumnMapping
    from evidently.metric_preset import ClassificationPreset
    from evidently.report import Report
    Report(metrics=[ClassificationPreset()]).run(
        reference_data=None, current_data=df,
        column_mapping=ColumnMapping(target="label", prediction="predicted"))
print(time.perf_counter() - t0)
"""


def other_tool(name: str, packages: list[str], script: str, table: Path, workdir: Path) -> float:
    """Install ``packages`` in a throwaway venv and time ``script`` on the predictions there."""
    venv = workdir / f"venv-{name}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *packages, "pyarrow"], check=True)
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script, str(table)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def predictions_table(path: Path, y: np.ndarray, pred: np.ndarray) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"label": y, "predicted": pred}), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--with-others", action="store_true", help="also MLflow and Evidently")
    parser.add_argument("--evidently-items", type=int, default=1_000_000)
    parser.add_argument(
        "--modes", default="exact,binned", help="ROC/PR modes compared: exact, binned or both"
    )
    args = parser.parse_args()
    y, p, pred, slices = data(args.items, args.classes)
    print(f"{args.items:,} predictions, {args.classes} classes, 20 slices")
    modes: list[Literal["exact", "binned"]] = [m for m in ("exact", "binned") if m in args.modes]  # type: ignore[misc]
    exact_values: list[tuple[float, float]] | None = None
    t_assay = 0.0
    for mode in modes:
        t_np, np_values = numpy_pass(y, p, pred, slices, args.classes, mode)
        t_assay, assay_values = assay_engine(y, p, pred, slices, args.classes, mode)
        if mode == "exact":
            exact_values = np_values
        print(f"numpy, one {mode} pass, point estimates:   {t_np:8.2f} s")
        print(
            f"assay {mode} (+intervals, slices):          {t_assay:8.2f} s   "
            f"numpy/assay = {t_np / t_assay:.3f}"
        )
        reference = (
            exact_values if exact_values is not None else exact_ranking_all(y, p, args.classes)
        )
        roc_gap, ap_gap = _largest_gap(assay_values, reference)
        print(
            f"  assay {mode} vs exact: ROC-AUC within {roc_gap:.1e}, average precision within {ap_gap:.1e}"
        )
    if not args.skip_sklearn:
        t_sk = sklearn_same(y, p, pred, slices)
        print(f"scikit-learn, same metrics: {t_sk:8.2f} s   sklearn/assay = {t_sk / t_assay:.2f}")
    if args.with_others:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            full = predictions_table(work / "all.parquet", y, pred)
            t_ml = other_tool("mlflow", ["mlflow", "pandas"], MLFLOW, full, work)
            print(
                f"MLflow evaluate, {args.items:,}: {t_ml:8.2f} s   mlflow/assay = {t_ml / t_assay:.2f}"
            )
            m = min(args.evidently_items, y.size)
            part = predictions_table(work / "part.parquet", y[:m], pred[:m])
            t_part = assay_engine(y[:m], p[:m], pred[:m], slices[:m], args.classes)
            t_ev = other_tool("evidently", ["evidently", "pandas<3"], EVIDENTLY, part, work)
            print(f"Evidently report, {m:,}: {t_ev:8.2f} s   evidently/assay = {t_ev / t_part:.2f}")


if __name__ == "__main__":
    main()
