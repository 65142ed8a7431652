"""SparkEngine: the same accumulators and the same per-batch judging, spread over a Spark cluster.

The driver cuts the manifest into row ranges, one Spark task each. A task reads its rows with
Arrow, loads the model once per executor process (cached across tasks), judges every batch with
exactly the code the local engine runs, writes its predictions as one Parquet part, and returns
its accumulator states. Partial states are materialised in parallel, then streamed to the driver in
task order and merged there, one at a time: the result is the local engine's, bit for bit where
the accumulators merge exactly, and the driver holds one partial at a time.

Nothing here knows a file format or a model format: the decoder, the model loader and the sink
arrive as picklable factories from the services layer.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from assay.core.accumulators import Accumulator
from assay.core.errors import InputError
from assay.core.failures import FailureLog
from assay.core.ports import Decoder, EmbeddingSink, PredictionSink, Runtime
from assay.core.spec import ModelSpec
from assay.engines.job import EngineOutput, ModelPass, RunCancelledError
from assay.engines.local import LocalEngine

# One loaded model per executor process and model file: tasks of a run reuse it.
_RUNTIMES: dict[Any, Runtime] = {}


@dataclass
class SparkModel:
    """What an executor needs to judge one model: picklable factories, no live objects."""

    key: str  # identifies the loaded model in the executor's cache (file digest, threads)
    spec: ModelSpec
    load: Callable[[], Runtime]
    accumulators: list[Accumulator[Any]]
    sink: Callable[[str], PredictionSink]  # part file path -> sink
    parts_dir: str
    # Part file path -> sink of the misclassified items' embeddings (spec output.embedding).
    embeddings: Callable[[str], EmbeddingSink] | None = None
    embedding_parts_dir: str | None = None


@dataclass
class _Partial:
    """One task's result for one model: its accumulator states, failures and item count."""

    states: list[Any]
    failures: FailureLog
    n_items: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class SparkJob:
    manifest: str
    columns: list[str]
    n_items: int
    batch_rows: int
    rows_per_task: int
    decoder: Callable[[], Decoder]
    models: list[SparkModel]
    on_progress: Callable[[int], None] = lambda n: None
    should_cancel: Callable[[], bool] = lambda: False
    timings: dict[str, float] = field(default_factory=dict)
    # What a task says of the machine it ran on (what the model's outputs depend on there).
    environment: Callable[[], dict[str, Any]] | None = None


def check_active_session(master: str | None, conf: dict[str, str] | None) -> None:
    """InputError when this process already runs a Spark session that is not the one asked
    for. Spark keeps one context per process and getOrCreate hands it back, whatever master and
    settings were asked for: a notebook's run aimed at a cluster after a local one ran locally,
    recorded as the cluster's (a review). Checked before a run is recorded."""
    from pyspark import SparkContext

    active = SparkContext._active_spark_context
    if active is None:
        return
    if master is not None and active.master != master:
        raise InputError(
            f"a Spark session on {active.master} is already running in this process (Spark "
            f"keeps one per process): stop it (spark.stop()) to run on {master}, or leave the "
            "master out to use it"
        )
    theirs = active.getConf()
    for key, value in (conf or {}).items():
        if not key.startswith("spark.sql.") and theirs.get(key, None) != value:
            raise InputError(
                f"the Spark session running in this process has {key}={theirs.get(key, None)}, "
                f"not {value}: stop it (spark.stop()) to start one with these settings"
            )


def spark_session(master: str | None = None, conf: dict[str, str] | None = None) -> Any:
    """A Spark session (local[*] by default) whose Python workers run this interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if (master or "local").startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # PySpark warns on every import that it has not caught up with pandas 3; Assay hands it
    # no pandas objects, and the line read like a fault in a CI log.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    from pyspark.sql import SparkSession

    check_active_session(master, conf)
    builder = SparkSession.builder.master(master or "local[*]").appName("assay")
    builder = (
        builder.config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # Assay shows its own progress
        .config("spark.python.worker.reuse", "true")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _no_progress(n: int) -> None:
    pass


def _never() -> bool:
    return False


def _ranges(n_items: int, rows_per_task: int, batch_rows: int) -> list[tuple[int, int]]:
    """The tasks' row ranges: ``rows_per_task`` rounded up to whole batches, so that every task
    starts where a local pass starts a batch."""
    batch = max(1, batch_rows)
    step = -(-max(1, rows_per_task) // batch) * batch
    return [(start, min(start + step, n_items)) for start in range(0, n_items, step)]


def _read_rows(
    path: str, columns: list[str], start: int, stop: int, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Rows [start, stop) of a Parquet file in batches of ``batch_rows`` (the last one shorter),
    reading only the row groups they touch. A batch spans row groups as the local engine's do
    (``read_manifest``): cut at a row group's end instead, a model whose outputs depend on its
    batch answered otherwise on Spark (3% of the items of a review's model)."""
    file = pq.ParquetFile(path)
    meta = file.metadata
    offset = 0
    held: list[pa.Table] = []
    n_held = 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        lo, hi = max(start, offset), min(stop, offset + n)
        if lo < hi:
            held.append(file.read_row_group(g, columns=columns).slice(lo - offset, hi - lo))
            n_held += hi - lo
            while n_held >= batch_rows:
                rows = pa.concat_tables(held)
                yield from rows.slice(0, batch_rows).combine_chunks().to_batches()
                rest = rows.slice(batch_rows)
                held, n_held = [rest], rest.num_rows
        offset += n
        if offset >= stop:
            break
    if n_held:
        yield from pa.concat_tables(held).combine_chunks().to_batches()


def _score_task(job: SparkJob, index: int, start: int, stop: int) -> bytes:
    """One task: judge rows [start, stop) with every model; return the pickled partial states."""
    engine = LocalEngine()
    decoder = job.decoder()
    tasks: list[ModelPass] = []
    partials: list[_Partial] = []
    for m in job.models:
        runtime = _RUNTIMES.get(m.key)
        if runtime is None:
            runtime = _RUNTIMES[m.key] = m.load()
        part_name = f"part-{index:06d}.parquet"
        sink = m.sink(os.path.join(m.parts_dir, part_name))
        vectors = None
        if m.embeddings is not None and m.embedding_parts_dir is not None:
            vectors = m.embeddings(os.path.join(m.embedding_parts_dir, part_name))
        tasks.append(ModelPass(runtime, m.spec, m.accumulators, sink, vectors))
        partials.append(_Partial([a.empty() for a in m.accumulators], FailureLog(), 0))
    timings = {"read_s": 0.0, "decode_s": 0.0, "inference_s": 0.0, "metrics_s": 0.0}
    offset = start
    try:
        batches = _read_rows(job.manifest, job.columns, start, stop, job.batch_rows)
        while True:
            t0 = time.perf_counter()
            raw = next(batches, None)
            t1 = time.perf_counter()
            if raw is None:
                break
            prepared = decoder(raw)
            timings["read_s"] += t1 - t0
            timings["decode_s"] += time.perf_counter() - t1
            for task, part in zip(tasks, partials, strict=True):
                part.states, write = engine.process_batch(
                    task, prepared, part.states, part.failures, timings, offset, part.counts
                )
                write()
                part.n_items += prepared.n_items
            offset += prepared.n_items
    finally:
        decoder.close()
        for task in tasks:
            task.sink.close()
            if task.embeddings is not None:
                task.embeddings.close()
    here = job.environment() if job.environment is not None else None
    return pickle.dumps((index, partials, timings, here), protocol=pickle.HIGHEST_PROTOCOL)


class SparkEngine:
    """Runs a SparkJob on a Spark session; returns what LocalEngine.run returns."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, job: SparkJob) -> EngineOutput:
        for m in job.models:
            os.makedirs(m.parts_dir, exist_ok=True)
            if m.embedding_parts_dir is not None:
                os.makedirs(m.embedding_parts_dir, exist_ok=True)
        ranges = _ranges(job.n_items, job.rows_per_task, job.batch_rows)
        sc = self.session.sparkContext
        # Tasks get the job without the driver's callbacks (a progress bar does not travel).
        work = replace(job, on_progress=_no_progress, should_cancel=_never, timings={})
        scored = (
            sc.parallelize(list(enumerate(ranges)), max(1, len(ranges)))
            .map(lambda task: _score_task(work, task[0], *task[1]))
            .persist()
        )
        try:
            reported = self._run_tasks(scored, job, ranges)  # every task runs now, in parallel
            outputs = [
                EngineOutput([a.empty() for a in m.accumulators], FailureLog(), 0, {})
                for m in job.models
            ]
            timings: dict[str, float] = {}
            seen: dict[str, dict[str, Any]] = {}
            # Partials stream back in task order (the manifest's order) and merge one at a time.
            for blob in scored.toLocalIterator():
                if job.should_cancel():
                    raise RunCancelledError()
                _, partials, task_timings, here = pickle.loads(blob)
                if here is not None:
                    seen.setdefault(json.dumps(here, sort_keys=True, default=str), here)
                for m, out, part in zip(job.models, outputs, partials, strict=True):
                    out.states = [
                        acc.merge(s, p)
                        for acc, s, p in zip(m.accumulators, out.states, part.states, strict=True)
                    ]
                    out.failures = out.failures.merge(part.failures)
                    out.n_items += part.n_items
                    for k, v in part.counts.items():
                        out.counts[k] = out.counts.get(k, 0) + v
                for k, v in task_timings.items():
                    timings[k] = timings.get(k, 0.0) + v  # summed over tasks: CPU-time-like
            if job.n_items > reported:
                job.on_progress(job.n_items - reported)  # the rest of the items, now merged
        finally:
            scored.unpersist()
        first, *more = outputs
        for out in outputs:  # one pass: every model of it gets the pass's timings (a baseline too)
            out.timings = {**timings, **job.timings}
            out.environments = [seen[k] for k in sorted(seen)]
        first.more = more
        return first

    def _run_tasks(self, scored: Any, job: SparkJob, ranges: list[tuple[int, int]]) -> int:
        """Run every task (``scored.count()``) while telling ``job.on_progress`` the items of
        the tasks finished so far (the pass sat at 0% until its end: a review), and cancelling
        the tasks when ``job.should_cancel()`` or on Ctrl-C. Returns the items reported."""
        sc = self.session.sparkContext
        group = f"assay-{uuid.uuid4().hex}"
        done = threading.Event()
        failure: list[BaseException] = []

        def count() -> None:
            try:
                # Job groups are per thread: set in the thread that starts the job.
                sc.setJobGroup(group, "assay validation pass", interruptOnCancel=True)
                scored.count()
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)
            finally:
                done.set()

        worker = threading.Thread(target=count, name="assay-spark-pass", daemon=True)
        worker.start()
        reported = 0
        sizes = [stop - start for start, stop in ranges]
        step = sizes[0] if sizes else 0
        try:
            while not done.wait(0.5):
                if job.should_cancel():
                    sc.cancelJobGroup(group)
                    worker.join()
                    raise RunCancelledError()
                finished = _finished_tasks(sc, group)
                items = min(job.n_items, finished * step)
                if items > reported:
                    job.on_progress(items - reported)
                    reported = items
        except KeyboardInterrupt:
            sc.cancelJobGroup(group)
            raise
        if failure:
            raise failure[0]
        return reported


def _finished_tasks(sc: Any, group: str) -> int:
    """Tasks of ``group``'s jobs finished so far (0 when Spark cannot say)."""
    try:
        tracker = sc.statusTracker()
        total = 0
        for job_id in tracker.getJobIdsForGroup(group):
            info = tracker.getJobInfo(job_id)
            for stage_id in info.stageIds if info is not None else ():
                stage = tracker.getStageInfo(stage_id)
                total += stage.numCompletedTasks if stage is not None else 0
        return total
    except Exception:  # progress is information: never a reason to stop the pass
        return 0


def parts_in_order(parts_dir: str) -> list[str]:
    """The part files of a run's predictions (or embeddings), in the manifest's order; tasks
    that wrote nothing (no misclassified item) have no part."""
    names = sorted(
        n for n in os.listdir(parts_dir) if n.startswith("part-") and n.endswith(".parquet")
    )
    return [os.path.join(parts_dir, n) for n in names]


__all__ = [
    "SparkEngine",
    "SparkJob",
    "SparkModel",
    "check_active_session",
    "parts_in_order",
    "spark_session",
]
