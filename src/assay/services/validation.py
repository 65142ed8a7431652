"""validate: run one model version over one dataset version and save what it found."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assay.core.accumulators import Finalized, classification_accumulators
from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.core.records import DatasetVersion, ModelVersion
from assay.core.results import ArtifactRef, ValidationResult
from assay.core.spec import ImageInput, ModelSpec, TabularInput, parse_model_spec
from assay.datasets import columns as cols
from assay.datasets.features import TabularBatchDecoder, check_feature_columns
from assay.datasets.images import ImageBatchDecoder
from assay.engines.job import EngineJob, RunCancelledError
from assay.engines.local import LocalEngine
from assay.reports.html import render_html
from assay.reports.json import write_result_json
from assay.runtimes import load_model
from assay.services.datasets import get_dataset
from assay.services.environment import describe_environment
from assay.services.models import get_model
from assay.services.workspace import Workspace
from assay.store.manifests import manifest_schema, read_manifest
from assay.store.predictions import ParquetPredictionSink

ARTIFACTS = ("result.json", "report.html", "predictions.parquet")


@dataclass
class ValidationOutcome:
    """The result and where its files are (the store's run folder, and ``out`` when asked)."""

    result: ValidationResult
    run_dir: Path
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)


def check_compatible(spec: ModelSpec, dataset: DatasetVersion) -> None:
    """Raise InputError when the model cannot be judged on this dataset at all."""
    uncovered = sorted(set(dataset.label_counts) - set(spec.labels))
    if uncovered:
        raise InputError(
            f"dataset {dataset.ref} has labels {uncovered} that the model's labels {list(spec.labels)} do not cover"
        )
    if isinstance(spec.input, ImageInput) and dataset.kind != "image":
        raise InputError(f"the model takes images but dataset {dataset.ref} is a table")
    if isinstance(spec.input, TabularInput):
        if dataset.kind != "tabular":
            raise InputError(f"the model takes table rows but dataset {dataset.ref} holds images")
        check_feature_columns(manifest_schema(Path(dataset.manifest_path)), spec.input)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def validate(
    ws: Workspace,
    model: str | ModelVersion,
    dataset: str | DatasetVersion,
    out: Path | str | None = None,
    config: ValidationConfig | None = None,
    on_start: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda n: None,
    should_cancel: Callable[[], bool] = lambda: False,
) -> ValidationOutcome:
    """Validate ``model`` on ``dataset``; writes result.json, report.html and predictions.parquet."""
    config = config or ValidationConfig()
    mv = model if isinstance(model, ModelVersion) else get_model(ws, model)
    dv = dataset if isinstance(dataset, DatasetVersion) else get_dataset(ws, dataset)
    spec = parse_model_spec(mv.spec)
    check_compatible(spec, dv)
    out_dir = Path(out).expanduser() if out is not None else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} exists and is not a folder")

    t_start = time.perf_counter()
    runtime = load_model(Path(mv.file_path), spec, mv.runtime, threads=config.threads)
    load_s = time.perf_counter() - t_start
    run_id = uuid.uuid4().hex
    run_dir = ws.files.run_dir(run_id)
    run_dir.mkdir(parents=True)
    environment = describe_environment()
    record = ws.catalog.create_run(
        id=run_id,
        model_id=mv.id,
        dataset_id=dv.id,
        config=config.to_dict(),
        environment=environment,
        run_dir=str(run_dir),
    )
    try:
        result = _execute(
            spec,
            mv,
            dv,
            config,
            runtime,
            run_dir,
            run_id,
            environment,
            on_start,
            on_progress,
            should_cancel,
            record.started_at,
        )
    except RunCancelledError:
        ws.catalog.finish_run(run_id, "cancelled", error="cancelled by the user")
        raise
    except BaseException as exc:
        ws.catalog.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    result.timings["model_load_s"] = load_s
    result.timings["total_s"] = time.perf_counter() - t_start
    files = {name: run_dir / name for name in ARTIFACTS}
    write_result_json(result, files["result.json"])
    files["report.html"].write_text(render_html(result), encoding="utf-8")
    ws.catalog.finish_run(run_id, "finished", n_items=result.n_items, n_failed=result.n_failed)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            _link_or_copy(path, out_dir / name)
        files = {name: out_dir / name for name in ARTIFACTS}
    return ValidationOutcome(result, run_dir, out_dir, files)


def _execute(
    spec: ModelSpec,
    mv: ModelVersion,
    dv: DatasetVersion,
    config: ValidationConfig,
    runtime: Any,
    run_dir: Path,
    run_id: str,
    environment: dict[str, Any],
    on_start: Callable[[int], None],
    on_progress: Callable[[int], None],
    should_cancel: Callable[[], bool],
    started_at: datetime,
) -> ValidationResult:
    accumulators = classification_accumulators(
        spec.labels,
        config.intervals,
        spec.positive_index,
        config.auc_mode_for(dv.n_items),
        config.n_examples,
    )
    decoder: ImageBatchDecoder | TabularBatchDecoder
    if isinstance(spec.input, ImageInput):
        decoder = ImageBatchDecoder(spec.input, spec.labels)
        columns = [cols.ITEM_ID, cols.LABEL, cols.PATH, cols.SHA256]
    else:
        decoder = TabularBatchDecoder(spec.input, spec.labels)
        columns = [cols.ITEM_ID, cols.LABEL, *spec.input.columns]
    batches = read_manifest(Path(dv.manifest_path), config.batch_size_for(dv.kind), columns)
    sink = ParquetPredictionSink(run_dir / "predictions.parquet", spec.labels)
    on_start(dv.n_items)
    t0 = time.perf_counter()
    try:
        output = LocalEngine().run(
            EngineJob(
                batches, decoder, runtime, spec, accumulators, sink, on_progress, should_cancel
            )
        )
    finally:
        sink.close()
    engine_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = Finalized()
    for acc, state in zip(accumulators, output.states, strict=True):
        report.update(acc.finalize(state))
    finalize_s = time.perf_counter() - t0
    if output.n_items != dv.n_items:
        raise RuntimeError(f"engine saw {output.n_items} items, the manifest holds {dv.n_items}")
    timings = dict(output.timings)
    timings.update(
        engine_s=engine_s,
        finalize_s=finalize_s,
        items_per_s=output.n_items / engine_s if engine_s > 0 else 0.0,
    )
    return ValidationResult(
        run_id=run_id,
        model=ArtifactRef(mv.name, mv.version, mv.number),
        dataset=ArtifactRef(dv.name, dv.version, dv.number),
        labels=spec.labels,
        n_items=output.n_items,
        n_failed=output.failures.n_failed,
        metrics=report.metrics,
        per_class=report.per_class,
        confusion_matrix=report.extras["confusion_matrix"],
        dataset_kind=dv.kind,
        reliability=report.extras.get("reliability", []),
        curves=report.extras.get("curves", {}),
        error_examples=report.extras.get("error_examples", []),
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
        started_at=started_at.astimezone(UTC).isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
    )
