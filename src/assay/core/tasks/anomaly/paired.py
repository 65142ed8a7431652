"""An anomaly model's image AUROC, AUPR and F1-max against the baseline's, on the same images.

Both models scored the images both judged; the change of each number is the candidate's minus
the baseline's, from the raw anomaly scores (never the squashed probabilities the item-level
tools read, whose rounding to 1.0 would tie the highest scores). The interval is paired, so
that what the two models share (the same hard images) stays out of it:

- image AUROC: DeLong's covariance of the two AUCs (``core.paired_auc``), as for a classifier;
- image AUPR and F1-max: one image bootstrap weighting both rankings (``core.paired_ap``), with
  its half a defect each model ranks last where the other ranks it first.

Below ``MIN_PER_SIDE`` defective or good images, or when every resample gives the same change
(two models that separate the images perfectly), there is no interval: a check on the change
cannot pass on nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.ranking import average_precision_from
from assay.core.comparison import OVERALL, Delta
from assay.core.intervals import IntervalConfig
from assay.core.paired_ap import class_replicates, replicated_change
from assay.core.paired_auc import PairedAuc, PairedScoresState
from assay.core.tasks.anomaly.threshold import f1_max_from

F = npt.NDArray[np.float64]


def anomaly_changes(
    defective: npt.NDArray[np.bool_], candidate: F, baseline: F, config: IntervalConfig
) -> dict[str, Delta]:
    """``image_auroc``, ``image_aupr`` and ``f1_max``: candidate minus baseline, from each
    image's expert class (``defective``) and both models' raw anomaly scores."""
    n = int(defective.size)
    # Two columns, (good, defect): the defect column's ranking is the anomaly score's.
    state = PairedScoresState(
        [defective.astype(np.int64)],
        [np.column_stack([-candidate, candidate])],
        [np.column_stack([-baseline, baseline])],
    )
    auc = PairedAuc(("good", "defect"), 1, config.confidence).finalize(state)["roc_auc"]
    out = {
        "image_auroc": Delta(
            "image_auroc",
            OVERALL,
            auc.baseline,
            auc.candidate,
            auc.delta,
            auc.ci_low,
            auc.ci_high,
            n_items=n,
            se=auc.std_error,
        )
    }
    for name, metric in (("image_aupr", average_precision_from), ("f1_max", f1_max_from)):
        found = class_replicates(defective, candidate, baseline, config, f"paired:{name}", metric)
        out[name] = replicated_change(name, found, n, config.confidence)
    return out
