"""JudgedItems: a run's judged items, streamed in batches with manifest columns as slice codes.

The error-slice search reads the items in several passes. A pass reads the run's ``correct``
column (and the baseline run's, for broken items) beside the manifest's columns, batch by batch.
The codes of the first pass are kept for the others while they take at most HELD_CODES_BYTES
(32 MiB: four million items with eight columns); a larger dataset is read again each pass, so
that what is held stays the same however many items there are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from assay.arrow import as_bools, bools, validity
from assay.core.slice_search import Codes
from assay.store.coders import ColumnCoder, batch_rows_for
from assay.store.predictions import rebatch

Bools = npt.NDArray[np.bool_]

# Codes (one byte per item and column) the search may keep between its passes: below this, the
# later passes read memory; above it, every pass reads the files and memory stays flat.
HELD_CODES_BYTES = 32 << 20
HELD_BATCH_ROWS = 1 << 16


def judged(correct: pa.Array, base: pa.Array | None) -> tuple[Bools, Bools]:
    """(valid, error) per item: judged wrong, or with a baseline broken (baseline right,
    candidate wrong); an item either run could not judge is not valid."""
    valid = validity(correct)
    wrong = ~as_bools(correct) & valid
    if base is None:
        return valid, wrong
    base_valid = validity(base)
    base_right = as_bools(base)
    return valid & base_valid, base_right & wrong


class JudgedItems:
    """The judged items of ``predictions`` (with ``baseline``: judged by both runs), their
    errors, and the codes of the manifest's columns, in batches (an ``ItemBatches``)."""

    def __init__(
        self,
        manifest: Path,
        predictions: Path,
        baseline: Path | None,
        coders: Mapping[str, ColumnCoder],
    ):
        self.manifest, self.predictions, self.baseline = manifest, predictions, baseline
        self.coders = coders
        lengths = {
            pq.ParquetFile(path).metadata.num_rows
            for path in (manifest, predictions, baseline)
            if path is not None
        }
        if len(lengths) > 1:
            raise ValueError(
                "the run's predictions and the dataset's manifest have different lengths"
            )
        self.n_items = sum(int(valid.sum()) for valid, _, _ in self._rows([]))
        self._held: dict[str, Codes] | None = None
        self._held_errors: Bools | None = None

    def _rows(self, names: Sequence[str]) -> Iterator[tuple[Bools, Bools, list[pa.Array]]]:
        rows = batch_rows_for(len(names) + 1)

        def read(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
            file = pq.ParquetFile(path, pre_buffer=False)
            batches: Iterator[pa.RecordBatch] = file.iter_batches(batch_size=rows, columns=columns)
            return batches

        streams = [read(self.predictions, ["correct"])]
        if self.baseline is not None:
            streams.append(read(self.baseline, ["correct"]))
        if names:
            streams.append(read(self.manifest, list(names)))
        # Every file cut into batches of the same size, so that they line up whatever their row
        # groups; zip(strict) notices files of different lengths.
        for batches in zip(*(rebatch(stream, rows) for stream in streams), strict=True):
            base = batches[1].column(0) if self.baseline is not None else None
            valid, errors = judged(batches[0].column(0), base)
            yield valid, errors, list(batches[-1].columns) if names else []

    def __call__(self, names: Sequence[str]) -> Iterator[tuple[list[Codes], Bools]]:
        if self._held is not None and all(name in self._held for name in names):
            yield from self._from_held(names)
            return
        # The first pass (every column) keeps its codes while they fit HELD_CODES_BYTES: the
        # later passes then read memory, not the files. Above that, every pass streams.
        held: dict[str, list[Codes]] | None = (
            {name: [] for name in names} if self._held is None else None
        )
        held_errors: list[Bools] = []
        size = 0
        for valid, errors, columns in self._rows(names):
            everything = bool(valid.all())
            codes = [
                self.coders[name].encode(column if everything else column.filter(bools(valid)))
                for name, column in zip(names, columns, strict=True)
            ]
            judged_errors = errors if everything else errors[valid]
            if held is not None:
                size += sum(c.nbytes for c in codes) + judged_errors.nbytes
                if size > HELD_CODES_BYTES:
                    held = None
                else:
                    for name, c in zip(names, codes, strict=True):
                        held[name].append(c)
                    held_errors.append(judged_errors)
            yield codes, judged_errors
        if held is not None:
            self._held = {name: _joined(parts, np.int8) for name, parts in held.items()}
            self._held_errors = _joined(held_errors, np.bool_)

    def _from_held(self, names: Sequence[str]) -> Iterator[tuple[list[Codes], Bools]]:
        assert self._held is not None and self._held_errors is not None
        for start in range(0, max(self.n_items, 1), HELD_BATCH_ROWS):
            end = start + HELD_BATCH_ROWS
            yield [self._held[name][start:end] for name in names], self._held_errors[start:end]


def _joined(parts: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else np.empty(0, dtype)
