"""The analysis pass: candidate and baseline predictions side by side, item by item.

Both predictions files come from the same dataset version, so they list the same items in the
same order; they are read in aligned chunks with the manifest's slice columns, and every item lands
in the ledger: fixed, broken, both right, both wrong, or not comparable (failed in either run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from assay.core.accumulators.examples import ErrorExamplesAccumulator
from assay.core.accumulators.losses import brier_per_item, log_loss_per_item
from assay.core.batch import Picked, ScoredBatch
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
from assay.core.equivalence import EquivalenceAccumulator
from assay.core.errors import InputError, did_you_mean
from assay.core.intervals import IntervalConfig
from assay.core.paired_ap import PairedAp
from assay.core.paired_auc import PairedAuc
from assay.core.paired_calibration import PairedCalibrationAccumulator
from assay.core.policy import Policy
from assay.core.slicing import parse_slice_spec, slice_order
from assay.datasets import columns as cols
from assay.store.manifests import manifest_schema, slice_codes
from assay.store.predictions import (
    LedgerSink,
    read_column_chunks,
    read_outcome_chunks,
    read_prediction_chunks,
)

CHUNK = 65_536


@dataclass
class Analysis:
    """Everything the comparison and the verdict need from the paired pass."""

    joint: dict[SliceKey, np.ndarray]
    loss_deltas: dict[str, Delta]
    n_not_comparable: int
    broken_examples: list[dict[str, Any]] = field(default_factory=list)
    fixed_examples: list[dict[str, Any]] = field(default_factory=list)
    # With a baseline: |Δscore| and decision flips between the two (``core.equivalence``).
    score_differences: dict[str, Any] | None = None
    # With a baseline: the ROC-AUC changes with DeLong's intervals (``core.paired_auc``) and the
    # PR-AUC changes with a paired bootstrap's (``core.paired_ap``).
    auc_deltas: dict[str, Delta] = field(default_factory=dict)

    def summary(self, labels: tuple[str, ...]) -> dict[str, Any]:
        overall = self.joint[OVERALL]
        return {
            **ledger(overall),
            "n_not_comparable": self.n_not_comparable,
            "by_class": ledger_by_class(overall, labels),
            "by_slice": {
                " and ".join(f"{c} = {v}" for c, v in key): ledger(table)
                for key, table in sorted(self.joint.items(), key=lambda kv: slice_order(kv[0]))
                if key != OVERALL
            },
            "mcnemar": mcnemar(overall),
        }


def slice_specs(
    manifest: Path, specs: tuple[str, ...]
) -> dict[str, tuple[np.ndarray, tuple[SliceKey, ...]]]:
    """Per slice spec, every item's slice code and the key of each code (InputError if unknown)."""
    names = [n for n in manifest_schema(manifest).names if n not in cols.RESERVED]
    out = {}
    for text in specs:
        spec = parse_slice_spec(text)
        missing = [c for c in spec.columns if c not in names]
        if missing:
            raise InputError(
                f"slice column {missing[0]!r} is not in the dataset"
                f"{did_you_mean(missing[0], names)} (columns: {', '.join(names[:12])}"
                + (f", ... {len(names)} in all)" if len(names) > 12 else ")")
            )
        out[text] = slice_codes(manifest, spec)
    return out


def resolve_named_slices(manifest: Path, policy: Policy) -> Policy:
    """``policy`` with each named slice spelt as the dataset's slices are; InputError for one
    the dataset does not have: a misspelt value (``camera: C1`` for c1) made an empty slice,
    'too few items' a warning, and the verdict passed without the check (a review). YAML's
    readings are matched to the data's spelling: ``true`` to a boolean column's 'true', 1.0 to
    '1', a date to a date column's slice."""
    named = [r for r in policy.checks if r.slice is not None]
    if not named:
        return policy
    coded = slice_specs(manifest, policy.slices)
    schema = manifest_schema(manifest)
    rules = []
    for rule in policy.checks:
        if rule.slice is None:
            rules.append(rule)
            continue
        ((column, value),) = rule.slice
        keys = [k[0][1] for k in coded[column][1]] if column in coded else []
        dated = column in schema.names and pa.types.is_date(schema.field(column).type)
        found = value if value in keys else None
        if found is None:
            alike = [k for k in keys if _alike(value, k, dated)]
            if len(alike) > 1:
                raise InputError(
                    f"policy: slice {{{column}: {value}}} could be any of "
                    f"{', '.join(repr(k) for k in alike[:6])}: quote the one meant"
                )
            found = alike[0] if alike else None
        if found is None:
            shown = ", ".join(repr(k) for k in keys[:12]) + (
                f", ... {len(keys)} in all" if len(keys) > 12 else ""
            )
            raise InputError(
                f"policy: slice {{{column}: {value}}} is not in the dataset"
                f"{did_you_mean(value, keys)} (the slices of {column}: {shown or 'none'})"
            )
        rules.append(replace(rule, slice=((column, found),)))
    return replace(policy, checks=tuple(rules))


_DECIMAL = re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?")


def _alike(value: str, key: str, dated: bool) -> bool:
    """Whether a policy's value, as YAML read it, names the slice ``key``: a boolean (True
    for 'true'), a decimal number (1.0 for '1'), or in a date column (``dated``), a date
    (2026-01-01 for its key, the days since 1970)."""
    if value in ("True", "False"):
        return key == value.lower()
    if _DECIMAL.fullmatch(value) and _DECIMAL.fullmatch(key):
        return float(value) == float(key)
    if not dated:
        return False
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return False
    return key.lstrip("-").isdigit() and (day - date(1970, 1, 1)).days == int(key)


def analyse(
    candidate: Path,
    baseline: Path | None,
    manifest: Path,
    labels: tuple[str, ...],
    slices: tuple[str, ...],
    config: IntervalConfig,
    ledger_path: Path | None = None,
    n_examples: int = 24,
    positive_index: int | None = None,
) -> Analysis:
    """Stream both predictions files (or the candidate alone, paired with itself) once.

    ``positive_index``: the class whose ROC-AUC is the headline (binary), None for the macro
    average."""
    coded = slice_specs(manifest, slices)
    joint_acc = JointCountsAccumulator(labels, {text: keys for text, (_, keys) in coded.items()})
    if baseline is None:
        return _analyse_alone(candidate, labels, coded, joint_acc)
    losses = [
        LossDifferenceAccumulator("log_loss", log_loss_per_item),
        LossDifferenceAccumulator("brier_score", brier_per_item),
    ]
    calibration = PairedCalibrationAccumulator()
    calibration_state = calibration.empty()
    examples = ErrorExamplesAccumulator(labels, k=n_examples)
    agreement = EquivalenceAccumulator(labels, k=n_examples)
    agreement_state = agreement.empty()
    paired_auc = PairedAuc(labels, positive_index, config.confidence)
    auc_state = paired_auc.empty()
    joint = joint_acc.empty()
    loss_states = [a.empty() for a in losses]
    broken_state, fixed_state = examples.empty(), examples.empty()
    not_comparable = 0
    seen = 0  # items before the current chunk: slice codes are indexed by manifest row
    sink = (
        LedgerSink(ledger_path, labels)
        if ledger_path is not None and baseline is not None
        else None
    )
    meta_columns = [cols.PATH] if cols.PATH in manifest_schema(manifest).names else []
    cand_chunks = read_prediction_chunks(candidate, labels, CHUNK)
    base_chunks = read_prediction_chunks(baseline, labels, CHUNK) if baseline is not None else None
    meta_chunks = read_column_chunks(manifest, meta_columns, CHUNK) if meta_columns else None
    try:
        for cand in cand_chunks:
            offset = seen
            seen += len(cand.item_ids)
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
            ids = Picked(cand.item_ids, idx)
            ref = tuple(refs[i] for i in idx) if refs else ()
            batch = PairedBatch(
                y,
                bp,
                cp,
                base.scores[idx],
                cand.scores[idx],
                ids,
                ref,
                {
                    text: codes[offset : offset + len(cand.item_ids)][idx]
                    for text, (codes, _) in coded.items()
                },
            )
            joint = joint_acc.update(joint, batch)
            agreement_state = agreement.update(agreement_state, batch)
            auc_state = paired_auc.update(auc_state, y, cand.scores[idx], base.scores[idx])
            b_sb = ScoredBatch(y, bp, base.scores[idx], ids, ref)
            c_sb = ScoredBatch(y, cp, cand.scores[idx], ids, ref)
            loss_states = [
                a.update(s, b_sb, c_sb) for a, s in zip(losses, loss_states, strict=True)
            ]
            calibration_state = calibration.update(calibration_state, b_sb, c_sb)
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
        # ECE with them: like the losses, it reads the scores (a classes-only model has none).
        loss_deltas={a.name: a.delta(s, config) for a, s in zip(losses, loss_states, strict=True)}
        | {"ece": calibration.delta(calibration_state, config)},
        n_not_comparable=not_comparable,
        broken_examples=examples.finalize(broken_state).extras["error_examples"],
        fixed_examples=examples.finalize(fixed_state).extras["error_examples"],
        score_differences=agreement.finalize(agreement_state, config.confidence),
        auc_deltas={
            name: Delta(
                name,
                OVERALL,
                c.baseline,
                c.candidate,
                c.delta,
                c.ci_low,
                c.ci_high,
                n_items=c.n_items,
                se=c.std_error,
            )
            for name, c in paired_auc.finalize(auc_state).items()
        }
        # PR-AUC's change: a paired bootstrap of the same items (``core.paired_ap``).
        | PairedAp(labels, positive_index, config).finalize(auc_state),
    )


def _analyse_alone(
    candidate: Path,
    labels: tuple[str, ...],
    coded: dict[str, tuple[np.ndarray, tuple[SliceKey, ...]]],
    joint_acc: JointCountsAccumulator,
) -> Analysis:
    """Without a baseline only the (expert, candidate) counts per slice matter: read the outcome
    columns alone, not the scores and ids (this pass cost 0.5 us per item otherwise)."""
    joint = joint_acc.empty()
    not_comparable = 0
    seen = 0
    for chunk in read_outcome_chunks(candidate, labels, CHUNK):
        n = chunk.label_index.size
        ok = ~chunk.failed & (chunk.label_index >= 0)
        idx = np.flatnonzero(ok)
        not_comparable += n - idx.size
        y, pred = chunk.label_index[idx], chunk.predicted[idx]
        none = np.zeros((idx.size, 0))
        codes = {text: c[seen : seen + n][idx] for text, (c, _) in coded.items()}
        joint = joint_acc.update(joint, PairedBatch(y, pred, pred, none, none, slice_codes=codes))
        seen += n
    return Analysis(joint=joint.counts, loss_deltas={}, n_not_comparable=not_comparable)


def _subset(batch: ScoredBatch, mask: np.ndarray) -> ScoredBatch:
    keep = np.flatnonzero(mask)
    return ScoredBatch(
        batch.y_true[keep],
        batch.y_pred[keep],
        batch.scores[keep],
        Picked(batch.item_ids, keep) if batch.item_ids else (),
        tuple(batch.refs[int(i)] for i in keep) if batch.refs else (),
    )
