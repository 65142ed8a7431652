"""judge: compare a finished run with its baseline and apply the policy to the evidence."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.comparison import OVERALL, Delta, slice_name
from assay.core.config import ValidationConfig
from assay.core.equivalence import equivalence_metrics
from assay.core.evidence import build_evidence, flatten_metrics
from assay.core.failures import count_without_reference
from assay.core.intervals import IntervalConfig
from assay.core.metric_value import MetricValue
from assay.core.operating_point import analyse_operating_point, point_from_counts
from assay.core.policy import (
    EQUIVALENCE_METRICS,
    POINT_ONLY_CHANGES,
    PROFILE_METRICS,
    TASK_METRICS,
    TASK_PER_CLASS_METRICS,
    Policy,
)
from assay.core.records import DatasetVersion, RunRecord
from assay.core.results import ValidationResult
from assay.core.slicing import slice_order
from assay.core.spec import ModelSpec
from assay.core.verdict import CheckResult, Coverage, evaluate_policy
from assay.services import sidecar
from assay.services.agreement import analyse_agreement
from assay.services.comparison import analyse
from assay.services.doubtful_labels import find_doubtful_labels
from assay.services.error_groups import DESCRIPTORS_FILE, find_error_groups
from assay.services.error_slices import search_error_slices, slice_columns


def audit_metrics(result: ValidationResult) -> dict[str, MetricValue]:
    """What the data audits measured for this run (``--train``, ``--production``)."""
    out: dict[str, MetricValue] = {}
    if result.leakage is not None:
        out["leaked_items"] = MetricValue.of(result.leakage["n_leaked_items"], method="measured")
    if result.coverage is not None:
        domain = result.coverage.get("domain") or {}
        # A sample too small for the two-sample test, or one the classifier scored alike
        # throughout, has tested nothing: its point AUC passed `domain_auc <= 0.7` (a review).
        auc = domain.get("auc") if domain.get("tested", True) else None
        out["domain_auc"] = MetricValue.of(auc, method="measured")
        out["max_psi"] = MetricValue.of(result.coverage.get("max_psi"), method="measured")
    return out


def profile_metrics(result: ValidationResult) -> dict[str, MetricValue]:
    """The profile's summary as metrics a policy can check (measurements: no interval)."""
    summary = (result.profile or {}).get("summary", {})
    return {name: MetricValue.of(summary.get(name), method="measured") for name in PROFILE_METRICS}


TASK_CHANGES = TASK_METRICS | TASK_PER_CLASS_METRICS


def _point_deltas(base: ValidationResult, cand: ValidationResult) -> dict[str, Delta]:
    """Deltas on the estimates only: the profile's and an anomaly model's pixel numbers, which
    have no paired interval, and the other task numbers, whose paired ones
    (``services.paired_tasks``) replace these where the runs allow."""
    b, c = (
        flatten_metrics(base.metrics, base.per_class) | profile_metrics(base),
        flatten_metrics(cand.metrics, cand.per_class) | profile_metrics(cand),
    )
    out = {}
    for name, mc in c.items():
        if name.split("[")[0] not in POINT_ONLY_CHANGES | TASK_CHANGES or name not in b:
            continue
        vb, vc = b[name].value, mc.value
        delta = None if vb is None or vc is None else vc - vb
        out[name] = Delta(name, OVERALL, vb, vc, delta, None, None)
    return out


def _compared_check(
    n_compared: int, n_eligible: int, policy: Policy, n_candidate_unjudged: int = 0
) -> CheckResult:
    """Agreement with the baseline, or a change against it, says something only on the items
    both models judged: as many of them as the policy's max_unjudged allows, else the equivalence
    and change checks stand on too little."""
    missing = n_eligible - n_compared
    limit = policy.max_unjudged
    ok = limit.allows(missing, n_eligible)
    return CheckResult(
        name=f"items both models judged: {limit.describe()}",
        status="pass" if ok else "fail",
        # The value in the limit's unit (a share or a count of items left out), not the
        # number compared under a share's label.
        value=float(missing) if limit.count is not None else missing / max(n_eligible, 1),
        threshold=float(limit.count) if limit.count is not None else limit.share,
        limit=limit.bound(),
        reason=f"{n_compared} of {n_eligible} items judged by both models, the candidate and "
        f"the baseline; {missing} are left out of the comparison of their answers"
        # Whose doing: a perfect candidate failed here on a baseline that answered half the
        # items with NaN, and the line read as the candidate's fault (a review).
        + _whose(missing, n_candidate_unjudged),
        metric="items_not_compared",
    )


def _whose(missing: int, by_candidate: int) -> str:
    """Which model left the items out of the comparison."""
    if not missing:
        return ""
    if by_candidate >= missing:
        return " (all the candidate's: it could not judge them)"
    if by_candidate == 0:
        return " (all the baseline's: it could not judge them)"
    return (
        f" (the candidate could not judge {by_candidate}, the baseline at least the other "
        f"{missing - by_candidate})"
    )


def _without_scores(
    found: dict[str, Any] | None, base: ValidationResult, spec: ModelSpec
) -> dict[str, Any] | None:
    """The score differences, with those of a model that gives no scores (a class per item,
    read as one-hot) removed: its decision flips still count."""
    base_kind = base.config.get("model_spec", {}).get("output", {}).get("kind")
    if found is None or (spec.has_scores and base_kind != "labels"):
        return found
    empty = {"max": None, "p99": None}
    return found | {
        "any_class": empty,
        "by_class": dict.fromkeys(found["by_class"], empty),
        "note": "one of the two models gives a class per item and no scores",
    }


def _reordered(
    matrix: list[list[int]], source: tuple[str, ...], target: tuple[str, ...]
) -> list[list[int]]:
    index = [source.index(label) for label in target]
    return [[matrix[i][j] for j in index] for i in index]


def _kept_descriptors(earlier: RunRecord | None) -> tuple[Path, str] | None:
    """The earlier run's descriptors file and the digest it recorded (None: nothing checked to
    take, as for a run from before descriptors were kept)."""
    digest = None if earlier is None else (earlier.artifact_sha256 or {}).get(DESCRIPTORS_FILE)
    if earlier is None or digest is None:
        return None
    return Path(earlier.run_dir) / DESCRIPTORS_FILE, digest


@dataclass(frozen=True)
class BaselineRun:
    """The baseline's finished run a candidate is judged against."""

    result: ValidationResult
    run_dir: Path
    # Whether it is an earlier run taken whole (its model did not run in this validation).
    reused: bool


def judge(
    cand: ValidationResult,
    cand_dir: Path,
    spec: ModelSpec,
    dataset: DatasetVersion,
    policy: Policy,
    config: ValidationConfig,
    baseline: BaselineRun | None = None,
    ledger_dir: Path | None = None,
    preconditions: tuple[CheckResult, ...] = (),
    earlier: RunRecord | None = None,
) -> ValidationResult:
    """The candidate's result with ``slices``, ``comparison`` and ``verdict`` filled in.

    ``earlier`` is the earlier run of the same model whose outputs this run reused: the
    explorations take what it kept of unchanged items' content (image descriptors), when it
    recorded their digest.
    """
    intervals = IntervalConfig(policy.confidence, config.n_resamples, config.seed)
    base_result = None if baseline is None else baseline.result
    base_dir = None if baseline is None else baseline.run_dir
    reused = baseline is not None and baseline.reused
    analysis = analyse(
        cand_dir / "predictions.parquet",
        None if base_dir is None else base_dir / "predictions.parquet",
        Path(dataset.manifest_path),
        spec.labels,
        policy.slices,
        intervals,
        ledger_path=(ledger_dir or cand_dir) / "comparison.parquet"
        if base_dir is not None
        else None,
        n_examples=config.n_examples,
        positive_index=spec.positive_index,
    )
    reported = flatten_metrics(cand.metrics, cand.per_class)
    # (A task's run reports no ROC-AUC of its image-level decision: nothing to compare.)
    aucs = {k: v for k, v in analysis.auc_deltas.items() if k in reported}
    # ``spec`` is the item-level decision's; the model's own says whether it is a detector.
    model_spec = cand.config.get("model_spec") or {}
    # Losses and calibration read class probabilities: a detector's or segmenter's image
    # scores (its best box) are none, and the task reports none (a review saw log loss
    # '+5.39 worse' between two detectors, a number no policy may check).
    vision = model_spec.get("task") in ("detection", "segmentation", "anomaly")
    extra: dict[str, Delta] = ({} if vision else dict(analysis.loss_deltas)) | aucs
    differences = None
    if base_result is not None:
        extra.update(_point_deltas(base_result, cand))
        if (
            model_spec.get("task") in ("detection", "segmentation", "anomaly")
            and base_dir is not None
        ):
            from assay.services.paired_tasks import task_deltas

            extra.update(
                task_deltas(
                    model_spec,
                    base_result.config.get("model_spec") or {},
                    cand_dir / "predictions.parquet",
                    base_dir / "predictions.parquet",
                    Path(dataset.manifest_path),
                    intervals,
                )
            )
        differences = _without_scores(analysis.score_differences, base_result, spec)
        if differences is not None and differences.get("note"):
            # One of the two gives classes only: its one-hot "scores" have no loss or ranking
            # to compare.
            extra = {
                k: v for k, v in extra.items() if k not in analysis.loss_deltas and k not in aucs
            }
    evidence = build_evidence(
        spec.labels,
        spec.negative_index,
        analysis.joint,
        reported | profile_metrics(cand) | audit_metrics(cand) | equivalence_metrics(differences),
        intervals,
        base_result is not None,
        extra,
    )
    model_spec = cand.config.get("model_spec") or {}
    if model_spec.get("task") in ("detection", "segmentation"):
        evidence.task_labels = tuple(str(label) for label in model_spec.get("labels") or ())
    by_reason = cand.failures.get("by_reason", {})
    evidence.coverage = Coverage(
        cand.n_items, cand.n_judged, count_without_reference(by_reason), by_reason
    )
    evidence.preconditions = list(preconditions)
    if differences is not None and any(
        c.metric.split("[")[0] in EQUIVALENCE_METRICS for c in policy.checks
    ):
        evidence.preconditions.append(
            _compared_check(
                differences["n_items"],
                evidence.coverage.n_eligible,
                policy,
                evidence.coverage.n_unjudged,
            )
        )
    elif base_result is not None and any(
        c.change is not None and c.metric not in PROFILE_METRICS for c in policy.checks
    ):
        # Changes are measured on the items both models judged. A baseline that failed on a
        # quarter of them (one class's, say) left a comparison of the rest passing "no ECE
        # regression" while the verdict said nothing of it (a hostile review).
        compared = cand.n_items - analysis.n_not_comparable
        evidence.preconditions.append(
            _compared_check(
                compared, evidence.coverage.n_eligible, policy, evidence.coverage.n_unjudged
            )
        )
    verdict = evaluate_policy(policy, evidence)
    slices = [
        {
            "slice": slice_name(key),
            "predicates": [{"column": c, "value": v} for c, v in key],
            "n_items": evidence.slice_sizes[key],
            "too_few": evidence.slice_sizes[key] < policy.min_slice_size,
            "metrics": {name: m.to_dict() for name, m in sorted(evidence.candidate[key].items())},
        }
        for key in sorted(evidence.slice_sizes, key=slice_order)
        if key != OVERALL
    ]
    comparison: dict[str, Any] | None = None
    if base_result is not None:
        summary = analysis.summary(spec.labels)
        deltas = evidence.deltas
        comparison = {
            "baseline": {
                "run_id": base_result.run_id,
                "model": base_result.model.name,
                "version": base_result.model.version,
                "number": base_result.model.number,
                "reused": reused,
            },
            **summary,
            "score_differences": differences,
            "deltas": {name: d.to_dict() for name, d in deltas.get(OVERALL, {}).items()},
            "slice_deltas": {
                slice_name(key): {
                    name: deltas[key][name].to_dict()
                    for name in ("accuracy", "macro_f1")
                    if name in deltas[key]
                }
                for key in sorted(deltas, key=slice_order)
                if key != OVERALL
            },
            "baseline_confusion_matrix": _reordered(
                base_result.confusion_matrix, base_result.labels, spec.labels
            ),
            "broken_examples": analysis.broken_examples,
            "fixed_examples": analysis.fixed_examples,
        }
    error_slices: list[dict[str, Any]] = []
    search: dict[str, Any] | None = None
    doubtful: dict[str, Any] | None = None
    groups: dict[str, Any] | None = None
    timings = dict(cand.timings)
    if config.explore:
        t_explore = time.perf_counter()
        # With a baseline, error_slices follow the broken items (as the issue defines them); the
        # candidate's own errors are searched too, since "where does it fail at all" matters as well.
        manifest = Path(dataset.manifest_path)
        exclude = tuple(v for v in (dataset.options.get("label_column"),) if v)
        # Confident learning and the grouping of errors (both on scikit-learn) run in the
        # sidecar, on the other core, while this process searches the slices; their results are
        # the same as in-process.
        doubtful_result = (
            sidecar.submit(
                find_doubtful_labels,
                cand_dir / "predictions.parquet",
                manifest,
                spec,
                (ledger_dir or cand_dir) / "doubtful_labels.parquet",
            )
            if spec.has_scores  # confident learning reads the class scores
            else lambda: None
        )
        groups_result = sidecar.submit(
            find_error_groups,
            cand_dir / "predictions.parquet",
            manifest,
            spec,
            cand_dir / "error_embeddings.parquet",
            (ledger_dir or cand_dir) / "error_groups.parquet",
            config.seed,
            _kept_descriptors(earlier),
            (ledger_dir or cand_dir) / DESCRIPTORS_FILE,
        )
        columns = slice_columns(manifest, spec, exclude)
        predictions = cand_dir / "predictions.parquet"
        own, own_search = search_error_slices(
            manifest, predictions, None, columns, policy, config.seed
        )
        if base_dir is not None:
            error_slices, search = search_error_slices(
                manifest,
                predictions,
                base_dir / "predictions.parquet",
                columns,
                policy,
                config.seed,
            )
            search["candidate_error_slices"] = own
            search["candidate_search"] = own_search
        else:
            error_slices, search = own, own_search
        timings["slice_search_s"] = time.perf_counter() - t_explore
        # A failure above leaves the sidecar's analyses to finish unread: stopping it would
        # also stop other validations' analyses in this process (a web server's threads).
        t_wait = time.perf_counter()
        doubtful = doubtful_result()
        groups = groups_result()
        if groups is not None and "n_descriptors_reused" in groups and cand.reuse is not None:
            # How much of the grouping's work the earlier run saved: part of the reuse record,
            # not of the groups (which are the same either way).
            reuse_doc = {**cand.reuse, "n_descriptors_reused": groups.pop("n_descriptors_reused")}
            cand = replace(cand, reuse=reuse_doc)
        elif groups is not None:
            groups.pop("n_descriptors_reused", None)
        # Confident learning and the grouping ran beside the search: this is what they added.
        timings["sidecar_wait_s"] = time.perf_counter() - t_wait
        timings["explore_s"] = time.perf_counter() - t_explore
    agreement = analyse_agreement(
        Path(dataset.manifest_path),
        cand_dir / "predictions.parquet",
        spec.labels,
        str(dataset.options.get("reference_label", "the dataset's label column")),
        intervals,
        (ledger_dir or cand_dir) / "disputed_items.parquet",
    )
    return replace(
        cand,
        expert_agreement=agreement,
        error_groups=groups,
        doubtful_labels=doubtful,
        error_slices=error_slices,
        error_slice_search=search,
        slices=slices,
        comparison=comparison,
        verdict=verdict,
        operating_point=operating_point(cand, spec, policy),
        timings=timings,
    )


def operating_point(
    result: ValidationResult, spec: ModelSpec, policy: Policy
) -> dict[str, Any] | None:
    """Where the model runs now, and where the policy's costs or constraint would put it.

    The headline decision (binary positive, or any defect against the good class) comes first; a
    multiclass model also gets every class one-vs-rest under ``one_vs_rest``. A constraint naming a
    class (``recall[scratch] >= 0.99``) applies to that class's sweep only.
    """
    sweep = result.operating_sweep
    if not sweep:
        return None
    cm = np.asarray(result.confusion_matrix)
    named = policy.constraint_class
    out: dict[str, Any] = {}
    if sweep.sweep is not None and len(sweep.sweep):
        if len(spec.labels) == 2 and spec.positive_index is not None:
            pos = spec.positive_index
            tp, fn = cm[pos, pos], cm[pos, 1 - pos]
            fp, tn = cm[1 - pos, pos], cm[1 - pos, 1 - pos]
            rule = (
                f"{spec.labels[pos]} when its score >= {spec.threshold}"
                if spec.threshold is not None
                else "argmax"
            )
            headline_class: str | None = spec.labels[pos]
        else:
            good = spec.negative_index
            assert good is not None
            defect = np.arange(len(spec.labels)) != good
            tp = cm[np.ix_(defect, defect)].sum()
            fn = cm[defect, good].sum()
            fp = cm[good, defect].sum()
            tn = cm[good, good]
            rule = "argmax (defect when any defect class wins)"
            headline_class = None
        constraint = policy.operating_constraint if named in (None, headline_class) else None
        out = {
            "positive": sweep.positive,
            "current": _current(tp, fp, fn, tn, rule, spec.threshold),
            **analyse_operating_point(sweep.sweep, policy.costs, constraint),
        }
    per_class = sweep.one_vs_rest
    if per_class:
        out["one_vs_rest"] = {}
        for k, label in enumerate(spec.labels):
            s = per_class.get(label)
            if s is None or not len(s):
                continue
            tp = cm[k, k]
            fn, fp = cm[k].sum() - tp, cm[:, k].sum() - tp
            constraint = policy.operating_constraint if named in (None, label) else None
            out["one_vs_rest"][label] = {
                "current": _current(tp, fp, fn, cm.sum() - tp - fn - fp, "argmax", None),
                **analyse_operating_point(s, policy.costs, constraint),
            }
    return out or None


def _current(
    tp: Any, fp: Any, fn: Any, tn: Any, rule: str, threshold: float | None
) -> dict[str, Any]:
    """The operating point the model's decision rule takes now."""
    return point_from_counts(tp, fp, fn, tn, threshold) | {"rule": rule}
