"""Pairs of 64-bit perceptual hashes within a Hamming distance, without comparing every pair.

Two hashes at most ``d`` bits apart agree exactly on at least one of ``d + 1`` disjoint bands of
their bits (pigeonhole), so candidates are the pairs that share a band value (a sort and a binary
search per band), and each candidate is then checked on all 64 bits. The result is exactly the set
a comparison of every pair gives (tested against it), at a cost that grows with the number of
candidates rather than with ``len(a) * len(b)``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
# Candidates expanded at once: bounds memory when many images share a band (blank frames).
CHUNK = 4_000_000
_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount(x: U64) -> npt.NDArray[np.uint8]:
    """Set bits of each 64-bit value."""
    if hasattr(np, "bitwise_count"):  # numpy 2
        counts: npt.NDArray[np.uint8] = np.bitwise_count(x).astype(np.uint8)
        return counts
    as_bytes = np.ascontiguousarray(x).view(np.uint8).reshape(-1, 8)
    total: npt.NDArray[np.uint8] = _BYTE_BITS[as_bytes].sum(axis=1, dtype=np.uint8)
    return total


def _bands(max_distance: int) -> list[tuple[int, int]]:
    """``max_distance + 1`` disjoint (shift, width) bands covering the 64 bits."""
    n = max_distance + 1
    widths = [64 // n + (1 if i < 64 % n else 0) for i in range(n)]
    shifts = np.concatenate([[0], np.cumsum(widths)[:-1]]).tolist()
    return list(zip(shifts, widths, strict=True))


def hamming_pairs(a: U64, b: U64, max_distance: int) -> tuple[I64, I64, npt.NDArray[np.uint8]]:
    """Every (i, j) with popcount(a[i] ^ b[j]) <= ``max_distance``, and that distance; sorted by
    i, then j."""
    if not 0 <= max_distance < 64:
        raise ValueError("max_distance must be between 0 and 63")
    keys: list[I64] = []
    for shift, width in _bands(max_distance):
        mask = np.uint64((1 << width) - 1)
        band_a = (a >> np.uint64(shift)) & mask
        band_b = (b >> np.uint64(shift)) & mask
        order = np.argsort(band_b, kind="stable")
        sorted_b = band_b[order]
        lo = np.searchsorted(sorted_b, band_a, "left")
        hi = np.searchsorted(sorted_b, band_a, "right")
        counts = hi - lo
        rows = np.flatnonzero(counts)
        start = 0
        while start < rows.size:
            # As many rows as keep this chunk's candidates under CHUNK (at least one row).
            cum = np.cumsum(counts[rows[start:]])
            stop = start + max(1, int(np.searchsorted(cum, CHUNK, "right")))
            chunk = rows[start:stop]
            n = counts[chunk]
            i = np.repeat(chunk, n)
            offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
            j = order[np.repeat(lo[chunk], n) + offsets]
            close = popcount(a[i] ^ b[j]) <= max_distance
            keys.append(i[close].astype(np.int64) * len(b) + j[close].astype(np.int64))
            start = stop
    if not keys:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.uint8)
    unique = np.unique(np.concatenate(keys))
    i, j = unique // max(1, len(b)), unique % max(1, len(b))
    return i, j, popcount(a[i] ^ b[j])
