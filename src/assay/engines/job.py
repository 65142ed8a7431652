"""EngineJob and EngineOutput: what an engine is asked to do and what it gives back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from assay.core.accumulators import Accumulator
from assay.core.failures import FailureLog
from assay.core.ports import Decoder, EmbeddingSink, PredictionSink, ReusedOutputs, Runtime
from assay.core.spec import ModelSpec
from assay.core.tasks import Task, task_for


class RunCancelledError(Exception):
    """The job's cancel check said stop; nothing after the last full batch was processed."""


@dataclass
class ModelPass:
    """One model in a pass: its runtime, its task (how its output is read and judged), its
    accumulators and its sink."""

    runtime: Runtime
    spec: ModelSpec
    accumulators: list[Accumulator[Any]]
    sink: PredictionSink
    # When set, the runtime's embedding of every misclassified item is written here.
    embeddings: EmbeddingSink | None = None
    # How the model's output is read and judged; None: the spec's task.
    task: Task = None  # type: ignore[assignment]
    # Outputs an earlier run recorded for some items, taken instead of running the model on them
    # (classification scores only: the outputs are joined by row).
    reuse: ReusedOutputs | None = None

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = task_for(self.spec)


@dataclass
class EngineJob:
    """One pass over a dataset. Several models that take the same input (the candidate and the
    baseline) share the reading and decoding; each gets its output, in ``passes`` order."""

    batches: Iterable[Any]
    decoder: Decoder
    passes: list[ModelPass]
    on_progress: Callable[[int], None] = lambda n: None
    should_cancel: Callable[[], bool] = lambda: False
    # Resuming: each task's output at the checkpoint (``batches`` then start after its items).
    start: list[EngineOutput] | None = None
    # Called at a batch boundary, once every write so far has completed, at most every
    # ``checkpoint_every_s`` seconds (0: after every batch), with each task's output so far.
    on_checkpoint: Callable[[list[EngineOutput]], None] | None = None
    checkpoint_every_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.passes:
            raise ValueError("an engine job needs at least one model")


@dataclass
class EngineOutput:
    """Merged accumulator states (same order as the job's accumulators), failures and timings."""

    states: list[Any]
    failures: FailureLog
    n_items: int
    timings: dict[str, float] = field(default_factory=dict)
    # One output per further model of the job (its ``passes`` after the first), in order.
    more: list[EngineOutput] = field(default_factory=list)
    # Items whose output was reused from an earlier run, and items that went through the model.
    counts: dict[str, int] = field(default_factory=lambda: {"reused": 0, "inferred": 0})
    # On Spark: what each distinct executor said of itself (``SparkJob.environment``), since
    # the outputs were computed there, not where the driver runs.
    environments: list[dict[str, Any]] = field(default_factory=list)
