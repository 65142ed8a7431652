"""ItemBatchDecoder: a manifest batch read for a model that is fed nothing.

Recorded predictions need each item's id, expert label and, for detection, the experts' boxes,
but no model input. Image files are still read and checked against the digest taken when the
dataset was registered, so that a recorded model is judged on the dataset version it names, as
every other model is: an image that is missing or changed is not judged, with the reason.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from assay.core.failures import CHANGED
from assay.core.prepared import PreparedBatch
from assay.datasets import columns as cols
from assay.datasets.images import Expectation


def _check(args: tuple[str | None, str | None]) -> str | None:
    """Why an image file does not hold what was registered (None: it does)."""
    path, sha = args
    if path is None:
        return "no image path"
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        return "image file not found"
    except OSError as exc:
        return f"image file cannot be read ({exc.strerror or type(exc).__name__})"
    if sha is not None and h.hexdigest() != sha:
        return f"image file {CHANGED}"
    return None


class ItemBatchDecoder:
    """Ids, labels and what the experts drew; an empty input row per readable item."""

    def __init__(
        self, labels: tuple[str, ...], expect: Expectation | None = None, workers: int | None = None
    ) -> None:
        self.labels = labels
        self.expect = expect
        self.workers = workers or min(8, (os.cpu_count() or 1) + 1)
        self._pool: ThreadPoolExecutor | None = None

    def __call__(self, batch: pa.RecordBatch) -> PreparedBatch:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="assay-check")
        n = batch.num_rows
        names = batch.schema.names
        errors: dict[int, str] = {}
        refs: list[Any] = []
        if cols.PATH in names:
            refs = batch.column(cols.PATH).to_pylist()
            shas = batch.column(cols.SHA256).to_pylist() if cols.SHA256 in names else [None] * n
            checked = self._pool.map(_check, zip(refs, shas, strict=True))
            errors = {i: reason for i, reason in enumerate(checked) if reason is not None}
        readable = np.ones(n, dtype=bool)
        if errors:
            readable[list(errors)] = False
        ids, labels = batch.column(cols.ITEM_ID), batch.column(cols.LABEL)
        return PreparedBatch(
            item_ids=cols.ArrowStrings(ids),
            labels=cols.ArrowStrings(labels),
            arrow_columns=(ids, labels),
            label_index=cols.label_indices(batch, self.labels),
            inputs=np.zeros((int(readable.sum()), 0), np.float32),
            readable=readable,
            errors=errors,
            refs=refs,
            expected=None if self.expect is None else self.expect(batch, self._pool),
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
