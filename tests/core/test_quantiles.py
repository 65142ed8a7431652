"""StreamedQuantiles equals np.quantile bit for bit, whatever the data, limit and batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from assay.core.quantiles import StreamedQuantiles, keys_of, max_passes, value_of

QS = np.linspace(0, 1, 6)


def streamed(values: np.ndarray, limit: int, batch: int, qs: np.ndarray = QS) -> StreamedQuantiles:
    s = StreamedQuantiles(qs, limit)
    while not s.done:
        for start in range(0, max(values.size, 1), batch):
            s.update(values[start : start + batch])
        s.end_pass()
        assert s.passes <= max_passes()
    return s


def expected(values: np.ndarray, qs: np.ndarray = QS) -> np.ndarray:
    finite = values[np.isfinite(values)] + 0.0
    return np.quantile(finite, qs) if finite.size else np.full(qs.size, np.nan)


@settings(max_examples=300, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(0, 400),
        elements=st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-310, 2.5]),
        ),
    ),
    st.integers(1, 50),
    st.integers(1, 120),
)
def test_equals_numpy_quantile(values: np.ndarray, limit: int, batch: int) -> None:
    s = streamed(values, limit, batch)
    assert s.result is not None
    np.testing.assert_array_equal(s.result, expected(values))


@pytest.mark.parametrize(
    "name",
    ["normal", "lognormal", "integers", "constant", "two_neighbours", "tiny_negative"],
)
def test_large_columns_take_few_passes_and_stay_exact(name: str) -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    values = {
        "normal": rng.normal(size=n),
        "lognormal": np.exp(rng.normal(0, 20, n)),
        "integers": rng.integers(0, 7, n).astype(float),
        "constant": np.full(n, 3.25),
        "two_neighbours": np.repeat([1.0, np.nextafter(1.0, 2.0)], n // 2),
        "tiny_negative": -rng.random(n) * 1e-300,
    }[name]
    qs = np.linspace(0, 1, 11)
    s = streamed(values, 4096, 8192, qs)
    np.testing.assert_array_equal(s.result, expected(values, qs))
    assert s.passes <= 4  # the counting pass, two histograms, one pass collecting at most


def test_keys_sort_as_the_values() -> None:
    values = np.array([-np.inf, -1e300, -1.0, -1e-310, -0.0, 0.0, 1e-310, 1.0, 1e300, np.inf])
    keys = keys_of(values)
    assert (np.diff(keys.astype(object)) >= 0).all()
    assert [value_of(int(k)) for k in keys] == (values + 0.0).tolist()
