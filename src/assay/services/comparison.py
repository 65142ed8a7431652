"""The analysis pass: candidate and baseline predictions side by side, item by item.

Both predictions files come from the same dataset version, so they list the same items in the
same order; they are read in aligned chunks with the manifest's slice columns, and every item lands
in the ledger: fixed, broken, both right, both wrong, or not comparable (failed in either run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.accumulators.examples import ErrorExamplesAccumulator
from assay.core.accumulators.losses import brier_per_item, log_loss_per_item
from assay.core.batch import ScoredBatch
from assay.core.comparison import (
    OVERALL,
    Delta,
    JointCountsAccumulator,
    LossDifferenceAccumulator,
    PairedBatch,
    SliceKey,
    ledger,
    ledger_by_class,
    mcnemar,
)
from assay.core.errors import InputError
from assay.core.intervals import IntervalConfig
from assay.datasets import columns as cols
from assay.store.manifests import manifest_schema, read_column
from assay.store.predictions import LedgerSink, read_column_chunks, read_prediction_chunks

CHUNK = 65_536
MAX_CATEGORIES = 12  # a numeric column with more distinct values is sliced into quantile bins
N_BINS = 5


@dataclass
class Analysis:
    """Everything the comparison and the verdict need from the paired pass."""

    joint: dict[SliceKey, np.ndarray]
    loss_deltas: dict[str, Delta]
    n_not_comparable: int
    broken_examples: list[dict[str, Any]] = field(default_factory=list)
    fixed_examples: list[dict[str, Any]] = field(default_factory=list)
    slice_bins: dict[str, list[str]] = field(default_factory=dict)

    def summary(self, labels: tuple[str, ...]) -> dict[str, Any]:
        overall = self.joint[OVERALL]
        return {
            **ledger(overall),
            "n_not_comparable": self.n_not_comparable,
            "by_class": ledger_by_class(overall, labels),
            "by_slice": {
                " and ".join(f"{c} = {v}" for c, v in key): ledger(table)
                for key, table in sorted(self.joint.items())
                if key != OVERALL
            },
            "mcnemar": mcnemar(overall),
        }


class SliceLabeller:
    """Maps a metadata value to its slice: the value itself, or a quantile bin for numeric columns."""

    def __init__(self, column: str, values: list[Any]) -> None:
        self.column = column
        present = [v for v in values if v is not None]
        numeric = present and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in present
        )
        distinct = set(present)
        self.edges: np.ndarray | None = None
        if numeric and len(distinct) > MAX_CATEGORIES:
            qs = np.quantile(np.asarray(present, dtype=np.float64), np.linspace(0, 1, N_BINS + 1))
            self.edges = np.unique(qs)

    def labels(self, values: list[Any]) -> list[str]:
        if self.edges is None:
            return ["(missing)" if v is None else str(v) for v in values]
        e = self.edges
        out = []
        for v in values:
            if v is None or (isinstance(v, float) and np.isnan(v)):
                out.append("(missing)")
                continue
            i = int(np.clip(np.searchsorted(e, v, side="right") - 1, 0, len(e) - 2))
            close = "]" if i == len(e) - 2 else ")"
            out.append(f"[{e[i]:.4g}, {e[i + 1]:.4g}{close}")
        return out


def slice_labellers(manifest: Path, columns: tuple[str, ...]) -> dict[str, SliceLabeller]:
    """One labeller per slice column; raises InputError for a column the dataset lacks."""
    names = manifest_schema(manifest).names
    for column in columns:
        if column not in names or column in cols.RESERVED:
            available = [n for n in names if n not in cols.RESERVED]
            raise InputError(
                f"slice column {column!r} is not in the dataset (columns: {', '.join(available[:12])})"
            )
    return {c: SliceLabeller(c, read_column(manifest, c)) for c in columns}


def analyse(
    candidate: Path,
    baseline: Path | None,
    manifest: Path,
    labels: tuple[str, ...],
    slice_columns: tuple[str, ...],
    config: IntervalConfig,
    ledger_path: Path | None = None,
    n_examples: int = 24,
) -> Analysis:
    """Stream both predictions files (or the candidate alone, paired with itself) once."""
    labellers = slice_labellers(manifest, slice_columns)
    joint_acc = JointCountsAccumulator(labels, slice_columns)
    losses = [
        LossDifferenceAccumulator("log_loss", log_loss_per_item),
        LossDifferenceAccumulator("brier_score", brier_per_item),
    ]
    examples = ErrorExamplesAccumulator(labels, k=n_examples)
    joint = joint_acc.empty()
    loss_states = [a.empty() for a in losses]
    broken_state, fixed_state = examples.empty(), examples.empty()
    not_comparable = 0
    sink = (
        LedgerSink(ledger_path, labels)
        if ledger_path is not None and baseline is not None
        else None
    )
    meta_columns = (
        [*slice_columns, cols.PATH]
        if cols.PATH in manifest_schema(manifest).names
        else list(slice_columns)
    )
    cand_chunks = read_prediction_chunks(candidate, labels, CHUNK)
    base_chunks = read_prediction_chunks(baseline, labels, CHUNK) if baseline is not None else None
    meta_chunks = read_column_chunks(manifest, meta_columns, CHUNK) if meta_columns else None
    try:
        for cand in cand_chunks:
            base = next(base_chunks) if base_chunks is not None else cand
            meta = next(meta_chunks) if meta_chunks is not None else {}
            if base.item_ids != cand.item_ids:
                raise InputError(
                    "the two runs list different items; compare runs of the same dataset version"
                )
            if (base.predicted == -2).any():
                raise InputError(
                    "the baseline predicts classes the candidate's labels do not include"
                )
            ok = ~cand.failed & ~base.failed & (cand.label_index >= 0)
            idx = np.flatnonzero(ok)
            not_comparable += int((~ok).sum())
            refs = meta.get(cols.PATH, [])
            y, bp, cp = cand.label_index[idx], base.predicted[idx], cand.predicted[idx]
            ids = tuple(cand.item_ids[i] for i in idx)
            ref = tuple(refs[i] for i in idx) if refs else ()
            batch = PairedBatch(
                y,
                bp,
                cp,
                base.scores[idx],
                cand.scores[idx],
                ids,
                ref,
                {c: labellers[c].labels([meta[c][i] for i in idx]) for c in slice_columns},
            )
            joint = joint_acc.update(joint, batch)
            b_sb = ScoredBatch(y, bp, base.scores[idx], ids, ref)
            c_sb = ScoredBatch(y, cp, cand.scores[idx], ids, ref)
            loss_states = [
                a.update(s, b_sb, c_sb) for a, s in zip(losses, loss_states, strict=True)
            ]
            broken = (bp == y) & (cp != y)
            fixed = (bp != y) & (cp == y)
            broken_state = examples.update(broken_state, _subset(c_sb, broken))
            fixed_state = examples.update(fixed_state, _subset(b_sb, fixed))
            if sink is not None:
                outcome = np.full(len(cand.item_ids), "not_comparable", dtype=object)
                outcome[idx] = np.where(
                    bp == y,
                    np.where(cp == y, "both_right", "broken"),
                    np.where(cp == y, "fixed", "both_wrong"),
                )
                sink.write(
                    cand.item_ids,
                    cand.label_index,
                    base.predicted,
                    cand.predicted,
                    outcome.tolist(),
                )
    finally:
        if sink is not None:
            sink.close()
    return Analysis(
        joint=joint.counts,
        loss_deltas={a.name: a.delta(s, config) for a, s in zip(losses, loss_states, strict=True)},
        n_not_comparable=not_comparable,
        broken_examples=examples.finalize(broken_state).extras["error_examples"],
        fixed_examples=examples.finalize(fixed_state).extras["error_examples"],
        slice_bins={
            c: sorted({v for ((col, v),) in [k for k in joint.counts if len(k) == 1] if col == c})
            for c in slice_columns
        },
    )


def _subset(batch: ScoredBatch, mask: np.ndarray) -> ScoredBatch:
    keep = np.flatnonzero(mask)
    return ScoredBatch(
        batch.y_true[keep],
        batch.y_pred[keep],
        batch.scores[keep],
        tuple(batch.item_ids[i] for i in keep) if batch.item_ids else (),
        tuple(batch.refs[i] for i in keep) if batch.refs else (),
    )
