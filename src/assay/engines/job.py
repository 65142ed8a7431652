"""EngineJob and EngineOutput: what an engine is asked to do and what it gives back."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from assay.core.accumulators import Accumulator
from assay.core.failures import FailureLog
from assay.core.ports import Decoder, EmbeddingSink, PredictionSink, Runtime
from assay.core.spec import ModelSpec
from assay.core.tasks import Task, task_for


class RunCancelledError(Exception):
    """The job's cancel check said stop; nothing after the last full batch was processed."""


@dataclass
class ModelTask:
    """One model in a pass: its runtime, how to read its output, its accumulators and its sink."""

    runtime: Runtime
    spec: ModelSpec
    accumulators: list[Accumulator[Any]]
    sink: PredictionSink
    # When set, the runtime's embedding of every misclassified item is written here.
    embeddings: EmbeddingSink | None = None
    # How the model's output is read and judged; None: the spec's task.
    task: Task = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.task is None:
            self.task = task_for(self.spec)


@dataclass
class EngineJob:
    """One pass over a dataset. Several models that take the same input share the decoding."""

    batches: Iterable[Any]
    decoder: Decoder
    runtime: Runtime
    spec: ModelSpec
    accumulators: list[Accumulator[Any]]
    sink: PredictionSink
    on_progress: Callable[[int], None] = lambda n: None
    should_cancel: Callable[[], bool] = lambda: False
    # Further models judged in the same pass (e.g. the baseline); their outputs follow the first.
    more: list[ModelTask] = field(default_factory=list)
    embeddings: EmbeddingSink | None = None
    # Resuming: each task's output at the checkpoint (``batches`` then start after its items).
    start: list[EngineOutput] | None = None
    # Called at a batch boundary, once every write so far has completed, at most every
    # ``checkpoint_every_s`` seconds (0: after every batch), with each task's output so far.
    on_checkpoint: Callable[[list[EngineOutput]], None] | None = None
    checkpoint_every_s: float = 60.0

    @property
    def tasks(self) -> list[ModelTask]:
        first = ModelTask(self.runtime, self.spec, self.accumulators, self.sink, self.embeddings)
        return [first, *self.more]


@dataclass
class EngineOutput:
    """Merged accumulator states (same order as the job's accumulators), failures and timings."""

    states: list[Any]
    failures: FailureLog
    n_items: int
    timings: dict[str, float] = field(default_factory=dict)
    # One output per further model of the job, in order.
    more: list[EngineOutput] = field(default_factory=list)
