"""JudgedItems: a run's judged items, streamed in batches with manifest columns as slice codes.

The error-slice search reads the items in several passes. Each pass reads the run's ``correct``
column (and the baseline run's, for broken items) beside the manifest's columns, batch by batch,
so nothing per item is held between batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from assay.core.slice_search import Codes
from assay.store.coders import ColumnCoder, batch_rows_for

Bools = npt.NDArray[np.bool_]


def judged(correct: pa.Array, base: pa.Array | None) -> tuple[Bools, Bools]:
    """(valid, error) per item: judged wrong, or with a baseline broken (baseline right,
    candidate wrong); an item either run could not judge is not valid."""
    valid = correct.is_valid().to_numpy(zero_copy_only=False)
    wrong = ~np.asarray(correct.fill_null(True).to_numpy(zero_copy_only=False), dtype=bool)
    if base is None:
        return valid, wrong
    base_valid = base.is_valid().to_numpy(zero_copy_only=False)
    base_right = np.asarray(base.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return valid & base_valid, base_right & wrong


def aligned(streams: Sequence[Iterator[pa.RecordBatch]]) -> Iterator[list[pa.RecordBatch]]:
    """Batches of several files over the same rows, cut so that each step has equal lengths
    (the files' row groups, and so their batches, need not line up)."""
    current: list[pa.RecordBatch | None] = [None] * len(streams)
    offsets = [0] * len(streams)
    while True:
        for i, stream in enumerate(streams):
            while current[i] is None or offsets[i] == current[i].num_rows:  # type: ignore[union-attr]
                current[i], offsets[i] = next(stream, None), 0
                if current[i] is None:
                    break
        ended = [c is None for c in current]
        if any(ended):
            if not all(ended):
                raise ValueError("the run's predictions and the manifest have different lengths")
            return
        step = min(c.num_rows - o for c, o in zip(current, offsets, strict=True))  # type: ignore[union-attr]
        yield [c.slice(o, step) for c, o in zip(current, offsets, strict=True)]  # type: ignore[union-attr]
        offsets = [o + step for o in offsets]


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
        self.n_items = sum(int(valid.sum()) for valid, _, _ in self._rows([]))

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
        for batches in aligned(streams):
            base = batches[1].column(0) if self.baseline is not None else None
            valid, errors = judged(batches[0].column(0), base)
            yield valid, errors, list(batches[-1].columns) if names else []

    def __call__(self, names: Sequence[str]) -> Iterator[tuple[list[Codes], Bools]]:
        for valid, errors, columns in self._rows(names):
            everything = bool(valid.all())
            codes = [
                self.coders[name].encode(column if everything else column.filter(pa.array(valid)))
                for name, column in zip(names, columns, strict=True)
            ]
            yield codes, errors if everything else errors[valid]
