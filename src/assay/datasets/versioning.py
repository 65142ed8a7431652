"""Dataset versions: a content digest over the manifest and every file it references.

The digest covers the reader, its options, the bytes of the manifest/table files, and for every
item its id, label and (for images) the digest of its file. The same content therefore gives the
same version wherever it lies on disk, and any changed byte gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa

from assay.datasets import columns as cols
from assay.digests import file_sha256


class VersionDigest:
    """Incremental SHA-256 over a dataset's defining content."""

    def __init__(self, fmt: str, options: dict[str, Any]) -> None:
        self._h = hashlib.sha256()
        self._feed("assay-dataset-v1", fmt, json.dumps(options, sort_keys=True))

    def _feed(self, *parts: str) -> None:
        for part in parts:
            data = part.encode()
            self._h.update(len(data).to_bytes(8, "little"))
            self._h.update(data)

    def add_file(self, path: Path, root: Path) -> None:
        self._feed(
            "file",
            path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name,
            file_sha256(path),
        )

    def add_items(self, batch: pa.RecordBatch) -> None:
        names = batch.schema.names
        ids = batch.column(cols.ITEM_ID).to_pylist()
        labels = batch.column(cols.LABEL).to_pylist()
        shas = batch.column(cols.SHA256).to_pylist() if cols.SHA256 in names else [None] * len(ids)
        for item_id, label, sha in zip(ids, labels, shas, strict=True):
            self._feed("item", str(item_id), "\0" if label is None else str(label), sha or "")
        if cols.MASK_SHA256 in names:  # only then, so that earlier versions keep their digest
            for item_id, mask in zip(ids, batch.column(cols.MASK_SHA256).to_pylist(), strict=True):
                self._feed("mask", str(item_id), mask or "")

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def add_file_digests(batch: pa.RecordBatch, pool: ThreadPoolExecutor) -> pa.RecordBatch:
    """Append the SHA-256 of each item's file (None when the file is missing or unreadable)."""

    def digest(path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return file_sha256(path)
        except OSError:
            return None

    shas = list(pool.map(digest, batch.column(cols.PATH).to_pylist()))
    batch = batch.append_column(cols.SHA256, pa.array(shas, pa.string()))
    if cols.MASK in batch.schema.names:
        masks = list(pool.map(digest, batch.column(cols.MASK).to_pylist()))
        batch = batch.append_column(cols.MASK_SHA256, pa.array(masks, pa.string()))
    return batch
