"""Feature matrices for tabular models, from manifest batches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from assay.arrow import as_floats
from assay.core.errors import InputError, did_you_mean
from assay.core.failures import MISSING_FEATURE
from assay.core.prepared import PreparedBatch
from assay.core.spec import TabularInput
from assay.datasets import columns as cols


def check_feature_columns(schema: pa.Schema, spec: TabularInput) -> None:
    """Every column the model needs exists and is numeric; raise InputError naming the first that is not."""
    for name in spec.columns:
        if name not in schema.names:
            raise InputError(
                f"the model needs column {name!r}, which the dataset does not have"
                + did_you_mean(name, schema.names)
            )
        t = schema.field(name).type
        if not (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_decimal(t)
        ):
            raise InputError(f"the model needs column {name!r} as numbers, but it holds {t}")


class TabularBatchDecoder:
    """Selects the spec's columns, in order, as float32; rows with missing values fail unless allowed."""

    def __init__(self, spec: TabularInput, labels: tuple[str, ...]) -> None:
        self.spec = spec
        self.labels = labels

    def __call__(self, batch: pa.RecordBatch) -> PreparedBatch:
        n = batch.num_rows
        # Strided writes straight into the row-major tensor: a column-major fill followed by a
        # transposing copy was three times slower (the transpose is cache-unfriendly).
        matrix = np.empty((n, len(self.spec.columns)), dtype=np.float32)
        beyond: dict[int, dict[int, float]] = {}  # column -> row -> a finite value float32 lacks
        for j, name in enumerate(self.spec.columns):
            values = _as_numbers(batch.column(name))
            with np.errstate(over="ignore"):  # checked below: such a value is never fed
                matrix[:, j] = values
            if values.dtype != np.float32:
                lost = np.flatnonzero(np.isinf(matrix[:, j]) & np.isfinite(values))
                if lost.size:
                    beyond[j] = {int(r): float(values[r]) for r in lost.tolist()}
        errors: dict[int, str] = {}
        if self.spec.missing == "error":
            # Nulls became nan above; name the first column of each row that is missing or
            # infinite (a sensor's division by zero, or a number beyond float32): a model fed
            # inf answers something, and the row would be judged as if it were a measurement.
            bad = ~np.isfinite(matrix)
            for row in np.flatnonzero(bad.any(axis=1)).tolist():
                j = int(np.argmax(bad[row]))
                column = self.spec.columns[j]
                if np.isnan(matrix[row, j]):
                    errors[row] = f"{MISSING_FEATURE} {column!r}"
                elif row in beyond.get(j, {}):
                    errors[row] = (
                        f"infinite value in feature column {column!r} "
                        f"({beyond[j][row]:g} is beyond float32)"
                    )
                else:
                    errors[row] = f"infinite value in feature column {column!r}"
        else:
            # NaN is allowed (a model that handles missing values), and so is an infinity the
            # data holds; a finite reading float32 cannot hold is neither: fed as inf, it would
            # be judged as a measurement the row never had.
            for j, rows in beyond.items():
                for row, value in rows.items():
                    errors.setdefault(
                        row,
                        f"value {value:g} in feature column {self.spec.columns[j]!r} is beyond "
                        "float32",
                    )
        readable = np.ones(n, dtype=bool)
        if errors:
            readable[list(errors)] = False
        ids, labels = batch.column(cols.ITEM_ID), batch.column(cols.LABEL)
        return PreparedBatch(
            item_ids=cols.ArrowStrings(ids),
            labels=cols.ArrowStrings(labels),
            arrow_columns=(ids, labels),
            label_index=cols.label_indices(batch, self.labels),
            inputs=matrix[readable] if errors else matrix,
            readable=readable,
            errors=errors,
            refs=[],
        )

    def close(self) -> None:
        """Nothing to release; present so that decoders share one interface."""


def _as_numbers(column: pa.Array) -> npt.NDArray[np.floating]:
    """A numeric Arrow column as a numpy array, nulls as nan (no copy for null-free floats)."""
    return as_floats(column)
