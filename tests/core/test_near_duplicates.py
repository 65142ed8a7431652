"""Banded near-duplicate search against the comparison of every pair."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.near_duplicates import hamming_pairs, popcount


def _every_pair(a: np.ndarray, b: np.ndarray, d: int) -> set[tuple[int, int, int]]:
    return {
        (i, j, bin(int(x) ^ int(y)).count("1"))
        for i, x in enumerate(a)
        for j, y in enumerate(b)
        if bin(int(x) ^ int(y)).count("1") <= d
    }


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 40), st.integers(0, 60), st.integers(0, 12))
def test_the_same_pairs_as_comparing_every_pair(seed: int, n_a: int, n_b: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 2**63, n_b, dtype=np.uint64) * np.uint64(2) + rng.integers(
        0, 2, n_b, dtype=np.uint64
    )
    # Near copies of some of b (a few flipped bits) beside unrelated hashes.
    a = rng.integers(0, 2**63, n_a, dtype=np.uint64)
    for k in range(min(n_a, n_b)):
        if rng.uniform() < 0.6:
            flips = rng.choice(64, rng.integers(0, 2 * d + 2), replace=False)
            a[k] = b[k] ^ np.uint64(sum(1 << int(f) for f in flips))
    i, j, dist = hamming_pairs(a, b, d)
    assert set(zip(i.tolist(), j.tolist(), dist.tolist(), strict=True)) == _every_pair(a, b, d)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == sorted(
        zip(i.tolist(), j.tolist(), strict=True)
    )


def test_popcount_matches_python() -> None:
    x = np.random.default_rng(0).integers(0, 2**63, 1000, dtype=np.uint64) * np.uint64(3)
    assert popcount(x).tolist() == [bin(int(v)).count("1") for v in x]
