"""ParquetPredictionSink: every item's outcome, written as the run goes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.arrow import as_floats, as_ints, floats, null, numbers, strings, validity
from assay.store.parquet import PartedWriter, open_writer, write_table


def _strings(values: Any) -> pa.Array:
    """Arrow strings from an Arrow array (as is) or a list of str/None."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    return strings(values)


# The task's further prediction columns, by kind (Task.prediction_fields).
PREDICTED_BOX = pa.struct(
    [
        ("name", pa.string()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("width", pa.float64()),
        ("height", pa.float64()),
        ("score", pa.float64()),
    ]
)
EXTRA_TYPES: dict[str, pa.DataType] = {
    "boxes": pa.list_(PREDICTED_BOX),
    "float": pa.float64(),
    "png": pa.binary(),  # an array per item (a model's mask), stored as PNG bytes
    "counts": pa.list_(pa.int64()),  # integers per item (a segmented image's pixel counts)
}


def _png(values: list[Any]) -> list[bytes | None]:
    """Each array as a PNG (8 or 16 bits per pixel as its values need), None as None."""
    import io

    from PIL import Image

    out: list[bytes | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        a = np.asarray(v)
        img = Image.fromarray(a.astype(np.uint8 if a.max(initial=0) < 256 else np.uint16))
        buf = io.BytesIO()
        img.save(buf, "PNG", optimize=False, compress_level=1)
        out.append(buf.getvalue())
    return out


def score_column(label: str) -> str:
    """Name of the score column of a class in ``predictions.parquet``."""
    return f"score_{label}"


SCORES_KEY = b"assay.scores"


class ParquetPredictionSink:
    """Writes ``item_id, label, predicted, correct, score_<class>..., error`` rows to Parquet.

    Rows are buffered up to ``row_group_rows`` so that small batches still give well-sized row
    groups; memory stays bounded by that buffer.
    """

    def __init__(
        self,
        path: Path,
        labels: tuple[str, ...],
        row_group_rows: int = 131_072,
        committed_parts: Sequence[str] = (),
        extra: Mapping[str, str] | None = None,
        scores: bool = True,
    ) -> None:
        self.path = path
        self.labels = labels
        self.row_group_rows = row_group_rows
        self.extra = dict(extra or {})  # name -> kind (see Task.prediction_fields)
        self.schema = pa.schema(
            [
                ("item_id", pa.string()),
                ("label", pa.string()),
                ("predicted", pa.string()),
                ("correct", pa.bool_()),
                *((score_column(label), pa.float64()) for label in labels),
                ("error", pa.string()),
                *((name, EXTRA_TYPES[kind]) for name, kind in self.extra.items()),
            ],
            # A model that gives classes only: its score columns are one-hot, no scores (read
            # back as recorded predictions, the file then counts as classes).
            metadata=None if scores else {SCORES_KEY: b"none"},
        )
        self._label_values = strings(labels)
        self._file = PartedWriter(path, self.schema, ("item_id",), committed_parts)
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0

    def write(
        self,
        item_ids: Any,
        labels: Any,
        predicted: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
        errors: Mapping[int, str],
        extra: Mapping[str, list[Any]] | None = None,
    ) -> None:
        ids = _strings(item_ids)
        label_arr = _strings(labels)
        # Predicted class names through a dictionary: no Python string per item.
        codes = numbers(predicted, pa.int32(), predicted < 0)
        pred_arr = pa.DictionaryArray.from_arrays(codes, self._label_values).cast(pa.string())
        n = len(ids)
        if errors:
            reasons: list[str | None] = [None] * n
            for row, reason in errors.items():
                reasons[row] = reason
            error_arr = strings(reasons)
        else:  # 25x faster than converting a list of n Nones
            error_arr = pa.nulls(n, pa.string())
        correct = pc.if_else(error_arr.is_null(), pc.equal(label_arr, pred_arr), null(pa.bool_()))
        columns = [ids, label_arr, pred_arr, correct]
        columns += [floats(scores[:, k]) for k in range(len(self.labels))]
        columns.append(error_arr)
        for name, kind in self.extra.items():
            values = (extra or {}).get(name)
            if values is not None and kind == "png":
                values = _png(values)
            columns.append(
                pa.nulls(n, EXTRA_TYPES[kind])
                if values is None
                else pa.array(values, EXTRA_TYPES[kind], from_pandas=True)
            )
        self._buffer.append(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        self._buffered += len(ids)
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._file.write_table(pa.Table.from_batches(self._buffer, self.schema))
            self._buffer, self._buffered = [], 0

    def commit(self) -> list[str]:
        """Make every row written so far durable (for a checkpoint); returns the parts' digests."""
        self._flush()
        return self._file.commit()

    def close(self) -> None:
        """Complete the file: it appears under its name only now (closing twice is a no-op)."""
        if not self._file.closed:
            self._flush()
        self._file.close()

    def abort(self, keep_committed: bool = False) -> None:
        """Drop what was written: a failed run leaves no half file; an interrupted one keeps its
        committed parts for ``--resume``."""
        self._file.abort(keep_committed)


@dataclass(frozen=True)
class PredictionChunk:
    """A slice of a predictions file as plain data; ``predicted``/``label_index`` are indices into
    the labels given to the reader (-1: none, -2: a label the reader was not given)."""

    item_ids: list[str]
    label_index: npt.NDArray[np.int64]
    predicted: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float64]
    failed: npt.NDArray[np.bool_]


def rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of exactly ``rows`` rows (the last may be shorter), whatever the input's sizes."""
    buffer: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not buffer and batch.num_rows == rows:  # already the right size: no copy
            yield batch
            continue
        buffer.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(buffer)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            rest = table.slice(rows)
            buffer = rest.combine_chunks().to_batches() if rest.num_rows else []
            held = rest.num_rows
    if held:
        yield pa.Table.from_batches(buffer).combine_chunks().to_batches()[0]


def _indices(column: pa.Array, labels: pa.Array) -> npt.NDArray[np.int64]:
    out = as_ints(pc.index_in(column, value_set=labels), -2)
    out[~validity(column)] = -1
    return out


@dataclass(frozen=True)
class OutcomeChunk:
    """The outcome columns of a slice of a predictions file (indices as in PredictionChunk)."""

    label_index: npt.NDArray[np.int64]
    predicted: npt.NDArray[np.int64]
    failed: npt.NDArray[np.bool_]


def read_outcome_chunks(path: Path, labels: tuple[str, ...], rows: int) -> Iterator[OutcomeChunk]:
    """Stream only the label, prediction and failure of each item, in chunks of ``rows``."""
    value_set = strings(labels)
    file = pq.ParquetFile(path, pre_buffer=False)
    for batch in file.iter_batches(batch_size=rows, columns=["label", "predicted", "error"]):
        yield OutcomeChunk(
            label_index=_indices(batch.column("label"), value_set),
            predicted=_indices(batch.column("predicted"), value_set),
            failed=validity(batch.column("error")),
        )


def read_prediction_chunks(
    path: Path, labels: tuple[str, ...], rows: int, ids: bool = True
) -> Iterator[PredictionChunk]:
    """Stream a predictions file in chunks of exactly ``rows`` items (``ids`` False: without the
    item ids, whose Python strings cost more than the rest of a chunk)."""
    value_set = strings(labels)
    scores_of = [score_column(label) for label in labels]
    columns = [*(["item_id"] if ids else []), "label", "predicted", *scores_of, "error"]
    file = pq.ParquetFile(path, pre_buffer=False)  # streaming: see read_manifest
    missing = [c for c in columns if c not in file.schema_arrow.names]
    if missing:
        raise ValueError(f"{path} lacks column {missing[0]!r}")
    for batch in rebatch(file.iter_batches(batch_size=rows, columns=columns), rows):
        scores = np.column_stack(
            [as_floats(batch.column(score_column(label))) for label in labels]
        ).astype(np.float64)
        yield PredictionChunk(
            item_ids=batch.column("item_id").to_pylist() if ids else [],
            label_index=_indices(batch.column("label"), value_set),
            predicted=_indices(batch.column("predicted"), value_set),
            scores=scores,
            failed=validity(batch.column("error")),
        )


def read_column_chunks(path: Path, columns: list[str], rows: int) -> Iterator[dict[str, list[Any]]]:
    """Stream some columns of a Parquet file (e.g. a manifest's metadata) in chunks of ``rows``."""
    file = pq.ParquetFile(path, pre_buffer=False)
    for batch in rebatch(file.iter_batches(batch_size=rows, columns=columns), rows):
        yield {name: batch.column(name).to_pylist() for name in columns}


class LedgerSink:
    """``comparison.parquet``: per item, the expert label, both predictions and the outcome."""

    SCHEMA = pa.schema(
        [
            ("item_id", pa.string()),
            ("label", pa.string()),
            ("baseline", pa.string()),
            ("candidate", pa.string()),
            ("outcome", pa.string()),
        ]
    )

    def __init__(self, path: Path, labels: tuple[str, ...]) -> None:
        self._labels = pa.array(labels, pa.string())
        self._writer = open_writer(path, self.SCHEMA, unique=("item_id",))

    def _names(self, index: npt.NDArray[np.int64]) -> pa.Array:
        codes = pa.array(index, pa.int32(), mask=index < 0)
        return pa.DictionaryArray.from_arrays(codes, self._labels).cast(pa.string())

    def write(
        self,
        item_ids: list[str],
        label: npt.NDArray[np.int64],
        base: npt.NDArray[np.int64],
        cand: npt.NDArray[np.int64],
        outcome: list[str],
    ) -> None:
        self._writer.write_batch(
            pa.RecordBatch.from_arrays(
                [
                    pa.array(item_ids, pa.string()),
                    self._names(label),
                    self._names(base),
                    self._names(cand),
                    pa.array(outcome, pa.string()),
                ],
                schema=self.SCHEMA,
            )
        )

    def close(self) -> None:
        self._writer.close()


def write_doubtful_labels(path: Path, candidates: Mapping[str, pa.Array | list[Any]]) -> None:
    """``doubtful_labels.parquet``: every candidate, most doubtful first."""
    schema = pa.schema(
        [
            ("item_id", pa.string()),
            ("label", pa.string()),
            ("model_suggests", pa.string()),
            ("model_confidence", pa.float64()),
            ("label_quality", pa.float64()),
            ("ref", pa.string()),
        ]
    )
    write_table(pa.Table.from_pydict(candidates, schema=schema), path, unique=("item_id", "ref"))
