"""Reserved column names of a stored dataset manifest.

Readers keep every source column under its own name (spaces and brackets included) and add these
reserved columns, so that a user's column called ``label`` or ``path`` can never collide with ours.
"""

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.core.prepared import MISSING_LABEL, UNKNOWN_LABEL

ITEM_ID = "__item_id"
LABEL = "__label"
PATH = "__path"  # absolute path of the item's file (image datasets)
SHA256 = "__sha256"  # content digest of that file, checked again when it is read

RESERVED = (ITEM_ID, LABEL, PATH, SHA256)


def label_indices(batch: pa.RecordBatch, labels: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Index of each row's label in ``labels``: -1 when the row has none, -2 when it is not listed."""
    column = batch.column(LABEL)
    index = pc.index_in(column, value_set=pa.array(labels, pa.string()))
    out: npt.NDArray[np.int64] = np.asarray(
        index.fill_null(UNKNOWN_LABEL).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    out[column.is_null().to_numpy(zero_copy_only=False)] = MISSING_LABEL
    return out
