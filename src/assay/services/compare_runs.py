"""compare_runs: judge one finished run against another on the same dataset version.

Finished runs are immutable, so the comparison's files go to their own folder: ``out``, or
``comparisons/<candidate>-vs-<baseline>`` under the store.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from assay.core.config import ValidationConfig
from assay.core.records import RunRecord
from assay.core.spec import parse_model_spec
from assay.core.tasks import item_spec
from assay.core.verdict import CheckResult
from assay.reports.json import read_result_json
from assay.services.budget import budget_check
from assay.services.comparison import resolve_named_slices
from assay.services.integrity import verify_manifest
from assay.services.judgement import BaselineRun, judge
from assay.services.out_folder import OutLock, check_out
from assay.services.policies import load_policy, one_confidence
from assay.services.runs import paired_runs
from assay.services.validation import (
    ValidationOutcome,
    check_comparable,
    claim_out,
    clear_out,
    write_artifacts,
)
from assay.services.workspace import Workspace


def compare_runs(
    ws: Workspace,
    candidate: str,
    baseline: str,
    policy: Path | str | dict[str, Any] | None = None,
    out: Path | str | None = None,
    overwrite: bool = False,
) -> ValidationOutcome:
    """The candidate's result with the paired comparison and the verdict, written to a new folder
    (``out``: one holding another run's files is refused unless ``overwrite``, as for a
    validation, and held while the files are written)."""
    if out is not None:
        check_out(out, ws.home)
    cand_run, base_run = paired_runs(ws, candidate, baseline)
    target = (
        Path(out).expanduser()
        if out is not None
        else ws.files.root / "comparisons" / f"{cand_run.id[:12]}-vs-{base_run.id[:12]}"
    )
    with OutLock(target):
        if out is not None:
            # A validation's folder took this comparison's verdict.md beside its own
            # predictions: the folder mixed two runs (a review).
            claim_out(target, overwrite, ws.home)
        else:
            clear_out(target)  # this pair's own folder: compared again
        return _compare(ws, cand_run, base_run, policy, target)


def _compare(
    ws: Workspace,
    cand_run: RunRecord,
    base_run: RunRecord,
    policy: Path | str | dict[str, Any] | None,
    folder: Path,
) -> ValidationOutcome:
    dataset = ws.catalog.get_dataset_by_id(cand_run.dataset_id)
    verify_manifest(ws, dataset)
    cand_model = ws.catalog.get_model_by_id(cand_run.model_id)
    base_model = ws.catalog.get_model_by_id(base_run.model_id)
    spec = parse_model_spec(cand_model.spec)
    check_comparable(parse_model_spec(base_model.spec), spec, base_model.ref, cand_model.ref)
    cand_result = read_result_json(Path(cand_run.run_dir) / "result.json")
    base_result = read_result_json(Path(base_run.run_dir) / "result.json")
    rules = load_policy(policy, spec, True)
    config = ValidationConfig(
        **{
            k: v
            for k, v in cand_result.config.items()
            if k in ValidationConfig.__dataclass_fields__
        }
    )
    rules, config = one_confidence(rules, config, cand_run.id)
    rules = resolve_named_slices(Path(dataset.manifest_path), rules)
    preconditions: tuple[CheckResult, ...] = ()
    if rules.reuse_budget is not None:
        spent, budget_doc = budget_check(ws, dataset, rules.reuse_budget, folder)
        preconditions = (spent,)
        cand_result = replace(cand_result, reuse_budget=budget_doc)
    judged = judge(
        cand_result,
        Path(cand_run.run_dir),
        # The item-level decision's spec, as a validation's: a segmenter's items are judged
        # good or defect (its run wrote score_good and score_defect, not its pixel classes).
        item_spec(spec),
        dataset,
        rules,
        config,
        baseline=BaselineRun(base_result, Path(base_run.run_dir), reused=True),
        ledger_dir=folder,
        preconditions=preconditions,
    )
    if judged.verdict is not None:  # the decision this comparison took, for the budget
        # Logged before its files are written: a process stopped in between leaves one
        # decision too many in the budget, never a verdict on file that it did not count.
        ws.catalog.record_decision(
            dataset.id, cand_run.model_id, cand_run.id, "comparison", judged.verdict.status
        )
    files = write_artifacts(judged, folder)
    # predictions.parquet belongs to the candidate run; the comparison folder does not copy it.
    files.pop("predictions.parquet", None)
    return ValidationOutcome(judged, Path(cand_run.run_dir), folder, files)
