"""The feature matrix of a tabular model: what is fed, and which rows are not judged, and why."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from assay.core.spec import TabularInput
from assay.datasets import columns as cols
from assay.datasets.features import TabularBatchDecoder


def _batch(a: list[float | None], b: list[float]) -> pa.RecordBatch:
    n = len(a)
    return pa.record_batch({cols.ITEM_ID: [f"i{k}" for k in range(n)],
                            cols.LABEL: ["ok"] * n, "a": pa.array(a, pa.float64()),
                            "b": pa.array(b, pa.float64())})  # fmt: skip


def test_infinite_features_are_not_fed_silently() -> None:
    """A row with +-inf (a sensor's division by zero), or a float64 too large for the model's
    float32 input, was fed as inf under `missing: error` and judged like any other row. It is
    recorded as not judged, with the column named, like a missing value."""
    decoder = TabularBatchDecoder(TabularInput(columns=("a", "b"), missing="error"), ("ok",))
    prepared = decoder(_batch([1.0, np.inf, None, 2.0, 3.0], [0.0, 1.0, 2.0, -np.inf, 1e40]))
    assert prepared.readable.tolist() == [True, False, False, False, False]
    assert prepared.errors == {
        1: "infinite value in feature column 'a'",
        2: "missing value in feature column 'a'",
        3: "infinite value in feature column 'b'",
        4: "infinite value in feature column 'b' (1e+40 is beyond float32)",
    }
    assert np.isfinite(prepared.inputs).all() and prepared.inputs.shape == (1, 2)
    allowed = TabularBatchDecoder(TabularInput(columns=("a", "b"), missing="allow"), ("ok",))
    assert allowed(_batch([None], [1.0])).errors == {}  # NaN is what `allow` is for


def test_under_allow_a_reading_beyond_float32_is_not_fed_as_inf() -> None:
    """A review: with `missing: allow`, 1e39 went to the model as inf, judged as a measurement
    the row never had. NaN and an infinity the data holds still pass."""
    allowed = TabularBatchDecoder(TabularInput(columns=("a", "b"), missing="allow"), ("ok",))
    prepared = allowed(_batch([None, np.inf, 1e39], [1.0, 1.0, 1.0]))
    assert prepared.readable.tolist() == [True, True, False]
    assert prepared.errors == {2: "value 1e+39 in feature column 'a' is beyond float32"}
