"""validate: run a model over a dataset, compare it with a baseline, and judge it by a policy."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.accumulators import Accumulator, Finalized
from assay.core.config import ValidationConfig
from assay.core.errors import AssayError, InputError
from assay.core.policy import PROFILE_METRICS, SCORE_METRICS, Policy
from assay.core.ports import Decoder
from assay.core.records import DatasetVersion, ModelVersion, RunRecord
from assay.core.results import ArtifactRef, ValidationResult
from assay.core.slicing import parse_slice_spec
from assay.core.spec import ModelSpec, TabularInput, parse_model_spec
from assay.core.tasks import Task, item_spec, task_for
from assay.core.verdict import CheckResult, Verdict, verdict_blocks
from assay.datasets import columns as cols
from assay.engines.job import EngineJob, EngineOutput, ModelPass, RunCancelledError
from assay.engines.local import LocalEngine
from assay.reports.html import render_html
from assay.reports.json import read_result_json, write_result_json
from assay.reports.junit import render_junit
from assay.reports.markdown import render_verdict_markdown
from assay.runtimes import load_model, runtime_entry
from assay.runtimes.base import expected_input_shape
from assay.services import sidecar
from assay.services.budget import budget_check
from assay.services.calibration import calibrate, overlap_check
from assay.services.coverage import audit_coverage, reweight_predictions
from assay.services.coverage import check_roles as check_coverage_roles
from assay.services.datasets import get_dataset
from assay.services.environment import describe_environment, numerics, run_numerics
from assay.services.history import never_right_so_far
from assay.services.integrity import (
    RUN_FILES,
    IntegrityError,
    run_digests,
    verify_manifest,
    verify_model_file,
    verify_run_files,
)
from assay.services.judgement import BaselineRun, judge
from assay.services.leakage import audit_leakage, check_roles, leakage_in_run
from assay.services.models import get_model
from assay.services.out_folder import OutLock, check_out
from assay.services.overlays import add_overlays
from assay.services.policies import (
    PolicySource,
    PolicyText,
    load_policy,
    one_confidence,
    policy_mapping,
    read_policy,
)
from assay.services.profile import profile_model, recorded_profile
from assay.services.recorded import Binding, bind_recorded
from assay.services.remote import is_url, upload
from assay.services.reuse import ReusedScores, ReusePlan, plan_reuse
from assay.services.task_inputs import (
    check_compatible,
    check_good_class,
    decoder_columns,
    decoder_factory,
)
from assay.services.twins import twin_reason
from assay.services.workspace import Workspace
from assay.store.checkpoints import (
    INVOCATION,
    Checkpoint,
    TaskCheckpoint,
    clear_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    read_invocation,
    save_checkpoint,
    write_invocation,
)
from assay.store.embeddings import ParquetEmbeddingSink
from assay.store.files import write_atomically
from assay.store.leases import Heartbeat, claim_run, expire_leases, this_holder
from assay.store.manifests import manifest_schema, read_manifest
from assay.store.parquet import check_parts
from assay.store.predictions import ParquetPredictionSink

ARTIFACTS = ("result.json", "report.html", "predictions.parquet")
VERDICT_ARTIFACTS = ("verdict.md", "junit.xml")


@dataclass
class ValidationOutcome:
    """The result and where its files are (the store's run folder, and ``out`` when asked)."""

    result: ValidationResult
    run_dir: Path
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def verdict_status(self) -> str | None:
        return None if self.result.verdict is None else self.result.verdict.status

    @property
    def blocking(self) -> bool:
        """Whether a release gate stops here: the verdict failed, or could not tell."""
        return self.result.verdict is not None and verdict_blocks(self.result.verdict)


def _copy_out(src: Path, dst: Path) -> None:
    """A copy of a run file in ``--out``, whole or not at all. Never a hard link: a user editing
    their output folder's predictions.parquet (a review did, with pandas) rewrote the stored
    run's evidence, and every later reuse, baseline and history refused the run."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


@dataclass
class _Model:
    """One model of a pass, from loading to its finished result."""

    version: ModelVersion
    spec: ModelSpec
    runtime: Any = None
    run: RunRecord | None = None
    accumulators: list[Accumulator[Any]] = field(default_factory=list)
    sink: ParquetPredictionSink | None = None
    embeddings: ParquetEmbeddingSink | None = None
    load_s: float = 0.0
    # Resuming: the model's state at the checkpoint (None: from the first item).
    resumed: TaskCheckpoint | None = None
    # Recorded predictions: how the file was joined with the dataset.
    binding: Binding | None = None
    # Where the run was started (cli, python, web) and the model it is compared with.
    origin: str = "python"
    baseline_id: int | None = None
    # A web run exists from its submission, queued: the pass starts that run instead of a new one.
    queued_run: str | None = None
    # Incremental validation: where the outputs reused for unchanged items come from, or why none.
    reuse: ReusePlan | None = None

    @property
    def task(self) -> Task:
        return task_for(self.spec)

    @property
    def run_dir(self) -> Path:
        assert self.run is not None
        return Path(self.run.run_dir)


def _start(
    ws: Workspace,
    m: _Model,
    dv: DatasetVersion,
    config: ValidationConfig,
    environment: dict[str, Any],
    resume_run: str | None = None,
) -> None:
    """Load the model and open its run: a new one, or ``resume_run`` taken back from
    ``interrupted`` (its sinks then reopen at the checkpoint's parts)."""
    t0 = time.perf_counter()
    # The pass reads, scores and writes on other threads beside the model: no busy-waiting.
    m.runtime = load_model(
        Path(m.version.file_path),
        m.spec,
        m.version.runtime,
        threads=config.threads,
        spin=False,
        device=config.device,
    )
    m.load_s = time.perf_counter() - t0
    if resume_run is not None:
        m.run = claim_run(ws.catalog, resume_run, this_holder())
        run_dir = m.run_dir
    elif m.queued_run is not None:
        m.run = ws.catalog.start_queued_run(
            m.queued_run,
            holder=this_holder(),
            config=config.to_dict(),
            environment=environment,
        )
        run_dir = m.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_id = uuid.uuid4().hex
        run_dir = ws.files.run_dir(run_id)
        run_dir.mkdir(parents=True)
        m.run = ws.catalog.create_run(
            holder=this_holder(),
            id=run_id,
            model_id=m.version.id,
            dataset_id=dv.id,
            config=config.to_dict(),
            environment=environment,
            run_dir=str(run_dir),
            origin=m.origin,
            baseline_model_id=m.baseline_id,
        )
    m.accumulators = m.task.accumulators(
        config.intervals, config.auc_mode_for(dv.n_items), config.n_examples
    )
    task = m.resumed
    try:
        m.sink = ParquetPredictionSink(
            run_dir / "predictions.parquet",
            m.task.item_labels,
            committed_parts=task.prediction_parts if task else (),
            extra=m.task.prediction_fields(),
            scores=m.spec.has_scores,
        )
        if m.spec.output.embedding is not None and config.explore:
            m.embeddings = ParquetEmbeddingSink(
                run_dir / "error_embeddings.parquet",
                committed_parts=task.embedding_parts if task else (),
            )
    except FileNotFoundError as exc:
        raise InputError(f"run {m.run.id} cannot be resumed: {exc}; start it again") from exc


def _item_bytes(spec: ModelSpec) -> int:
    """The float32 model input of one item, in bytes."""
    return 4 * int(np.prod(expected_input_shape(spec)))


def _decoder(spec: ModelSpec, manifest: str) -> tuple[Decoder, list[str]]:
    return decoder_factory(spec)(), decoder_columns(spec, manifest_schema(Path(manifest)))


def _result(
    m: _Model,
    dv: DatasetVersion,
    config: ValidationConfig,
    output: EngineOutput,
    engine_s: float,
    environment: dict[str, Any],
) -> ValidationResult:
    assert m.run is not None
    t0 = time.perf_counter()
    report = Finalized()
    for acc, state in zip(m.accumulators, output.states, strict=True):
        report.update(acc.finalize(state))
    if output.n_items != dv.n_items:
        raise RuntimeError(f"engine saw {output.n_items} items, the manifest holds {dv.n_items}")
    timings = dict(output.timings)
    timings.update(
        engine_s=engine_s,
        finalize_s=time.perf_counter() - t0,
        model_load_s=m.load_s,
        items_per_s=output.n_items / engine_s if engine_s > 0 else 0.0,
        total_s=engine_s + m.load_s,
    )
    mv, spec = m.version, m.spec
    return ValidationResult(
        run_id=m.run.id,
        model=ArtifactRef(mv.name, mv.version, mv.number),
        dataset=ArtifactRef(dv.name, dv.version, dv.number),
        labels=m.task.item_labels,
        n_items=output.n_items,
        n_failed=output.failures.n_failed,
        metrics=report.metrics,
        per_class=report.per_class,
        confusion_matrix=report.extras["confusion_matrix"],
        dataset_kind=dv.kind,
        reliability=report.extras.get("reliability", []),
        curves=report.extras.get("curves", {}),
        error_examples=report.extras.get("error_examples", []),
        operating_sweep=report.extras.get("operating_sweep"),
        failures=output.failures.to_dict(),
        label_counts=dv.label_counts,
        timings=timings,
        environment=environment,
        config={
            **config.to_dict(),
            "model_spec": spec.to_dict(),
            "model_ref": mv.ref,
            "dataset_ref": dv.ref,
            "model_file": mv.file_name,
            "auc_mode_used": report.extras.get("auc_mode"),
        },
        started_at=m.run.started_at.astimezone(UTC).isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        task=_task_findings(m.task, report),
        recorded_predictions=None if m.binding is None else m.binding.to_dict(),
        label_corrections=dv.options.get("corrections"),
        n_reused=int(output.counts.get("reused", 0)),
        n_inferred=int(output.counts.get("inferred", 0)),
        n_split_batches=int(output.counts.get("split_batches", 0)),
        n_split_items=int(output.counts.get("split_items", 0)),
        reuse=None if m.reuse is None else m.reuse.to_dict(),
    )


def _task_findings(task: Task, report: Finalized) -> dict[str, Any] | None:
    """The task, its item-level rule and its own findings (None: classification)."""
    if task.name == "classification":
        return None
    findings: dict[str, Any] = {"name": task.name, "item_rule": task.rule()}
    for key in ("object_confusion", "tide", "box_scores", "detection", "segmentation", "anomaly"):
        if key in report.extras:
            findings[key] = report.extras[key]
    return findings


def claim_out(out_dir: Path, overwrite: bool, store: Path | None = None) -> None:
    """Check that ``--out`` may take this run's files: a folder holding another run's files is
    refused unless ``overwrite``, and then those files are removed now, before the run: the
    folder never mixes two runs (an old comparison.parquet beside a new result.json), and a run
    that is killed or fails leaves no earlier run's PASS there for CI to publish (a review
    killed a run and found the old verdict.md and junit.xml in place)."""
    check_out(out_dir, store)
    held = [name for name in RUN_FILES if (out_dir / name).exists()]
    if held and not overwrite:
        raise InputError(
            f"--out {out_dir} already holds another run's files ({', '.join(held[:3])}"
            f"{', ...' if len(held) > 3 else ''}): choose another folder, or overwrite it (--overwrite; overwrite=True in Python)"
        )
    if held:
        clear_out(out_dir)


def clear_out(out_dir: Path) -> None:
    for name in RUN_FILES:
        (out_dir / name).unlink(missing_ok=True)


def write_artifacts(result: ValidationResult, run_dir: Path) -> dict[str, Path]:
    """Write result.json, report.html and, with a verdict, verdict.md and junit.xml."""
    files = {name: run_dir / name for name in ARTIFACTS}
    # Each file whole or not at all, and result.json last: a process killed in between left a
    # result.json saying 'finished, pass' beside a truncated report (a review).
    write_atomically(files["report.html"], render_html(result).encode("utf-8"))
    if result.verdict is not None:
        files["verdict.md"] = run_dir / "verdict.md"
        write_atomically(files["verdict.md"], render_verdict_markdown(result).encode("utf-8"))
        files["junit.xml"] = run_dir / "junit.xml"
        write_atomically(files["junit.xml"], render_junit(result).encode("utf-8"))
    write_result_json(result, files["result.json"])
    for extra in RUN_FILES[RUN_FILES.index("unmatched_predictions.csv") :]:
        if (run_dir / extra).exists():
            files[extra] = run_dir / extra
    return files


def _run_models(
    ws: Workspace,
    models: list[_Model],
    dv: DatasetVersion,
    config: ValidationConfig,
    on_start: Callable[[int], None],
    on_progress: Callable[[int], None],
    should_cancel: Callable[[], bool],
    heartbeat: Heartbeat,
    invocation: dict[str, Any],
    resume: Resume | None = None,
    on_run: Callable[[str], None] = lambda run_id: None,
) -> list[ValidationResult]:
    """One engine pass for models that share their input spec; each gets its own finished run.

    With ``resume`` naming this pass's models, their interrupted runs continue from the
    checkpoint instead of new runs starting."""
    environment = describe_environment()
    started: list[_Model] = []
    resuming = resume is not None and resume.model_ids == [m.version.id for m in models]
    checkpoint = resume.checkpoint if resume is not None and resuming else None
    if resuming and config.engine != "local":
        raise InputError("a run on Spark cannot be resumed; start it again")
    for i, m in enumerate(models):
        m.resumed = checkpoint.tasks[i] if checkpoint is not None else None
    try:
        for i, m in enumerate(models):
            run_id = resume.run_ids[i] if resume is not None and resuming else None
            _start(ws, m, dv, config, environment, run_id)
            started.append(m)
            assert m.run is not None
            heartbeat.hold(m.run.id)
            on_run(m.run.id)
        leader = models[0].run_dir
        for m in models:
            assert m.run is not None
            digest = write_invocation(
                m.run_dir,
                {**invocation, "pass": [[x.version.id, x.run.id] for x in models if x.run]},
            )
            ws.catalog.record_run_state(m.run.id, INVOCATION, digest)
        for m in models:
            m.reuse = plan_reuse(ws, m.version, m.spec, dv, config)
        decoder, columns = _decoder(models[0].spec, dv.manifest_path)
        if cols.DISPUTED in manifest_schema(Path(dv.manifest_path)).names:
            columns.append(cols.DISPUTED)
        batch_rows = config.batch_size_for(dv.kind, _item_bytes(models[0].spec))
        batches = read_manifest(Path(dv.manifest_path), batch_rows, columns)
        if checkpoint is not None:
            if checkpoint.batch_rows != batch_rows:
                raise InputError(
                    f"the checkpoint was taken with {checkpoint.batch_rows} items per batch, "
                    f"this pass reads {batch_rows}: start the run again"
                )
            batches = _skip_items(batches, checkpoint.offset)
        job = EngineJob(
            batches,
            decoder,
            [
                ModelPass(
                    m.runtime,
                    m.spec,
                    m.accumulators,
                    m.sink,
                    m.embeddings,
                    reuse=None
                    if m.reuse is None or m.reuse.path is None
                    else ReusedScores(m.reuse.path, m.spec.labels),
                )
                for m in models
                if m.sink is not None
            ],
            on_progress,
            should_cancel,
            start=None
            if checkpoint is None
            else [
                EngineOutput(
                    list(t.states), t.failures, t.n_items, dict(t.timings), counts=dict(t.counts)
                )
                for t in checkpoint.tasks
            ],
            on_checkpoint=partial(_checkpoint, ws, models, batch_rows),
            checkpoint_every_s=config.checkpoint_every_s,
        )
        on_start(dv.n_items)
        if checkpoint is not None:
            on_progress(checkpoint.offset)
        t0 = time.perf_counter()
        try:
            if config.engine == "spark":
                output = _spark_pass(models, dv, config, columns, on_progress, should_cancel)
                # The machines the model ran on, as the tasks said: what reuse compares.
                environment = {**environment, "spark_executors": output.environments}
                for m in models:
                    assert m.run is not None
                    ws.catalog.set_run_environment(m.run.id, environment)
            else:
                output = LocalEngine().run(job)
        except BaseException as exc:
            # No half-written predictions left behind; an interrupted run keeps the parts its
            # checkpoint counts, for --resume.
            keep = isinstance(exc, KeyboardInterrupt)
            for m in models:
                if m.sink is not None:
                    m.sink.abort(keep)
                if m.embeddings is not None:
                    m.embeddings.abort(keep)
            if not keep:
                _forget_checkpoint(ws, models)
                clear_checkpoint(leader)
            raise
        # The pass is whole: the catalog stops vouching for its checkpoint before the parts are
        # joined and the checkpoint removed, so a run stopped from here on (profile,
        # explorations, report) resumes from its first item instead of from files that are
        # gone (a review: such runs could never be resumed).
        _forget_checkpoint(ws, models)
        for m in models:
            if m.sink is not None:
                m.sink.close()
            if m.embeddings is not None:
                m.embeddings.close()
        clear_checkpoint(leader)
        engine_s = time.perf_counter() - t0
        if should_cancel():  # before the profile, which measures a slow model for minutes
            raise RunCancelledError()
        outputs = [output, *output.more]
        return [
            dataclasses.replace(
                _result(m, dv, config, out, engine_s, environment),
                profile=_profile(ws, m.version, dv, config),
            )
            for m, out in zip(models, outputs, strict=True)
        ]
    except RunCancelledError:
        for m in started:
            assert m.run is not None
            ws.catalog.finish_run(m.run.id, "cancelled", error="cancelled by the user")
        raise
    except BaseException as exc:
        for m in started:
            assert m.run is not None
            _end_abnormally(ws, m.run.id, exc)
        raise
    finally:
        for m in models:
            if m.runtime is not None:
                m.runtime.close()  # an endpoint's connections and threads
            if m.reuse is not None:
                m.reuse.discard()


INTERRUPTED = "interrupted: stopped by a signal (Ctrl-C or SIGTERM)"


@dataclass(frozen=True)
class Resume:
    """Which pass to continue: its models (in pass order), their runs, and the checkpoint."""

    model_ids: list[int]
    run_ids: list[str]
    checkpoint: Checkpoint | None


def _skip_items(batches: Iterator[Any], n: int) -> Iterator[Any]:
    """The batches after the first ``n`` items, which a checkpoint already accounts for. The
    batches are the ones the interrupted pass read, so the states continue exactly."""
    seen = 0
    for batch in batches:
        if seen >= n:
            yield batch
            continue
        seen += batch.num_rows
        if seen > n:
            raise InputError(
                f"the checkpoint at item {n} does not fall between two batches; start the run again"
            )


def _forget_checkpoint(ws: Workspace, models: list[_Model]) -> None:
    leader = models[0].run
    if leader is not None:
        ws.catalog.forget_checkpoint(leader.id)


def _checkpoint(
    ws: Workspace, models: list[_Model], batch_rows: int, outputs: list[EngineOutput]
) -> None:
    """Commit every model's predictions written so far, then record the states that match: in
    the leader's folder, vouched for by the catalog before the checkpoint before is removed."""
    tasks = []
    for m, out in zip(models, outputs, strict=True):
        assert m.run is not None and m.sink is not None
        tasks.append(
            TaskCheckpoint(
                m.run.id,
                list(out.states),
                out.failures,
                out.n_items,
                dict(out.timings),
                m.sink.commit(),
                m.embeddings.commit() if m.embeddings is not None else [],
                dict(out.counts),
            )
        )
    leader = models[0]
    assert leader.run is not None
    name, digest = save_checkpoint(
        leader.run_dir, Checkpoint(outputs[0].n_items, batch_rows, tasks)
    )
    ws.catalog.record_run_state(leader.run.id, name, digest)
    prune_checkpoints(leader.run_dir, name)


def _end_abnormally(ws: Workspace, run_id: str, exc: BaseException) -> None:
    """A run that did not finish: ``interrupted`` when stopped from outside, ``cancelled``
    when its user cancelled it, else ``failed``."""
    if isinstance(exc, RunCancelledError):
        ws.catalog.finish_run(run_id, "cancelled", error="cancelled by the user")
    elif isinstance(exc, KeyboardInterrupt):
        ws.catalog.finish_run(run_id, "interrupted", error=INTERRUPTED)
    else:
        ws.catalog.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])


def _spark_pass(
    models: list[_Model],
    dv: DatasetVersion,
    config: ValidationConfig,
    columns: list[str],
    on_progress: Callable[[int], None],
    should_cancel: Callable[[], bool],
) -> EngineOutput:
    """The pass on Spark: the same decoder and accumulators, run by tasks on the cluster."""
    from assay.services.spark_pass import run_on_spark  # pyspark loads only when asked for

    for m in models:
        if m.sink is not None:  # the tasks write the predictions; the local writer stays unused
            m.sink.close()
    factory = decoder_factory(models[0].spec)
    return run_on_spark(
        [(m.version, m.spec, m.accumulators, m.run_dir, m.embeddings is not None) for m in models],
        dv,
        config,
        factory,
        columns,
        on_progress,
        should_cancel,
    )


def _profile(
    ws: Workspace, model: ModelVersion, dv: DatasetVersion, config: ValidationConfig
) -> dict[str, Any] | None:
    """The model's profile, measured after the pass (never beside it, which would skew both), or
    the one an earlier run of the same version took on this machine with the same settings
    (unless --no-reuse; never for an endpoint, whose server may have changed since)."""
    if not config.profile or model.runtime == "recorded":  # nothing ran here to be measured
        return None
    try:
        spec = parse_model_spec(model.spec)
        batch = config.batch_size_for(dv.kind, _item_bytes(spec))  # the pass's batch size
        if config.reuse and model.runtime != "endpoint":
            runs = ws.catalog.finished_runs(model.id)
            known = recorded_profile(runs, batch, config.profile_seconds, config.device)
            if known is not None:
                return known
        sidecar.wait_until_warm()  # its imports would take CPU from the measurement
        return profile_model(model, batch, config.profile_seconds, config.device)
    except IntegrityError:
        raise
    except (AssayError, OSError, subprocess.SubprocessError) as exc:
        # A profile that cannot be taken is reported, and checks on it cannot pass; the
        # validation itself stands.
        return {"error": str(exc)[:500]}


def _same_answers(run: RunRecord, config: ValidationConfig) -> bool:
    """Whether an earlier run's predictions are what running its model here would give: its
    file is there, and it ran on this device with the same numerics (runtime and decoder
    versions, processor, Assay's numerics revision)."""
    return (
        (Path(run.run_dir) / "predictions.parquet").exists()
        and str(run.config.get("device", "cpu")) == config.device
        and run_numerics(run) == numerics(describe_environment())
    )


def _earlier_run(m: _Model) -> RunRecord | None:
    """The earlier run whose outputs ``m``'s pass reused, or None."""
    plan = m.reuse
    if plan is None or plan.source is None or plan.n_available == 0:
        return None
    return plan.source


def _finish(
    ws: Workspace,
    result: ValidationResult,
    run_dir: Path,
    decision: tuple[int, int, str, str] | None = None,
) -> dict[str, Path]:
    """Write the run's files and record it finished (with ``decision``, the decision it took:
    see ``Catalog.finish_run``)."""
    files = write_artifacts(result, run_dir)
    ws.catalog.finish_run(
        result.run_id,
        "finished",
        n_items=result.n_items,
        n_failed=result.n_failed,
        artifact_sha256=run_digests(run_dir),
        summary=result.summary(),
        decision=decision,
    )
    return files


@dataclass(frozen=True)
class Plan:
    """Every input of a validation, resolved and checked, before anything is recorded."""

    model: ModelVersion
    dataset: DatasetVersion
    spec: ModelSpec
    baseline: ModelVersion | None
    baseline_spec: ModelSpec | None
    policy: Policy
    # Anomaly models: the good items their threshold is calibrated on (None: the spec's).
    calibration: DatasetVersion | None = None
    # Recorded predictions, by model id: the file joined with the dataset's items.
    bindings: dict[int, Binding] = field(default_factory=dict)
    # The model's training set, audited for leakage into the dataset (--train).
    train: DatasetVersion | None = None
    # A sample of today's production, compared with the dataset (--production).
    production: DatasetVersion | None = None

    def loaded(self, model: ModelVersion) -> ModelVersion:
        """The version a pass loads: for recorded predictions, the file bound to the dataset."""
        binding = self.bindings.get(model.id)
        return model if binding is None else binding.model


def plan_validation(
    ws: Workspace,
    model: str | ModelVersion,
    dataset: str | DatasetVersion,
    baseline: str | ModelVersion | None = None,
    policy: PolicySource = None,
    slices: tuple[str, ...] = (),
    calibration: str | DatasetVersion | None = None,
    train: str | DatasetVersion | None = None,
    production: str | DatasetVersion | None = None,
) -> Plan:
    """Resolve and check a validation's inputs; raises InputError/NotFoundError naming the problem."""
    mv = model if isinstance(model, ModelVersion) else get_model(ws, model)
    dv = dataset if isinstance(dataset, DatasetVersion) else get_dataset(ws, dataset)
    verify_model_file(mv)
    if dv.role == "training":
        raise InputError(
            f"{dv.ref} is a training set (registered with --role training): models are not "
            "validated on it; audit it with `assay audit leakage --train "
            f"{dv.name} --dataset ...`"
        )
    if dv.role == "production":
        raise InputError(
            f"{dv.ref} is a production sample (registered with --role production): models are "
            f"not validated on it; compare it with `assay audit coverage --production {dv.name} "
            "--dataset ...`"
        )
    verify_manifest(ws, dv)
    spec = parse_model_spec(mv.spec)
    check_compatible(spec, dv)
    bv = (
        None
        if baseline is None
        else (baseline if isinstance(baseline, ModelVersion) else get_model(ws, baseline))
    )
    bspec = None
    if bv is not None and bv.id == mv.id:
        # Nothing would change by construction, and the verdict would read as evidence.
        shown = f" ({baseline} is {bv.ref})" if isinstance(baseline, str) else ""
        raise InputError(
            f"the baseline is the candidate itself, {mv.ref}{shown}: compare with another version"
        )
    twin = None if bv is None else twin_reason(bv, mv)
    if bv is not None and twin is not None:
        raise InputError(
            f"the baseline {bv.ref} is the same model as the candidate {mv.ref} ({twin}): "
            "compare with another version"
        )
    if bv is not None:
        verify_model_file(bv)
        bspec = parse_model_spec(bv.spec)
        check_comparable(bspec, spec, bv.ref, mv.ref)
        check_compatible(bspec, dv)
    rules = load_policy(policy, spec, bv is not None)
    if bspec is not None and bv is not None and not bspec.has_scores:
        scored = [
            c.metric
            for c in rules.checks
            if c.change is not None and c.metric.split("[")[0] in SCORE_METRICS
        ]
        if scored:
            raise InputError(
                f"baseline {bv.ref} gives a class per item and no scores: the change of "
                f"{scored[0]} against it cannot be measured"
            )
    limit = rules.max_unjudged.count
    if limit is not None and limit >= dv.n_items:
        raise InputError(
            f"policy: max_unjudged {limit} lets every one of {dv.ref}'s {dv.n_items} items go "
            "unjudged: a check that cannot fail is no evidence"
        )
    extra = tuple(parse_slice_spec(t).text for t in slices if t not in rules.slices)
    rules = dataclasses.replace(rules, slices=rules.slices + extra)
    if rules.slices:
        from assay.services.comparison import resolve_named_slices, slice_specs

        slice_specs(Path(dv.manifest_path), rules.slices)  # fails early on an unknown column
        rules = resolve_named_slices(Path(dv.manifest_path), rules)
    cal = None
    if calibration is not None:
        if spec.task != "anomaly":
            raise InputError("--calibration applies to anomaly models (task: anomaly)")
        cal = (
            calibration if isinstance(calibration, DatasetVersion) else get_dataset(ws, calibration)
        )
        verify_manifest(ws, cal)
        if cal.kind != dv.kind:  # (tables too: recorded anomaly scores of sensor rows)
            raise InputError(
                f"calibration dataset {cal.ref} holds {cal.kind} items and {dv.ref} "
                f"{dv.kind} items: the threshold is calibrated on items like the test's"
            )
        check_good_class(spec, cal)  # its good items are the ones calibrated on
    for s, v in ((spec, mv), (bspec, bv)):
        anomaly = s is not None and s.task == "anomaly" and s.threshold is None
        if anomaly and v is not None and cal is None:
            raise InputError(
                f"anomaly model {v.ref} has no threshold: set threshold in its spec, or "
                "calibrate one on good items with --calibration DATASET"
            )
    bindings = {
        v.id: bind_recorded(v, s, dv, ws.home / "cache" / "recorded")
        for v, s in ((mv, spec), (bv, bspec))
        if v is not None and s is not None and v.runtime == "recorded"
    }
    if cal is not None:  # one file may score the calibration items too: those are not strays
        bindings = {k: b.also_answering(cal) for k, b in bindings.items()}
    tv = None
    if train is not None:
        tv = train if isinstance(train, DatasetVersion) else get_dataset(ws, train)
        check_roles(tv, dv)
    pv = None
    if production is not None:
        pv = production if isinstance(production, DatasetVersion) else get_dataset(ws, production)
        check_coverage_roles(pv, dv)
    for c in rules.checks:
        if c.metric == "leaked_items" and tv is None:
            raise InputError(
                "the policy checks leaked_items, which the leakage audit counts: give --train "
                "TRAINING_SET"
            )
        if c.metric in ("domain_auc", "max_psi") and pv is None:
            raise InputError(
                f"the policy checks {c.metric}, which the coverage audit measures: give "
                "--production SAMPLE"
            )
    return Plan(mv, dv, spec, bv, bspec, rules, cal, bindings, tv, pv)


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def check_comparable(bspec: ModelSpec, spec: ModelSpec, base_ref: str, cand_ref: str) -> None:
    """Refuse a baseline that cannot be compared with the candidate, whether it runs in this
    validation or is a finished run (``compare_runs``): another task, other classes, or (for
    segmentation) the same classes in another order: an expert mask's pixel holds a class index
    in the spec's order, so two orders read the same masks two ways (a baseline listing
    [defect, background] got its own background's IoU reported as its defect IoU)."""
    if bspec.task != spec.task:
        raise InputError(
            f"baseline {base_ref} is {_a(bspec.task)} model and the candidate {cand_ref} "
            f"{_a(spec.task)} model: they cannot be compared"
        )
    if set(bspec.labels) != set(spec.labels):
        raise InputError(
            f"baseline {base_ref} has labels {list(bspec.labels)}, the candidate "
            f"{list(spec.labels)}: they must be the same classes"
        )
    if spec.task == "segmentation" and bspec.labels != spec.labels:
        raise InputError(
            f"baseline {base_ref} lists its classes as {list(bspec.labels)}, the candidate "
            f"{cand_ref} as {list(spec.labels)}: a segmentation dataset's mask indices follow "
            "one order, so the two must list them alike"
        )


def validate(
    ws: Workspace,
    model: str | ModelVersion,
    dataset: str | DatasetVersion,
    out: Path | str | None = None,
    config: ValidationConfig | None = None,
    on_start: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda n: None,
    should_cancel: Callable[[], bool] = lambda: False,
    baseline: str | ModelVersion | None = None,
    policy: PolicySource = None,
    slices: tuple[str, ...] = (),
    resume: Resume | None = None,
    on_run: Callable[[str], None] = lambda run_id: None,
    calibration: str | DatasetVersion | None = None,
    overwrite: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
    origin: str = "python",
    queued_run: str | None = None,
    train: str | DatasetVersion | None = None,
    production: str | DatasetVersion | None = None,
) -> ValidationOutcome:
    """Validate ``model`` on ``dataset``, compare with ``baseline``, judge by ``policy``.

    ``train`` (the model's training set, role training): the dataset is audited for items
    leaked from it (``assay.services.leakage``), and the result gives the metrics without them.
    ``production`` (a sample of today's production, role production): the dataset's coverage of
    it is audited (``assay.services.coverage``) and the accuracy re-weighted to its mix.

    ``origin`` records where the run was started (cli, python, web); ``queued_run`` is the
    candidate's run when it was recorded at submission (the web app's queue).
    ``out`` may not hold another run's files unless ``overwrite``. ``on_stage`` is told what
    follows the pass (statistics and explorations, then the report), which can take a while.
    ``calibration`` (anomaly models) names good items to calibrate the threshold on, at
    ``config.false_alarm_rate``, before the pass.

    Every input is checked before any run is recorded. The baseline's predictions come from its
    latest finished run on this dataset version when there is one, else from the same pass.
    ``resume`` (see ``resume_validation``) continues an interrupted pass instead of starting it.
    ``on_run`` is told the id of every run as it starts (or resumes).
    """
    config = config or ValidationConfig()
    policy = read_policy(policy)  # once: what the run is judged by is what it keeps
    plan = plan_validation(
        ws, model, dataset, baseline, policy, slices, calibration, train, production
    )
    rules, config = one_confidence(plan.policy, config)
    plan = dataclasses.replace(plan, policy=rules)
    _check_measurable(plan, config)
    out_url = str(out) if out is not None and is_url(str(out)) else None
    out_dir = Path(out).expanduser() if out is not None and out_url is None else None
    hooks_in = _Hooks(on_start, on_progress, should_cancel, on_run, on_stage)
    if out_dir is None:
        return _validate(ws, plan, policy, config, out, out_dir, out_url, hooks_in, slices,
                         overwrite, origin, queued_run, resume)  # fmt: skip
    check_out(out_dir, ws.home)  # before the folder is made, to hold it
    with OutLock(out_dir):
        claim_out(out_dir, overwrite, ws.home)
        return _validate(ws, plan, policy, config, out, out_dir, out_url, hooks_in, slices,
                         overwrite, origin, queued_run, resume)  # fmt: skip


def _validate(
    ws: Workspace,
    plan: Plan,
    policy: PolicyText | dict[str, Any] | None,
    config: ValidationConfig,
    out: Path | str | None,
    out_dir: Path | None,
    out_url: str | None,
    hooks_in: _Hooks,
    slices: tuple[str, ...],
    overwrite: bool,
    origin: str,
    queued_run: str | None,
    resume: Resume | None,
) -> ValidationOutcome:
    """``validate`` once its inputs are checked and its ``--out`` is held."""

    def on_stage(stage: str) -> None:
        # A cancel after the pass was answered "running" and ignored for minutes of
        # finalising (a review): each stage after the pass stops there.
        if hooks_in.should_cancel():
            raise RunCancelledError()
        hooks_in.on_stage(stage)

    invocation = {
        "model_id": plan.model.id,
        "dataset_id": plan.dataset.id,
        "baseline_id": None if plan.baseline is None else plan.baseline.id,
        "policy": policy_mapping(policy),
        "policy_file": policy.to_dict() if isinstance(policy, PolicyText) else None,
        "slices": list(slices),
        "calibration_id": None if plan.calibration is None else plan.calibration.id,
        "train_id": None if plan.train is None else plan.train.id,
        "production_id": None if plan.production is None else plan.production.id,
        "config": config.to_dict(),
        "out": None if out is None else str(out),
        "overwrite": overwrite,
        "origin": origin,
    }
    if config.explore:
        # The sidecar's imports (cleanlab, scikit-learn) run while the model does.
        grouping = plan.spec.output.embedding is not None or plan.dataset.kind == "image"
        sidecar.warm(sidecar.WARM_MODULES + (sidecar.GROUPING_MODULES if grouping else ()))
    started: list[str] = []

    def run_started(run_id: str) -> None:
        started.append(run_id)
        hooks_in.on_run(run_id)

    hooks = dataclasses.replace(hooks_in, on_run=run_started)
    heartbeat = Heartbeat(ws.catalog).start()  # renews the leases of the runs this pass holds
    try:
        t_start = time.perf_counter()
        passes = _run_passes(ws, plan, config, hooks, heartbeat, invocation, resume, origin,
                             queued_run)  # fmt: skip
        try:
            audited = _audited(ws, plan, config, passes, on_stage)
            preconditions, audited = _preconditions(ws, plan, passes.model, audited)
            on_stage("finalising: intervals, comparison, explorations, verdict")
            judged = _judged(ws, plan, config, passes, audited, preconditions)
            judged.timings["total_s"] = time.perf_counter() - t_start
            on_stage("writing the report")
            return _publish(ws, plan, judged, passes.model.run_dir, out_dir, out_url)
        except BaseException as exc:
            # Stopped or failed after the pass: the runs say so now, not only once their
            # lease runs out (an interrupted one resumes, from its first item).
            for run_id in started:
                if ws.catalog.get_run(run_id).status == "running":
                    _end_abnormally(ws, run_id, exc)
            raise
    finally:
        heartbeat.stop()


@dataclass(frozen=True)
class _Hooks:
    """Who is told what while a validation runs (a progress bar, a web job)."""

    on_start: Callable[[int], None]
    on_progress: Callable[[int], None]
    should_cancel: Callable[[], bool]
    on_run: Callable[[str], None]
    on_stage: Callable[[str], None]


@dataclass(frozen=True)
class _Passes:
    """What the model passes gave: the candidate's model and unfinished result (its threshold
    set), and the finished baseline run it is judged against, if any."""

    model: _Model
    result: ValidationResult
    baseline: BaselineRun | None


def check_device(plan: Plan, device: str) -> None:
    """``--device`` names a device of the candidate's runtime and the baseline's (ONNX on
    OpenVINO's ``GPU`` would otherwise be queued from the web and fail in the worker). The
    baseline too: its earlier run is taken whole only from the same device, so it runs here."""
    for model in (plan.model, plan.baseline):
        if model is not None:
            runtime_entry(model.runtime).check_device(device)


def _check_measurable(plan: Plan, config: ValidationConfig) -> None:
    """Refuse a device the candidate's runtime has not, and a policy whose profile checks this
    validation would not measure."""
    check_device(plan, config.device)
    if config.engine == "spark":
        from assay.services.spark_pass import check_spark  # pyspark loads only when asked for

        check_spark(config)
    profiled = sorted({c.metric for c in plan.policy.checks} & PROFILE_METRICS)
    if profiled and not config.profile:
        raise InputError(
            f"the policy checks {profiled[0]}, which the model profile measures: drop --no-profile"
        )
    if profiled and plan.model.runtime == "recorded":
        raise InputError(
            f"the policy checks {profiled[0]}, but {plan.model.ref} is recorded predictions: "
            "there is no model here to measure"
        )


def _reusable_baseline(
    ws: Workspace, plan: Plan, config: ValidationConfig, resume: Resume | None
) -> RunRecord | None:
    """The baseline's latest finished run on this dataset version, when its answers are what
    running the baseline here would give (a resumed pass that holds the baseline runs it)."""
    bv = plan.baseline
    if bv is None or (resume is not None and bv.id in resume.model_ids):
        return None
    reused = ws.catalog.find_finished_run(bv.id, plan.dataset.id)
    if reused is None or not _same_answers(reused, config):
        return None  # the baseline runs again, here, as the candidate does
    verify_run_files(reused)  # a baseline's predictions edited since: stop, never use them
    return reused


def _run_passes(
    ws: Workspace,
    plan: Plan,
    config: ValidationConfig,
    hooks: _Hooks,
    heartbeat: Heartbeat,
    invocation: dict[str, Any],
    resume: Resume | None,
    origin: str,
    queued_run: str | None,
) -> _Passes:
    """Calibrate anomaly thresholds, then run the candidate (and the baseline, unless an
    earlier run of it is taken whole): one pass when both read the same input, else two."""
    mv, bv, spec, bspec = plan.model, plan.baseline, plan.spec, plan.baseline_spec
    reused = _reusable_baseline(ws, plan, config, resume)
    thresholds: dict[int, dict[str, Any]] = {}
    cache = ws.home / "cache" / "recorded"
    spec = _thresholded(mv, spec, plan.calibration, config, thresholds, cache)
    if bspec is not None and bv is not None:
        bspec = _thresholded(bv, bspec, plan.calibration, config, thresholds, cache)
    cand = _Model(
        plan.loaded(mv),
        spec,
        binding=plan.bindings.get(mv.id),
        origin=origin,
        baseline_id=None if bv is None else bv.id,
        queued_run=queued_run,
    )
    base = (
        _Model(plan.loaded(bv), bspec, binding=plan.bindings.get(bv.id), origin=origin)
        if bv is not None and bspec is not None and reused is None
        else None
    )

    def run_pass(
        models: list[_Model],
        started: Callable[[int], None] = hooks.on_start,
        progressed: Callable[[int], None] = hooks.on_progress,
    ) -> list[ValidationResult]:
        return _run_models(ws, models, plan.dataset, config, started, progressed,
                           hooks.should_cancel, heartbeat, invocation, resume,
                           hooks.on_run)  # fmt: skip

    if base is not None and base.spec.input == spec.input:
        cand_result, base_result = run_pass([cand, base])
    else:
        if base is not None:  # different preprocessing: the baseline needs its own pass
            (base_result,) = run_pass([base], lambda n: None, lambda n: None)
        (cand_result,) = run_pass([cand])
    baseline: BaselineRun | None = None
    if base is not None:
        base_result = dataclasses.replace(base_result, threshold=thresholds.get(base.version.id))
        _finish(ws, base_result, base.run_dir)
        baseline = BaselineRun(base_result, base.run_dir, reused=False)
    elif reused is not None:
        run_dir = Path(reused.run_dir)
        baseline = BaselineRun(read_result_json(run_dir / "result.json"), run_dir, reused=True)
    cand_result = dataclasses.replace(cand_result, threshold=thresholds.get(mv.id))
    return _Passes(cand, cand_result, baseline)


def _audited(
    ws: Workspace,
    plan: Plan,
    config: ValidationConfig,
    passes: _Passes,
    on_stage: Callable[[str], None],
) -> ValidationResult:
    """The candidate's result with the leakage (--train) and coverage (--production) audits."""
    result, dv, preds = passes.result, plan.dataset, passes.model.run_dir / "predictions.parquet"
    if plan.train is not None:
        on_stage(f"auditing {dv.ref} for items leaked from {plan.train.ref}")
        # Rows the model reads alike are one item to it: a table is compared on its inputs.
        inputs = plan.spec.input
        audit = audit_leakage(
            ws, plan.train, dv, columns=inputs.columns if isinstance(inputs, TabularInput) else None
        )
        negative = plan.spec.negative_index if plan.spec.task == "classification" else 0
        leakage = leakage_in_run(audit, preds, result.labels, negative, config.intervals)
        result = dataclasses.replace(result, leakage=leakage)
    if plan.production is not None:
        on_stage(f"auditing how {dv.ref} covers production sample {plan.production.ref}")
        inputs = plan.spec.input
        covered = audit_coverage(
            ws, plan.production, dv, confidence=config.confidence, seed=config.seed,
            inputs=inputs.columns if isinstance(inputs, TabularInput) else (),
        )  # fmt: skip
        doc = covered.summary()
        if covered.p_validation is not None:
            doc["reweighted"] = reweight_predictions(
                covered, preds, result.run_id, config.confidence, config.seed
            )
        result = dataclasses.replace(result, coverage=doc)
    return result


def _leakage_check(
    leakage: dict[str, Any], train: DatasetVersion, dv: DatasetVersion
) -> CheckResult:
    """With ``--train`` and no rule of the policy's own on ``leaked_items``: no item may have
    leaked. A validation on items the model was trained on measures memory, not the model
    (every item leaked passed before); a policy that tolerates some says so
    (``leaked_items <= 5``, or ``severity: warn``)."""
    n = int(leakage["n_leaked_items"])
    reason = (
        f"{n} item(s) of {dv.ref} duplicate or nearly duplicate items of the training set "
        f"{train.ref}: the metrics without them are in the result"
        if n
        else f"no item of {dv.ref} duplicates an item of the training set {train.ref}"
    )
    return CheckResult(
        name="no item leaked from training",
        status="fail" if n else "pass",
        value=float(n),
        threshold=0.0,
        reason=reason,
        metric="leaked_items",
        limit="== 0",
    )


def _unseen_classes_check(task: dict[str, Any] | None) -> CheckResult | None:
    """A detector's boxes, at its operating score, of classes no expert box of the dataset has:
    each is a false alarm, and AP cannot see them (pycocotools leaves a class without expert
    boxes out of map, and its own AP is undefined). A review's detector put five boxes of such
    a class at 0.99 on every image, every image was wrong, and map and per-class AP checks
    passed without a word. A warning, since AP-only policies are blind to it by construction;
    a policy that checks the image-level decision (accuracy, the default kappa) fails it."""
    confusion = (task or {}).get("object_confusion")
    if not confusion:
        return None
    labels, matrix = confusion["labels"][:-1], np.asarray(confusion["matrix"], np.int64)
    experts, model = matrix[:-1, :-1].sum(axis=1) + matrix[:-1, -1], matrix[:, :-1].sum(axis=0)
    unseen = {labels[k]: int(model[k]) for k in range(len(labels)) if experts[k] == 0 and model[k]}
    if not unseen:
        return None
    n = sum(unseen.values())
    named = ", ".join(f"{c} ({v:,})" for c, v in sorted(unseen.items(), key=lambda cv: -cv[1]))
    return CheckResult(
        name="no boxes of classes the experts never marked",
        status="warn",
        value=float(n),
        threshold=0.0,
        reason=(
            f"{n:,} model box(es) at score >= {confusion['score_threshold']:g} of classes no "
            f"expert box of the dataset has: {named}; each is a false alarm, and AP leaves such "
            "classes out (check accuracy to count them)"
        ),
        metric="unseen_class_boxes",
        limit="== 0",
    )


def _preconditions(
    ws: Workspace, plan: Plan, cand: _Model, result: ValidationResult
) -> tuple[tuple[CheckResult, ...], ValidationResult]:
    """The checks that must hold before the policy's own: calibration items apart from the
    validation items, recorded predictions matching the items, the decision budget (recorded
    in the result)."""
    found: tuple[CheckResult, ...] = ()
    if plan.calibration is not None:
        good = plan.spec.negative or plan.spec.labels[0]  # the images calibration used
        found += (overlap_check(plan.dataset, plan.calibration, good),)
    if cand.binding is not None:
        found += (cand.binding.check(),)
        cand.binding.write_unmatched(cand.run_dir)
    unseen = _unseen_classes_check(result.task)
    if unseen is not None:
        found += (unseen,)
    ruled = any(c.metric == "leaked_items" for c in plan.policy.checks)
    if result.leakage is not None and plan.train is not None and not ruled:
        found += (_leakage_check(result.leakage, plan.train, plan.dataset),)
    if plan.policy.reuse_budget is not None:
        spent, budget_doc = budget_check(ws, plan.dataset, plan.policy.reuse_budget, cand.run_dir)
        found += (spent,)
        result = dataclasses.replace(result, reuse_budget=budget_doc)
    return found, result


def _judged(
    ws: Workspace,
    plan: Plan,
    config: ValidationConfig,
    passes: _Passes,
    result: ValidationResult,
    preconditions: tuple[CheckResult, ...],
) -> ValidationResult:
    """The candidate judged against its baseline by the policy, explored, with overlays and
    the item history's evidence for doubtful labels."""
    cand = passes.model
    try:
        judged = judge(
            result,
            cand.run_dir,
            item_spec(cand.spec),
            plan.dataset,
            plan.policy,
            config,
            baseline=passes.baseline,
            preconditions=preconditions,
            earlier=_earlier_run(cand),
        )
    except BaseException as exc:
        _end_abnormally(ws, result.run_id, exc)
        raise
    judged = add_overlays(judged, cand.run_dir, Path(plan.dataset.manifest_path))
    if judged.doubtful_labels is not None and judged.doubtful_labels.get("method"):
        # The item history's evidence: labels no model version has ever agreed with.
        history = never_right_so_far(
            ws, plan.dataset, plan.model.id, cand.run_dir / "predictions.parquet"
        )
        if history is not None:
            judged.doubtful_labels["never_right"] = history
    return judged


def _publish(
    ws: Workspace,
    plan: Plan,
    judged: ValidationResult,
    run_dir: Path,
    out_dir: Path | None,
    out_url: str | None,
) -> ValidationOutcome:
    """Write the run's files and finish it, log its decision, copy it to ``out``."""
    decision = (
        None
        if judged.verdict is None  # the decision this validation took, for the budget
        else (plan.dataset.id, plan.model.id, "validation", judged.verdict.status)
    )
    files = _finish(ws, judged, run_dir, decision)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        clear_out(out_dir)
        # result.json last: a copy stopped half-way left a finished PASS result.json in a
        # folder without its report, verdict or JUnit file (a review).
        for name, path in sorted(files.items(), key=lambda item: item[0] == "result.json"):
            _copy_out(path, out_dir / name)
        files = {name: out_dir / name for name in files}
    if out_url is not None:
        upload(run_dir, out_url)
    return ValidationOutcome(judged, run_dir, out_dir, files)


def _thresholded(
    mv: ModelVersion,
    spec: ModelSpec,
    calibration: DatasetVersion | None,
    config: ValidationConfig,
    thresholds: dict[int, dict[str, Any]],
    cache: Path,
) -> ModelSpec:
    """An anomaly model's spec with its threshold: calibrated when a calibration set is given,
    else the spec's own (recorded in ``thresholds`` by model id)."""
    if spec.task != "anomaly":
        return spec
    if calibration is None:
        thresholds[mv.id] = {
            "value": spec.threshold,
            "method": "fixed in the model's spec",
            "target_false_alarm_rate": None,
        }
        return spec
    if mv.runtime == "recorded":  # its predictions for the calibration items
        mv = bind_recorded(mv, spec, calibration, cache).model
    found = calibrate(mv, spec, calibration, config)
    thresholds[mv.id] = found.to_dict()
    return dataclasses.replace(spec, threshold=found.threshold.value)


def _kept_policy(inv: dict[str, Any]) -> PolicyText | dict[str, Any] | None:
    """The policy an interrupted run was started with: its file's name and text, or (runs
    started before they kept the file, and policies given as mappings) the mapping."""
    kept = inv.get("policy_file")
    if isinstance(kept, dict):
        return PolicyText(str(kept["name"]), str(kept["text"]))
    mapping = inv.get("policy")
    return mapping if isinstance(mapping, dict) else None


def resume_validation(
    ws: Workspace,
    run_id: str,
    out: Path | str | None = None,
    on_start: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda n: None,
    should_cancel: Callable[[], bool] = lambda: False,
    on_run: Callable[[str], None] = lambda run_id: None,
    overwrite: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> ValidationOutcome:
    """Continue an interrupted validation from its last checkpoint, with what it was first asked
    (model, dataset, baseline, policy, settings, ``out`` unless given). The inputs are checked
    again; the result equals an uninterrupted run's."""
    expire_leases(ws.catalog)  # a run whose process just died is interrupted by now
    run = ws.catalog.get_run(run_id)
    if run.status != "interrupted":
        raise InputError(f"run {run.id} is {run.status}: only an interrupted run can be resumed")
    inv = read_invocation(Path(run.run_dir), run.artifact_sha256 or {})
    if inv is None:
        raise InputError(
            f"run {run.id} keeps no record of what it was asked (an older Assay started it): "
            "start it again"
        )
    try:
        members = [(int(m), str(r)) for m, r in inv["pass"]]
        model_id, dataset_id = int(inv["model_id"]), int(inv["dataset_id"])
        baseline_id = None if inv["baseline_id"] is None else int(inv["baseline_id"])
        config = ValidationConfig.from_dict(dict(inv["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"invocation.json of run {run.id} is damaged ({exc})") from exc
    if run_numerics(run) != numerics(describe_environment()):
        # The outputs before the checkpoint came from other runtime or decoder versions, or
        # another processor: the rest would not be the same run's answers.
        raise InputError(
            f"run {run.id} was started with other numerics (runtime or decoder versions, "
            "processor, or Assay's numerics revision) than this machine's: start it again"
        )
    records = {r: ws.catalog.get_run(r) for _, r in members}
    if run.id not in records or any(
        records[r].model_id != m or records[r].dataset_id != dataset_id for m, r in members
    ):
        # (the catalog's record of each run, not the folder's, says what it is)
        raise InputError(
            f"invocation.json of run {run.id} does not describe the runs it names: start it again"
        )
    pending = [(m, r) for m, r in members if records[r].status == "interrupted"]
    leader = records[members[0][1]]
    checkpoint = load_checkpoint(Path(leader.run_dir), leader.artifact_sha256 or {})
    if checkpoint is not None and [t.run_id for t in checkpoint.tasks] != [r for _, r in pending]:
        raise InputError(
            f"the checkpoint of run {run.id} covers runs "
            f"{[t.run_id[:12] for t in checkpoint.tasks]}, not all of them are interrupted: "
            "start it again"
        )
    for task in checkpoint.tasks if checkpoint is not None else ():
        # Before anything is claimed: a changed part leaves the run interrupted, as it was.
        folder = Path(records[task.run_id].run_dir)
        try:
            check_parts(folder / "predictions.parquet", task.prediction_parts)
            check_parts(folder / "error_embeddings.parquet", task.embedding_parts)
        except FileNotFoundError as exc:
            raise InputError(f"run {run.id} cannot be resumed: {exc}; start it again") from exc
    return validate(
        ws,
        ws.catalog.get_model_by_id(model_id),
        ws.catalog.get_dataset_by_id(dataset_id),
        out if out is not None else inv.get("out"),
        config,
        on_start,
        on_progress,
        should_cancel,
        baseline=None if baseline_id is None else ws.catalog.get_model_by_id(baseline_id),
        policy=_kept_policy(inv),
        slices=tuple(inv.get("slices") or ()),
        calibration=None
        if inv.get("calibration_id") is None
        else ws.catalog.get_dataset_by_id(int(inv["calibration_id"])),
        resume=Resume([m for m, _ in pending], [r for _, r in pending], checkpoint),
        train=None
        if inv.get("train_id") is None
        else ws.catalog.get_dataset_by_id(int(inv["train_id"])),
        production=None
        if inv.get("production_id") is None
        else ws.catalog.get_dataset_by_id(int(inv["production_id"])),
        on_run=on_run,
        overwrite=overwrite or bool(inv.get("overwrite")),
        on_stage=on_stage,
        origin=str(inv.get("origin") or "python"),
    )


__all__ = [
    "Resume",
    "ValidationOutcome",
    "Verdict",
    "check_compatible",
    "resume_validation",
    "validate",
]
