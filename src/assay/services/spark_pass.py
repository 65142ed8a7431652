"""run_on_spark: one validation pass on a Spark cluster, wired from the same parts as a local one."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from assay.core.accumulators import Accumulator
from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.core.ports import Decoder, Runtime
from assay.core.records import DatasetVersion, ModelVersion
from assay.core.spec import ModelSpec
from assay.core.tasks import task_for
from assay.engines.job import EngineOutput
from assay.engines.spark import (
    SparkEngine,
    SparkJob,
    SparkModel,
    check_active_session,
    parts_in_order,
    spark_session,
)
from assay.runtimes import load_model
from assay.runtimes.base import expected_input_shape
from assay.services.environment import describe_environment, numerics
from assay.store.embeddings import ParquetEmbeddingSink
from assay.store.parquet import combine_parts
from assay.store.predictions import ParquetPredictionSink


def _sink(
    labels: tuple[str, ...], extra: dict[str, str], scores: bool, path: str
) -> ParquetPredictionSink:
    return ParquetPredictionSink(Path(path), labels, extra=extra, scores=scores)


def _embedding_sink(path: str) -> ParquetEmbeddingSink:
    return ParquetEmbeddingSink(Path(path))


def check_spark(config: ValidationConfig) -> None:
    """Before any run is recorded: pyspark is there, the session this process may already hold
    is the one asked for, and the session starts."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise InputError(
            "--engine spark needs pyspark: pip install 'assay[spark]' (and Java 17 or later)"
        ) from None
    check_active_session(config.spark_master, dict(config.spark_conf))
    try:  # started now, so that a master Spark cannot use stops before any run is recorded
        spark_session(config.spark_master, dict(config.spark_conf))
    except InputError:
        raise
    except Exception as exc:  # pyspark's and py4j's own errors, a Java stack trace behind them
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"Spark could not start on {config.spark_master or 'local[*]'}: {first[:300]}"
        ) from None


@functools.cache
def executor_numerics() -> dict[str, Any]:
    """What a model's outputs depend on in this (executor) process: once per process."""
    return numerics(describe_environment())


def run_on_spark(
    models: list[tuple[ModelVersion, ModelSpec, list[Accumulator[Any]], Path, bool]],
    dv: DatasetVersion,
    config: ValidationConfig,
    decoder: Callable[[], Decoder],
    columns: list[str],
    on_progress: Callable[[int], None],
    should_cancel: Callable[[], bool],
) -> EngineOutput:
    """Judge ``models`` (version, spec, accumulators, run folder, whether to keep the errors'
    embeddings) on Spark. Each run folder gets its ``predictions.parquet`` (and
    ``error_embeddings.parquet``), combined from the tasks' parts in the manifest's order."""
    spark_models = []
    for mv, spec, accumulators, run_dir, embed in models:
        load: Callable[[], Runtime] = partial(
            load_model, Path(mv.file_path), spec, mv.runtime, config.threads, True, config.device
        )
        spark_models.append(
            SparkModel(
                # The file as loaded (a recorded model's is bound to this dataset), the spec, the
                # threads and the device: a long-lived executor reuses a model only when all agree.
                key=f"{mv.file_path}:{mv.version}:{config.threads}:{config.device}",
                spec=spec,
                load=load,
                accumulators=accumulators,
                sink=partial(
                    _sink,
                    task_for(spec).item_labels,
                    task_for(spec).prediction_fields(),
                    spec.has_scores,
                ),
                parts_dir=str(run_dir / "predictions.parts"),
                embeddings=_embedding_sink if embed else None,
                embedding_parts_dir=str(run_dir / "error_embeddings.parts") if embed else None,
            )
        )
    batch_rows = config.batch_size_for(
        dv.kind, 4 * int(np.prod(expected_input_shape(models[0][1])))
    )
    job = SparkJob(
        manifest=dv.manifest_path,
        columns=columns,
        n_items=dv.n_items,
        batch_rows=batch_rows,
        rows_per_task=config.spark_rows_per_task,
        decoder=decoder,
        models=spark_models,
        on_progress=on_progress,
        should_cancel=should_cancel,
        environment=executor_numerics,
    )
    session = spark_session(config.spark_master, dict(config.spark_conf))
    output = SparkEngine(session).run(job)
    for (_, _, _, run_dir, _), m in zip(models, spark_models, strict=True):
        combine_parts(parts_in_order(m.parts_dir), run_dir / "predictions.parquet")
        shutil.rmtree(m.parts_dir, ignore_errors=True)
        if m.embedding_parts_dir is not None:
            parts = parts_in_order(m.embedding_parts_dir)
            if parts:  # no part at all: no error had a vector, and no file, as locally
                combine_parts(parts, run_dir / "error_embeddings.parquet")
            shutil.rmtree(m.embedding_parts_dir, ignore_errors=True)
    return output
