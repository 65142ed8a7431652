"""PreparedBatch: the port between dataset decoders and engines.

A decoder turns one raw batch of dataset rows into model-ready inputs for the rows it could read,
plus the reason for every row it could not. Engines see only this type, never a file format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

MISSING_LABEL = -1
UNKNOWN_LABEL = -2
DISPUTED_LABEL = -3  # several experts, no majority: reported as disputed, not judged


@dataclass(frozen=True)
class PreparedBatch:
    """Model inputs for the readable rows of one batch, with every unreadable row's reason."""

    # Sequences, not lists: decoders hand over lazy views of their columns, since building a
    # Python string per item cost more than the rest of decoding a table row.
    item_ids: Sequence[str]
    labels: Sequence[str | None]
    # Index of each expert label in the model's labels; MISSING_LABEL or UNKNOWN_LABEL otherwise.
    label_index: npt.NDArray[np.int64]
    inputs: npt.NDArray[np.float32]  # one row per readable item not skipped, in order
    readable: npt.NDArray[np.bool_]  # per item: was it turned into an input row?
    errors: dict[int, str] = field(default_factory=dict)  # item position -> reason
    refs: list[str | None] = field(default_factory=list)  # e.g. image paths, for galleries
    # The id and label columns in the decoder's own format (e.g. Arrow arrays), handed to a sink
    # of the same technology so that it need not rebuild them from Python objects.
    arrow_columns: tuple[Any, Any] | None = None
    # Tasks beyond classification: per item, what the experts drew (boxes, a mask), or the
    # reason it cannot be read; and each image's size as stored, [width, height] (0 unreadable).
    expected: Sequence[Any] | None = None
    sizes: npt.NDArray[np.int64] | None = None
    # Per item: readable, but not decoded, because every model of the pass reuses its recorded
    # output (incremental validation); such items have no row in ``inputs``. None: no such item.
    skipped: npt.NDArray[np.bool_] | None = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)
