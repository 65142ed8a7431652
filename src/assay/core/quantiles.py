"""StreamedQuantiles: numpy's quantiles of a column read in passes, in bounded memory, exactly.

``np.quantile`` needs the whole column in memory; at 10M rows that is 80 MB per column, and the
error-slice search bins every numeric column. This finds the same order statistics by radix
selection over the bits of the values: each float64 maps to an unsigned 64-bit key in the same
order, one pass counts the keys of a cell (all values sharing a key prefix) in bins of their next
12 bits (16 the first time), and the bins holding the wanted ranks become the next cells. A cell
small enough is collected and sorted instead. The keys have 64 bits, so at most five passes after
the first settle any column, whatever its distribution; typically two do. The first pass also
collects the values while they fit, so a small column is settled in one pass by ``np.quantile``.

The result equals ``np.quantile(finite_values, qs)`` (method "linear") bit for bit: the two order
statistics around each quantile are found exactly and interpolated with numpy's own formula
(checked against ``np.quantile`` in the tests). Negative zeros count as zeros.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
U = npt.NDArray[np.uint64]

BITS = 12  # bits resolved per histogram pass: 4,096 bins of 8 bytes per cell
FIRST_BITS = 16  # the first histogram (one cell per column) resolves more: 512 KiB, once
SIGN = np.uint64(1 << 63)


def keys_of(values: F) -> U:
    """Unsigned keys that sort as the values do (finite values; -0.0 counts as 0.0)."""
    bits = (values + 0.0).view(np.uint64)  # + 0.0 turns -0.0 into 0.0
    # A negative value has all its bits flipped, a positive one its sign bit set.
    flip = (np.uint64(0) - (bits >> np.uint64(63))) | SIGN
    keys: U = bits ^ flip
    return keys


def value_of(key: int) -> float:
    bits = key & ~(1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def lerp_quantiles(n: int, qs: F, order_statistic: dict[int, float]) -> F:
    """numpy's "linear" quantiles of ``n`` values from the order statistics they need."""
    virtual = (n - 1) * qs
    previous = np.floor(virtual)
    gamma = virtual - previous
    out = np.empty(qs.size)
    for i, (p, g) in enumerate(
        zip(previous.astype(np.int64).tolist(), gamma.tolist(), strict=True)
    ):
        a = np.float64(order_statistic[min(max(p, 0), n - 1)])
        b = np.float64(order_statistic[min(max(p + 1, 0), n - 1)])
        # numpy's _lerp: from the nearer end, so that the result stays within [a, b].
        diff = b - a
        out[i] = b - diff * (1 - g) if g >= 0.5 else a + diff * g
    return out


def needed_ranks(n: int, qs: F) -> list[int]:
    virtual = (n - 1) * qs
    previous = np.floor(virtual).astype(np.int64)
    ranks = set(np.clip(previous, 0, n - 1).tolist()) | set(
        np.clip(previous + 1, 0, n - 1).tolist()
    )
    return sorted(ranks)


class _Cell:
    """The values whose keys start with ``prefix`` (their top ``depth`` bits): ``offset`` values
    of the column lie below them, ``count`` are in the cell, and ``ranks`` (column-wide) are
    wanted from it."""

    def __init__(
        self, prefix: int, depth: int, offset: int, count: int, ranks: list[int], bits: int = BITS
    ):
        self.prefix, self.depth, self.offset, self.count = prefix, depth, offset, count
        self.ranks = ranks
        self.bits = min(bits, 64 - depth)  # of the keys, counted by the next histogram
        self.collect = False
        self.collected: list[U] = []
        self.histogram: npt.NDArray[np.int64] | None = None
        self.low, self.high = (1 << 64) - 1, 0  # its smallest and largest key seen this pass

    def members(self, keys: U) -> U:
        if self.depth == 0:
            return keys
        inside: U = keys[(keys >> np.uint64(64 - self.depth)) == np.uint64(self.prefix)]
        return inside


class StreamedQuantiles:
    """Exact quantiles of the finite values fed to it, pass after pass, until ``done``.

    Feed every batch of the column to ``update``, in the same order each pass, and call
    ``end_pass`` after each pass; while ``done`` is false another pass is needed. ``limit`` caps
    the values held at once (histograms take 32 KiB per cell besides).
    """

    def __init__(self, qs: F, limit: int):
        self.qs = np.asarray(qs, dtype=np.float64)
        self.limit = max(1, limit)
        self.n = 0
        self.passes = 0
        self._held: list[F] | None = []
        self._held_n = 0
        self._min_key = (1 << 64) - 1
        self._max_key = 0
        self._cells: list[_Cell] = []
        self._found: dict[int, float] = {}
        self.result: F | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def update(self, values: F) -> None:
        """One batch of the column in the current pass (non-finite values are left out)."""
        if self.done:
            return
        values = values[np.isfinite(values)]
        if values.size == 0:
            return
        if self.passes == 0:
            self.n += values.size
            ends = keys_of(np.array([values.min(), values.max()]))
            self._min_key = min(self._min_key, int(ends[0]))
            self._max_key = max(self._max_key, int(ends[1]))
            if self._held is not None:
                self._held_n += values.size
                self._held = [*self._held, values.copy()] if self._held_n <= self.limit else None
            return
        keys = keys_of(values)
        for cell in self._cells:
            inside = cell.members(keys)
            if cell.collect:
                cell.collected.append(inside)
                continue
            if inside.size == 0:
                continue
            cell.low = min(cell.low, int(inside.min()))
            cell.high = max(cell.high, int(inside.max()))
            shift = np.uint64(64 - cell.depth - cell.bits)
            digits = ((inside >> shift) & np.uint64((1 << cell.bits) - 1)).astype(np.intp)
            assert cell.histogram is not None
            cell.histogram += np.bincount(digits, minlength=1 << cell.bits)

    def end_pass(self) -> None:
        if self.done:
            return
        self.passes += 1
        if self.passes == 1:
            if self.n == 0:
                self.result = np.full(self.qs.size, np.nan)
                return
            if self._held is not None:
                self.result = np.quantile(np.concatenate(self._held) + 0.0, self.qs)
                self._held = None
                return
            self._held = None
            # Every value shares the top bits on which the smallest and largest keys agree.
            depth = 64 - (self._min_key ^ self._max_key).bit_length()
            prefix = self._min_key >> (64 - depth) if depth else 0
            cells = [_Cell(prefix, depth, 0, self.n, needed_ranks(self.n, self.qs), FIRST_BITS)]
        else:
            cells = [child for cell in self._cells for child in self._settle(cell)]
        open_cells = []
        for cell in cells:
            if cell.depth == 64:  # one key: every value in the cell is the same
                for r in cell.ranks:
                    self._found[r] = value_of(cell.prefix)
            else:
                open_cells.append(cell)
        self._cells = open_cells
        if not open_cells:
            self.result = lerp_quantiles(self.n, self.qs, self._found)
            return
        budget = max(1, self.limit // len(open_cells))
        for cell in open_cells:
            cell.collect = cell.count <= budget
            cell.histogram = None if cell.collect else np.zeros(1 << cell.bits, np.int64)

    def _settle(self, cell: _Cell) -> list[_Cell]:
        """Records the ranks a pass settled in ``cell``; returns the narrower cells still open."""
        if cell.collect:
            keys = np.sort(np.concatenate(cell.collected))
            for r in cell.ranks:
                self._found[r] = value_of(int(keys[r - cell.offset]))
            return []
        if cell.low == cell.high:  # one value fills the cell: no need to narrow it down
            for r in cell.ranks:
                self._found[r] = value_of(cell.low)
            return []
        assert cell.histogram is not None
        before = np.concatenate(([0], np.cumsum(cell.histogram)))
        children: dict[int, list[int]] = {}
        for r in cell.ranks:
            digit = int(np.searchsorted(before, r - cell.offset, side="right")) - 1
            children.setdefault(digit, []).append(r)
        return [
            _Cell(
                (cell.prefix << cell.bits) | digit,
                cell.depth + cell.bits,
                cell.offset + int(before[digit]),
                int(cell.histogram[digit]),
                ranks,
            )
            for digit, ranks in children.items()
        ]


def max_passes() -> int:
    """The most passes a column can take: the counting one, the first histogram, and one per
    12 further bits of the keys."""
    return 2 + math.ceil((64 - FIRST_BITS) / BITS)
