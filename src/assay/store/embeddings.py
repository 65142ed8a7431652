"""``error_embeddings.parquet``: the model's embedding of every misclassified item.

Only errors are kept (they are what gets grouped), each with its row in the dataset so that its
metadata, label and image can be found again. Vectors are float32 fixed-size lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from assay.arrow import numbers, strings
from assay.store.parquet import PartedWriter


class ParquetEmbeddingSink:
    """Streams (row, item_id, vector) to Parquet; the file exists once a vector was written."""

    def __init__(self, path: Path, committed_parts: Sequence[str] = ()) -> None:
        self.path = path
        self._file = PartedWriter(path, None, ("item_id",), committed_parts)
        self._schema: pa.Schema | None = None
        self.n_written = 0

    def write(
        self, rows: npt.NDArray[np.int64], item_ids: list[str], vectors: npt.NDArray[np.float32]
    ) -> None:
        if len(rows) == 0:
            return
        dim = int(vectors.shape[1])
        if self._schema is None:
            self._schema = pa.schema(
                [
                    ("row", pa.int64()),
                    ("item_id", pa.string()),
                    ("vector", pa.list_(pa.float32(), dim)),
                ]
            )
        flat = numbers(np.ascontiguousarray(vectors, dtype=np.float32).ravel(), pa.float32())
        batch = pa.RecordBatch.from_arrays(
            [
                numbers(rows, pa.int64()),
                strings(item_ids),
                pa.FixedSizeListArray.from_arrays(flat, dim),
            ],
            schema=self._schema,
        )
        self._file.write_table(pa.Table.from_batches([batch]))
        self.n_written += len(rows)

    def commit(self) -> list[str]:
        """Make every vector written so far durable (for a checkpoint); returns the parts'
        digests."""
        return self._file.commit()

    def close(self) -> None:
        """Complete the file: it appears under its name only now, and only with vectors in it."""
        self._file.close(empty_when_none=False)

    def abort(self, keep_committed: bool = False) -> None:
        """Drop what was written, except committed parts that a resume may still use."""
        self._file.abort(keep_committed)


def read_embeddings(
    path: Path, rows: int = 16_384
) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
    """(dataset rows, vectors [n, d]) in chunks."""
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(
        batch_size=rows, columns=["row", "vector"]
    ):
        vectors = batch.column("vector")
        dim = vectors.type.list_size
        flat = vectors.flatten().to_numpy(zero_copy_only=False)
        yield (
            np.asarray(batch.column("row").to_numpy(zero_copy_only=False), dtype=np.int64),
            np.asarray(flat, dtype=np.float32).reshape(-1, dim),
        )
