"""Reserved column names of a stored dataset manifest.

Readers keep every source column under its own name (spaces and brackets included) and add these
reserved columns, so that a user's column called ``label`` or ``path`` can never collide with ours.
"""

from collections.abc import Sequence
from typing import overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.arrow import as_bools, as_ints, strings, validity
from assay.core.prepared import DISPUTED_LABEL, MISSING_LABEL, UNKNOWN_LABEL

ITEM_ID = "__item_id"
LABEL = "__label"
PATH = "__path"  # absolute path of the item's file (image datasets)
SHA256 = "__sha256"  # content digest of that file, checked again when it is read
# Tables: a digest of what a model could read of the row (every column but the id and labels),
# by which a later version's unchanged rows are recognised (see assay.datasets.row_digests).
DIGEST = "__digest"

# Experts disagree and no strict majority gives a reference label (only with several experts).
DISPUTED = "__disputed"

# Segmentation and anomaly: the absolute path of the item's expert mask (a PNG) and its digest.
MASK = "__mask"
MASK_SHA256 = "__mask_sha256"

# The item's id in the annotation file it came from (a COCO image id), by which predictions
# recorded elsewhere (a COCO results file) name it.
SOURCE_ID = "__source_id"

RESERVED = (ITEM_ID, LABEL, PATH, SHA256, DIGEST, DISPUTED, MASK, MASK_SHA256, SOURCE_ID)


class ArrowStrings(Sequence[str]):
    """A string column seen as a sequence of str (None where null), converted one element at a
    time when read.

    Engines read only the ids of failed items and of the few errors kept as examples; converting
    the whole column up front (``to_pylist``) cost ~0.15 us per item on every batch.
    """

    def __init__(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.column = column

    def __len__(self) -> int:
        return len(self.column)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return list(self.column[i].to_pylist())
        value: str = self.column[i].as_py()  # None for a missing label
        return value


def label_indices(batch: pa.RecordBatch, labels: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Index of each row's label in ``labels``: -1 when the row has none, -2 when it is not listed,
    -3 when the experts dispute it."""
    column = batch.column(LABEL)
    out = as_ints(pc.index_in(column, value_set=strings(labels)), UNKNOWN_LABEL)
    out[~validity(column)] = MISSING_LABEL
    if DISPUTED in batch.schema.names:
        out[as_bools(batch.column(DISPUTED))] = DISPUTED_LABEL
    return out


ANNOTATOR_PREFIX = "label_"  # label_<annotator>: one expert's labels, when several label each item


def annotator_columns(names: list[str]) -> list[str]:
    """The ``label_<annotator>`` columns among ``names``, in table order."""
    return [n for n in names if n.startswith(ANNOTATOR_PREFIX) and len(n) > len(ANNOTATOR_PREFIX)]
