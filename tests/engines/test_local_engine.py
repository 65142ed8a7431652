"""LocalEngine with a fake runtime: streaming, failure isolation, cancellation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from assay.core.accumulators import ConfusionAccumulator
from assay.core.ports import ModelBatch, PartialOutput
from assay.core.prepared import PreparedBatch
from assay.core.spec import parse_model_spec
from assay.engines.job import EngineJob, ModelPass, RunCancelledError
from assay.engines.local import LocalEngine
from assay.runtimes.fake import FakeRuntime

SPEC = parse_model_spec(
    {"labels": ["ok", "defect"], "input": {"kind": "tabular", "columns": ["x"]}}
)


class ListSink:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.closed = False

    def write(self, item_ids, labels, predicted, scores, errors) -> None:  # type: ignore[no-untyped-def]
        reasons = [errors.get(i) for i in range(len(item_ids))]  # position -> reason, or none
        self.rows += list(zip(item_ids, labels, predicted, scores.tolist(), reasons, strict=True))

    def close(self) -> None:
        self.closed = True


class IdentityDecoder:
    """Raw batches are (ids, labels, x) tuples; x = nan means unreadable."""

    closed = False

    def __call__(self, raw: tuple[list[str], list[str | None], np.ndarray]) -> PreparedBatch:
        ids, labels, x = raw
        readable = ~np.isnan(x)
        index = {label: i for i, label in enumerate(SPEC.labels)}
        label_index = np.array(
            [-1 if lab is None else index.get(lab, -2) for lab in labels], np.int64
        )
        return PreparedBatch(
            ids,
            labels,
            label_index,
            x[readable][:, None].astype(np.float32),
            readable,
            dict.fromkeys(np.flatnonzero(~readable), "unreadable"),
        )

    def close(self) -> None:
        self.closed = True


def scores(x: np.ndarray) -> np.ndarray:
    if np.any(x[:, 0] == 666):
        raise RuntimeError("model crashed on 666")
    p = 1 / (1 + np.exp(-x[:, 0]))
    return np.stack([1 - p, p], axis=1)


def job(batches: list[Any], sink: ListSink, **kw: Any) -> EngineJob:
    return EngineJob(
        batches,
        IdentityDecoder(),
        [ModelPass(FakeRuntime(scores), SPEC, [ConfusionAccumulator(SPEC.labels)], sink)],
        **kw,
    )


def test_every_item_is_either_judged_or_recorded_with_its_reason() -> None:
    batches = [
        (["a", "b", "c"], ["ok", "defect", None], np.array([-2.0, 3.0, 1.0])),
        (["d", "e", "f"], ["defect", "ok", "ok"], np.array([np.nan, 666.0, -1.0])),
    ]
    sink = ListSink()
    out = LocalEngine().run(job(batches, sink))
    judged = int(out.states[0].sum())
    assert out.n_items == 6 and judged + out.failures.n_failed == 6
    reasons = dict(out.failures.items)
    assert reasons == {
        "c": "no expert label",
        "d": "unreadable",
        "e": "inference failed (RuntimeError: model crashed on 666)",
    }
    assert [r[0] for r in sink.rows] == ["a", "b", "c", "d", "e", "f"]
    assert SPEC.labels[sink.rows[5][2]] == "ok"  # the crash of "e" did not take "f" with it
    assert sink.rows[5][4] is None


def test_cancellation_stops_between_batches() -> None:
    batches = [([str(i)], ["ok"], np.array([0.0])) for i in range(10)]
    seen: list[int] = []
    with pytest.raises(RunCancelledError):
        LocalEngine().run(
            job(batches, ListSink(), on_progress=seen.append, should_cancel=lambda: len(seen) >= 3)
        )
    assert len(seen) == 3


def test_prefetch_keeps_a_bounded_number_of_batches_in_flight() -> None:
    pulled: list[int] = []
    processed: list[int] = []

    def source():  # type: ignore[no-untyped-def]
        for i in range(50):
            pulled.append(i)
            assert len(pulled) - len(processed) <= 3, "the engine read too far ahead"
            yield ([str(i)], ["ok"], np.array([0.0]))

    LocalEngine(prefetch=2).run(
        job(source(), ListSink(), on_progress=lambda n: processed.append(n))
    )  # type: ignore[arg-type]
    assert len(processed) == 50


class LookupRuntime:
    """A runtime that answers by item id (as recorded predictions do), and not for every id."""

    signature = FakeRuntime(scores).signature

    def __init__(self, known: dict[str, float]) -> None:
        self.known = known
        self.seen: list[list[str]] = []

    def predict(self, batch: ModelBatch) -> PartialOutput:
        ids = list(batch.item_ids)
        self.seen.append(ids)
        x = np.array([[self.known.get(i, np.nan)] for i in ids])
        missing = {j: "no recorded prediction" for j, i in enumerate(ids) if i not in self.known}
        return PartialOutput(scores(np.nan_to_num(x)), missing)


def test_runtimes_get_the_ids_of_readable_items_and_may_leave_some_unanswered() -> None:
    batches = [(["a", "b", "c"], ["ok", "defect", "ok"], np.array([1.0, np.nan, 0.0]))]
    runtime = LookupRuntime({"a": -2.0})
    sink = ListSink()
    out = LocalEngine().run(
        EngineJob(
            batches,
            IdentityDecoder(),
            [ModelPass(runtime, SPEC, [ConfusionAccumulator(SPEC.labels)], sink)],
        )
    )
    assert runtime.seen == [["a", "c"]]  # "b" could not be read, so it is not asked for
    assert dict(out.failures.items) == {"b": "unreadable", "c": "no recorded prediction"}
    assert int(out.states[0].sum()) == 1
    assert [r[4] for r in sink.rows] == [None, "unreadable", "no recorded prediction"]
