"""DatasetSource: what a reader found at a path, before it is stored as a version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

Kind = Literal["image", "tabular"]


@dataclass
class DatasetSource:
    """A readable dataset: its kind, the files that define it, and a stream of manifest batches.

    ``batches()`` yields Arrow record batches holding the reserved columns (item id, label and, for
    images, path) next to every metadata or feature column. ``files`` are the manifest or table
    files whose bytes enter the version digest; image files enter it through their own digests.
    """

    format: str
    kind: Kind
    root: Path
    files: list[Path]
    batches: Callable[[], Iterator[pa.RecordBatch]]
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. "ignored 3 files that are not images"
    # False when no label column exists and the experts' consensus gives the reference label.
    has_label: bool = True
