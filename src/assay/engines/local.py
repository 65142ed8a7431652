"""LocalEngine: one process, streaming, bounded memory.

Batches are decoded one step ahead on a background thread while the model runs on the current
batch (onnxruntime and Pillow both release the GIL), so reading and inference overlap. Memory is
bounded by ``prefetch`` batches in flight whatever the dataset's size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import numpy as np

from assay.core.errors import describe_exception
from assay.core.failures import FailureLog
from assay.core.ports import (
    EmbeddingRuntime,
    ModelBatch,
    PartialOutput,
    SkippingDecoder,
    model_batch,
)
from assay.core.prepared import PreparedBatch
from assay.engines.job import EngineJob, EngineOutput, ModelPass, RunCancelledError


class LocalEngine:
    """Runs an EngineJob in the current process."""

    def __init__(self, prefetch: int = 2) -> None:
        self.prefetch = max(1, prefetch)

    def _prepared(self, job: EngineJob, timings: dict[str, float]) -> Iterator[PreparedBatch]:
        """Read and decode batches on a background thread, ``prefetch`` batches ahead."""
        source = iter(job.batches)
        done = object()
        start = 0 if job.start is None else job.start[0].n_items
        read = [start]  # items read so far, on the reading thread
        reusing = [m.reuse for m in job.passes if m.reuse is not None]
        skipping = len(reusing) == len(job.passes) and getattr(job.decoder, "skips", False) is True

        def read_and_decode() -> tuple[Any, float, float]:
            t0 = time.perf_counter()
            raw = next(source, done)  # only this one thread ever advances the source
            t1 = time.perf_counter()
            if raw is done:
                return done, t1 - t0, 0.0
            if skipping:  # items every model reuses are checked, not decoded
                n = len(cast(Sized, raw))  # a batch of rows (an Arrow record batch)
                positions = np.arange(read[0], read[0] + n, dtype=np.int64)
                skip = np.logical_and.reduce([r.has(positions) for r in reusing])
                prepared = cast(SkippingDecoder, job.decoder)(raw, skip)
            else:
                prepared = job.decoder(raw)
            read[0] += prepared.n_items
            return prepared, t1 - t0, time.perf_counter() - t1

        with ThreadPoolExecutor(1, thread_name_prefix="assay-read") as pool:
            pending = [pool.submit(read_and_decode) for _ in range(self.prefetch)]
            while True:
                prepared, read_s, decode_s = pending.pop(0).result()
                timings["read_s"] += read_s
                timings["decode_s"] += decode_s
                if prepared is done:
                    for f in pending:
                        f.cancel()
                    return
                pending.append(pool.submit(read_and_decode))
                yield prepared

    def run(self, job: EngineJob) -> EngineOutput:
        """Stream every batch through decode, then predict, accumulate and write for each model."""
        passes = job.passes
        outputs = (
            [
                EngineOutput(
                    list(o.states), o.failures, o.n_items, dict(o.timings), counts=dict(o.counts)
                )
                for o in job.start
            ]
            if job.start is not None
            else [
                EngineOutput(
                    [acc.empty() for acc in model.accumulators], FailureLog(), 0, self._timings()
                )
                for model in passes
            ]
        )
        if len(outputs) != len(passes):
            raise ValueError(f"{len(outputs)} starting outputs for {len(passes)} models")
        shared = outputs[0].timings
        last_checkpoint = time.monotonic()
        # Predictions are written on their own thread (Arrow releases the GIL), at most
        # ``prefetch`` batches behind, so writing overlaps the next batch's inference.
        writer = ThreadPoolExecutor(1, thread_name_prefix="assay-write")
        pending: list[Future[None]] = []
        try:
            for prepared in self._prepared(job, shared):
                if job.should_cancel():
                    raise RunCancelledError()
                for model, out in zip(passes, outputs, strict=True):
                    out.states, write = self.process_batch(
                        model,
                        prepared,
                        out.states,
                        out.failures,
                        out.timings,
                        out.n_items,
                        out.counts,
                    )
                    out.n_items += prepared.n_items
                    pending.append(writer.submit(write))
                while len(pending) > self.prefetch * len(passes):
                    pending.pop(0).result()
                job.on_progress(prepared.n_items)
                due = time.monotonic() - last_checkpoint >= job.checkpoint_every_s
                if job.on_checkpoint is not None and due:
                    for f in pending:  # a checkpoint counts only rows already written
                        f.result()
                    pending.clear()
                    job.on_checkpoint(outputs)
                    last_checkpoint = time.monotonic()
            t0 = time.perf_counter()
            for f in pending:
                f.result()
            shared["write_wait_s"] = time.perf_counter() - t0
        finally:
            writer.shutdown(wait=True)
            job.decoder.close()
        first = outputs[0]
        first.more = outputs[1:]
        return first

    @staticmethod
    def _timings() -> dict[str, float]:
        return {"read_s": 0.0, "decode_s": 0.0, "inference_s": 0.0, "metrics_s": 0.0}

    @staticmethod
    def _run(
        job: ModelPass, batch: ModelBatch, errors: dict[int, str], rows: np.ndarray
    ) -> tuple[Any, np.ndarray | None]:
        """The task's outputs, and the embedding when the job collects them, for one model run;
        items the runtime could not answer (a PartialOutput) go to ``errors`` by their row."""
        vectors = None
        if job.embeddings is None:
            raw = job.runtime.predict(batch)
        else:
            raw, vectors = cast(EmbeddingRuntime, job.runtime).predict_with_embedding(batch)
        if isinstance(raw, PartialOutput):
            for j, reason in raw.errors.items():
                errors[int(rows[j])] = reason
            raw = raw.outputs
        outputs = job.task.decode(raw, len(batch))
        if vectors is not None and vectors.shape[0] != len(batch):
            raise ValueError(
                f"the model returned {vectors.shape[0]} embeddings for {len(batch)} items"
            )
        return outputs, vectors

    def _predict(
        self,
        job: ModelPass,
        batch: ModelBatch,
        errors: dict[int, str],
        rows: np.ndarray,
        counts: dict[str, int] | None = None,
    ) -> tuple[Any, np.ndarray | None]:
        """Outputs (and embeddings) for ``batch``; when the batch fails, retry item by item to
        isolate the culprits, tallied in ``counts`` (``split_batches``, ``split_items``): a
        model that cannot take batches at all answers every item that way, and says so."""
        if len(batch) == 0:
            return job.task.combine([]), None
        try:
            return self._run(job, batch, errors, rows)
        except Exception:
            if len(batch) == 1:
                raise
        if counts is not None:
            counts["split_batches"] = counts.get("split_batches", 0) + 1
            counts["split_items"] = counts.get("split_items", 0) + len(batch)
        parts: list[Any] = []
        vectors: np.ndarray | None = None
        for j in range(len(batch)):
            try:
                out, vec = self._run(job, batch.take(j, j + 1), errors, rows[j : j + 1])
            except Exception as exc:
                errors[int(rows[j])] = f"inference failed ({describe_exception(exc)})"
                parts.append(None)
                continue
            parts.append(out)
            if vec is not None:
                if vectors is None:
                    vectors = np.full((len(batch), vec.shape[1]), np.nan, np.float32)
                vectors[j] = vec[0]
        return job.task.combine(parts), vectors

    def _reusing(
        self,
        job: ModelPass,
        prepared: PreparedBatch,
        rows: np.ndarray,
        hit: np.ndarray,
        recorded: np.ndarray,
        errors: dict[int, str],
        offset: int,
        counts: dict[str, int] | None = None,
    ) -> np.ndarray:
        """The outputs of the readable ``rows``: recorded where ``hit``, the model's elsewhere.
        Classification only (a row of class scores per item), which is all reuse is planned for.
        """
        infer = rows[~hit]
        outputs = np.empty((rows.size, recorded.shape[1]), np.float64)
        outputs[hit] = recorded
        if infer.size:
            # The rows that have an input: readable and not skipped by the decoder.
            with_input = (
                rows
                if prepared.skipped is None
                else np.flatnonzero(prepared.readable & ~prepared.skipped)
            )
            at = np.searchsorted(with_input, infer)
            ids = prepared.item_ids
            batch = ModelBatch(
                prepared.inputs[at], [ids[i] for i in infer.tolist()], infer + offset
            )
            outputs[~hit], _ = self._predict(job, batch, errors, infer, counts)
        return outputs

    def process_batch(
        self,
        job: ModelPass,
        prepared: PreparedBatch,
        states: list[Any],
        failures: FailureLog,
        timings: dict[str, float],
        offset: int = 0,
        counts: dict[str, int] | None = None,
    ) -> tuple[list[Any], Callable[[], None]]:
        """Judge one batch; returns the new states and the write of its predictions, to run next.
        ``counts`` tallies the items whose output was reused and those the model ran on."""
        errors: dict[int, str] = dict(prepared.errors)  # position -> why it is not judged
        rows = np.flatnonzero(prepared.readable)
        t0 = time.perf_counter()
        vectors: np.ndarray | None = None
        hit = np.zeros(rows.size, bool)
        recorded: Any = None
        if job.reuse is not None and rows.size:
            hit, recorded = job.reuse.take(rows + offset)
        infer = rows[~hit]
        try:
            if hit.any():
                outputs = self._reusing(job, prepared, rows, hit, recorded, errors, offset, counts)
            else:
                outputs, vectors = self._predict(
                    job, model_batch(prepared, rows, offset), errors, rows, counts
                )
        except Exception as exc:
            outputs = job.task.combine([None] * rows.size)
            reason = f"inference failed ({describe_exception(exc)})"
            for r in infer.tolist():
                errors[r] = reason
            if hit.any():  # the recorded outputs still stand for their items
                outputs[hit] = recorded
        if counts is not None:
            counts["reused"] = counts.get("reused", 0) + int(hit.sum())
            counts["inferred"] = counts.get("inferred", 0) + int(infer.size)
        timings["inference_s"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        judged = job.task.judge(prepared, rows, outputs, errors, offset)
        errors = judged.errors
        for row in sorted(errors):
            failures.record(prepared.item_ids[row], errors[row])
        states = [
            acc.update(s, judged.batch) for acc, s in zip(job.accumulators, states, strict=True)
        ]
        timings["metrics_s"] += time.perf_counter() - t0

        if judged.labels is not None:
            ids, labels = prepared.item_ids, judged.labels
        else:
            ids, labels = prepared.arrow_columns or (prepared.item_ids, prepared.labels)
        if prepared.arrow_columns is not None:
            ids = prepared.arrow_columns[0]

        at = judged.judged
        wrong = at[judged.batch.y_pred != judged.batch.y_true]
        wrong_vectors = np.zeros((0, 0), np.float32)
        if vectors is not None and job.embeddings is not None and wrong.size:
            # Positions among the readable rows, so that the vectors line up with the items.
            wrong_vectors = vectors[np.searchsorted(rows, wrong)]
            keep = np.isfinite(wrong_vectors).all(axis=1)
            wrong, wrong_vectors = wrong[keep], wrong_vectors[keep]
        embeddings = job.embeddings if vectors is not None and wrong.size else None
        item_ids = prepared.item_ids
        predicted, scores, extra = judged.predicted, judged.scores, judged.extra

        def write() -> None:
            t0 = time.perf_counter()
            if extra:  # a classification sink need not know of task columns
                job.sink.write(ids, labels, predicted, scores, errors, extra)
            else:
                job.sink.write(ids, labels, predicted, scores, errors)
            if embeddings is not None:
                embeddings.write(wrong + offset, [item_ids[i] for i in wrong], wrong_vectors)
            # On the writer thread, beside the next batch's inference: a cost in CPU, not in
            # wall time unless the pass waits for it (write_wait_s).
            timings["write_s"] = timings.get("write_s", 0.0) + time.perf_counter() - t0

        return states, write
