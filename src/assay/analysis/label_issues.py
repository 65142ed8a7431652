"""CleanlabLabelIssues: items whose expert label the data doubt, by confident learning.

Confident learning (Northcutt et al., cleanlab) estimates, from the model's out-of-sample
probabilities, how often each label is confused with each other, and flags the items most likely
to carry a wrong label. The model never trained on the validation set, so its probabilities are
out-of-sample, as the method needs. The result is a list of candidates for an expert to review,
never a correction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class LabelIssues:
    indices: npt.NDArray[np.int64]  # into the input rows, most doubtful first
    label_quality: npt.NDArray[np.float64]  # per input row, 0 (doubtful) .. 1
    method: str


def find_label_issues(
    labels: npt.NDArray[np.int64], probabilities: npt.NDArray[np.float64]
) -> LabelIssues:
    """Doubtful labels among ``labels`` given ``probabilities`` [n, K] (rows sum to one)."""
    from cleanlab.filter import find_label_issues as cl_find

    version = metadata.version("cleanlab")
    method = (
        f"confident learning (cleanlab {version}, prune_by_noise_rate), ranked by self-confidence"
    )
    # Self-confidence, cleanlab's default label quality: the probability of the given label. It
    # is indexed here rather than asked of cleanlab.rank, whose input checks walk every label in
    # Python (about 0.25 s per million items, each time).
    rows = np.arange(labels.size)
    quality = np.asarray(probabilities[rows, labels], dtype=np.float64)
    present = np.unique(labels)
    if present.size < 2 or labels.size < 10:
        return LabelIssues(np.empty(0, np.int64), quality, method)
    # cleanlab needs every class of the probability matrix to occur among the labels.
    keep = np.isin(np.arange(probabilities.shape[1]), present)
    remap = -np.ones(probabilities.shape[1], dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    probs = probabilities
    if not keep.all():  # copies only when a class is absent (the rows sum to one already)
        probs = probabilities[:, keep]
        probs = probs / probs.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        # cleanlab warns about classes with few examples; the report states counts itself.
        warnings.simplefilter("ignore")
        mask = cl_find(remap[labels], probs, filter_by="prune_by_noise_rate", n_jobs=1)
    # Ranked as cleanlab's return_indices_ranked_by="self_confidence" does (on the same
    # renormalised probabilities), with a stable sort so that ties keep the items' order.
    issues = np.flatnonzero(mask)
    confidence = probs[issues, remap[labels[issues]]]
    return LabelIssues(issues[np.argsort(confidence, kind="stable")], quality, method)
