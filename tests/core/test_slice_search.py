"""Error-slice search: a planted slice comes first; noise yields nothing; counts are exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.slice_search import CodedColumn, find_error_slices, g_test, quantile_codes


def columns_from(x: np.ndarray) -> list[CodedColumn]:
    return [
        CodedColumn(
            f"c{j}", x[:, j].astype(np.int32), tuple(f"v{k}" for k in range(int(x[:, j].max()) + 1))
        )
        for j in range(x.shape[1])
    ]


def test_planted_slice_is_reported_first_with_exact_counts() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (40_000, 6))
    errors = rng.random(40_000) < 0.05
    planted = (x[:, 1] == 2) & (x[:, 4] == 0)
    errors[planted] = rng.random(int(planted.sum())) < 0.3
    found, tried = find_error_slices(columns_from(x), errors, min_support=50)
    assert tried > 6 * 4
    first = found[0]
    assert set(first.predicates) == {("c1", "v2"), ("c4", "v0")}
    assert first.n_items == int(planted.sum()) and first.n_errors == int(errors[planted].sum())
    assert first.q_value < 1e-6
    assert "errors vs" in first.describe()
    # Its parents (c1 = v2, c4 = v0) are echoes of it and are not reported separately.
    assert all(len(s.predicates) > 1 or s.predicates[0] not in first.predicates for s in found)


def test_noise_gives_no_slice() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, (20_000, 5))
    errors = rng.random(20_000) < 0.1
    found, tried = find_error_slices(columns_from(x), errors, min_support=30)
    assert tried > 0 and found == []


def test_g_test_agrees_with_scipy_likelihood_ratio() -> None:
    from scipy.stats import chi2_contingency

    e_in, n_in, e_all, n_all = 40.0, 200.0, 100.0, 2000.0
    g, p = g_test(np.array([e_in]), np.array([n_in]), e_all, n_all)
    table = [[e_in, n_in - e_in], [e_all - e_in, n_all - n_in - (e_all - e_in)]]
    ref_g, ref_p, _, _ = chi2_contingency(table, correction=False, lambda_="log-likelihood")
    assert abs(g[0] - ref_g) < 1e-9
    assert abs(p[0] - ref_p / 2) < 1e-12  # one-sided: the slice's rate is the higher one


def test_quantile_codes_cover_every_value_and_label_bins() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, np.nan, 10.0, 100.0])
    codes, labels = quantile_codes(values, 4)
    assert codes[5] == -1 and (codes[np.isfinite(values)] >= 0).all()
    assert labels[0].startswith("[1,") and labels[-1].endswith("100]")


def test_counts_are_exact_with_missing_values_and_narrow_codes() -> None:
    """Items missing a value drop out of the combinations with that column only; every reported
    slice's counts equal a direct count, whatever the codes' integer type."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (30_000, 4))
    errors = rng.random(30_000) < 0.05
    planted = (x[:, 0] == 1) & (x[:, 2] == 2)
    errors[planted] = rng.random(int(planted.sum())) < 0.4
    columns = columns_from(x)
    hole = rng.random(30_000) < 0.2  # column c2 misses a fifth of its values
    columns[2] = CodedColumn("c2", np.where(hole, -1, x[:, 2]).astype(np.int8), columns[2].labels)
    found, _ = find_error_slices(columns, errors, min_support=50)
    assert found and set(found[0].predicates) == {("c0", "v1"), ("c2", "v2")}
    by_name = {c.name: c for c in columns}
    for s in found:
        member = np.ones(30_000, dtype=bool)
        for name, value in s.predicates:
            member &= by_name[name].codes == by_name[name].labels.index(value)
        assert s.n_items == int(member.sum()) and s.n_errors == int(errors[member].sum())


def test_hypergeometric_tail_equals_scipy() -> None:
    from scipy.stats import hypergeom

    from assay.core.stattests import hypergeometric_sf

    for k, population, successes, draws in [
        (12, 1000, 150, 40),
        (0, 1000, 150, 40),
        (41, 1000, 150, 40),
        (300, 500_000, 75_000, 1_500),
        (5, 20, 10, 8),
    ]:
        expected = hypergeom.sf(k - 1, population, successes, draws)
        assert (
            abs(hypergeometric_sf(k, population, successes, draws) - expected)
            <= 1e-9 * max(1.0, expected) + 1e-300
        )


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([0.0, 1.0, 2.0, float("nan"), float("inf"), -float("inf")]),
        ),
        min_size=1,
        max_size=200,
    ),
    n_bins=st.integers(1, 12),
)
def test_quantile_codes_equal_a_binary_search_over_the_edges(
    values: list[float], n_bins: int
) -> None:
    """The comparison-based binning gives each value the bin a binary search gives (the
    implementation it replaced), with ties, infinities, missing values and constant columns."""
    v = np.array(values)
    codes, labels = quantile_codes(v, n_bins)
    present = np.isfinite(v)
    assert (codes[~present] == -1).all()
    if not present.any():
        assert labels == ()
        return
    edges = np.unique(np.quantile(v[present], np.linspace(0, 1, n_bins + 1)))
    if edges.size == 1:
        assert (codes[present] == 0).all()
        return
    expected = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)
    np.testing.assert_array_equal(codes[present], expected[present])
    assert len(labels) == edges.size - 1


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([97, 1_000, 1 << 20]))
def test_streaming_search_equals_the_in_memory_reference(seed: int, batch_rows: int) -> None:
    """Counts accumulated batch by batch, in four passes, give the same slices, counts, p- and
    q-values and number tried as the in-memory search it replaced (tests/core/...reference)."""
    from tests.core import slice_search_reference as reference

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2_000, 12_000))
    x = rng.integers(0, 4, (n, 9))
    errors = rng.random(n) < rng.uniform(0.01, 0.2)
    a, b, c = rng.choice(9, 3, replace=False)
    planted = (x[:, a] == 1) & (x[:, b] == 2)
    if rng.random() < 0.5:
        planted &= x[:, c] == 0
    errors[planted] = rng.random(int(planted.sum())) < 0.4
    columns = columns_from(x)
    hole = rng.random(n) < 0.1
    columns[3] = CodedColumn("c3", np.where(hole, -1, x[:, 3]).astype(np.int8), columns[3].labels)
    metadata, screened = columns[:5], columns[5:]
    kwargs = {"min_support": 40, "max_screened": 2, "max_pairs_columns": 5, "seed": seed}
    found, tried = find_error_slices(
        metadata, errors, screened=screened, batch_rows=batch_rows, **kwargs
    )
    expected, expected_tried = reference.find_error_slices(
        metadata, errors, screened=iter(screened), **kwargs
    )
    assert tried == expected_tried
    assert [s.to_dict() for s in found] == [s.to_dict() for s in expected]


def test_items_that_change_between_passes_are_refused() -> None:
    from assay.core.slice_search import SliceColumn, find_error_slices_in

    calls = []

    def batches(names: object) -> object:
        calls.append(names)
        n = 1000 if len(calls) == 1 else 999  # a file rewritten under the search
        yield [np.arange(n) % 4 for _ in names], np.arange(n) % 7 == 0

    columns = [SliceColumn(f"c{j}", ("a", "b", "c", "d")) for j in range(2)]
    with pytest.raises(ValueError, match="changed between passes"):
        find_error_slices_in(batches, 1000, columns, min_support=10)  # type: ignore[arg-type]
