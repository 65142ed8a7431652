"""find_error_slices: where errors cluster, as conjunctions of up to three predicates.

Input columns are discretised beforehand (categories, or quantile bins of numeric columns) into
integer codes. Every conjunction is counted exactly with one ``bincount`` over combined codes per
column tuple: all single columns, all pairs among the most telling columns, and triples that
extend the strongest pairs. (The sliceline library was the first choice; at 1M items x 10 columns
its sparse candidate product asked for tens of GiB.)

The search pays for its selection by splitting the items at random (seeded) into two halves.
Everything that chooses (screening the input columns, picking pairs and triples, ranking the
candidates) looks at the exploration half only; the chosen candidates are then tested on the
confirmation half alone, with a one-sided G-test (likelihood ratio, chi-square with one degree
of freedom) and Benjamini-Hochberg across the candidates tested. Counting only the slices tried
on the same data that chose them is not enough: with 57 noise inputs that reported "significant"
slices on 23% of datasets where there were none. A reported slice's counts cover all its items;
its p- and q-value come from the confirmation half.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from assay.core.slicing import format_predicate
from assay.core.stattests import benjamini_hochberg, hypergeometric_sf

I64 = npt.NDArray[np.int64]
F = npt.NDArray[np.float64]
Codes = npt.NDArray[np.signedinteger[Any]]


def code_dtype(n_codes: int) -> type[np.signedinteger[Any]]:
    """The narrowest signed integer type holding codes 0..n_codes-1 and -1 (missing).

    The search holds one code per item and column for the whole dataset: int8 instead of int32
    takes that from 120 to 30 bytes per item with 30 columns.
    """
    if n_codes <= np.iinfo(np.int8).max:
        return np.int8
    if n_codes <= np.iinfo(np.int16).max:
        return np.int16
    return np.int32


@dataclass(frozen=True)
class CodedColumn:
    """A discretised column: one code per item (-1: missing) and the label of each code."""

    name: str
    codes: Codes
    labels: tuple[str, ...]


@dataclass
class ErrorSlice:
    predicates: tuple[tuple[str, str], ...]
    n_items: int
    n_errors: int
    error_rate: float
    rest_error_rate: float
    g_stat: float
    p_value: float
    q_value: float = 1.0
    children: list[ErrorSlice] = field(default_factory=list, repr=False)
    # On the confirmation half alone: items, errors, error rate inside and outside.
    confirmation: tuple[int, int, float, float] | None = None

    @property
    def lift(self) -> float:
        return self.error_rate / self.rest_error_rate if self.rest_error_rate > 0 else math.inf

    def describe(self, what: str = "errors") -> str:
        where = " and ".join(format_predicate(c, v) for c, v in self.predicates)
        q = "q < 1e-6" if self.q_value < 1e-6 else f"q = {self.q_value:.2g}"
        return (
            f"{where}: {self.error_rate:.0%} {what} vs {self.rest_error_rate:.0%} elsewhere, "
            f"{self.n_items} items, {q}"
        )

    def to_dict(self, what: str = "errors") -> dict[str, Any]:
        return {
            "description": self.describe(what),
            "predicates": [{"column": c, "value": v} for c, v in self.predicates],
            "n_items": self.n_items,
            "n_errors": self.n_errors,
            "error_rate": self.error_rate,
            "rest_error_rate": self.rest_error_rate,
            "lift": None if math.isinf(self.lift) else self.lift,
            "g_stat": self.g_stat,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "confirmation": None
            if self.confirmation is None
            else dict(
                zip(
                    ("n_items", "n_errors", "error_rate", "rest_error_rate"),
                    self.confirmation,
                    strict=True,
                )
            ),
        }


def _xlogy(x: F, y: F) -> F:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F = np.where(x > 0, x * np.log(np.where(y > 0, y, 1.0)), 0.0)
    return out


def g_test(e_in: F, n_in: F, e_all: float, n_all: float) -> tuple[F, F]:
    """One-sided G-test of a higher error rate inside than outside; returns (G, p)."""
    e_out, n_out = e_all - e_in, n_all - n_in
    p_in = np.divide(e_in, n_in, out=np.zeros_like(e_in), where=n_in > 0)
    p_out = np.divide(e_out, n_out, out=np.zeros_like(e_out), where=n_out > 0)
    p = e_all / n_all if n_all else 0.0
    ll1 = (
        _xlogy(e_in, p_in)
        + _xlogy(n_in - e_in, 1 - p_in)
        + _xlogy(e_out, p_out)
        + _xlogy(n_out - e_out, 1 - p_out)
    )
    ll0 = _xlogy(e_in + e_out, np.full_like(e_in, p)) + _xlogy(
        n_in + n_out - e_in - e_out, np.full_like(e_in, 1 - p)
    )
    g = np.maximum(2.0 * (ll1 - ll0), 0.0)
    # chi-square(1) survival is erfc(sqrt(G/2)); halved for the one-sided alternative.
    p_two = np.array([math.erfc(math.sqrt(v / 2.0)) for v in g.tolist()])
    p_one = np.where(p_in > p_out, p_two / 2.0, 1.0 - p_two / 2.0)
    return g, p_one


@dataclass(frozen=True)
class SliceColumn:
    """A discretised column as the search sees it: its name and the label of each code."""

    name: str
    labels: tuple[str, ...]


class ItemBatches(Protocol):
    """The judged items, always in the same order, in batches: for each batch the codes of the
    columns asked for (-1: missing), in that order, and whether each item is an error."""

    def __call__(
        self, names: Sequence[str]
    ) -> Iterable[tuple[Sequence[Codes], npt.NDArray[np.bool_]]]: ...


def _halves(
    batches: ItemBatches, names: Sequence[str], n_items: int, seed: int
) -> Iterator[tuple[Sequence[Codes], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]:
    """Each batch with its items' half: True for exploration. The draws continue from batch to
    batch, so every pass (and every batch size) splits the items the same way."""
    rng = np.random.default_rng([seed, n_items])
    seen = 0
    for codes, errors in batches(names):
        seen += errors.size
        yield codes, errors, rng.random(errors.size) < 0.5
    if seen != n_items:
        raise ValueError(f"the items changed between passes: {seen:,} read, {n_items:,} expected")


class _Cubes:
    """Item and error counts of every cell (combination of codes) of some column tuples, on the
    exploration half. Items missing a value of a tuple's column are not in that tuple's cells."""

    def __init__(self, combos: Sequence[tuple[int, ...]], sizes: Sequence[int]):
        self.combos = list(combos)
        self.sizes = [[sizes[i] for i in combo] for combo in self.combos]
        totals = [int(np.prod(s)) for s in self.sizes]
        self.n = [np.zeros(t, np.int64) for t in totals]
        self.e = [np.zeros(t, np.int64) for t in totals]
        self.n_all = self.e_all = 0

    def add(self, codes: dict[int, Codes], errors: npt.NDArray[np.bool_]) -> None:
        self.n_all += errors.size
        self.e_all += int(errors.sum())
        error_rows = np.flatnonzero(errors)
        complete = {i: bool((c >= 0).all()) for i, c in codes.items()}
        for k, (combo, sizes) in enumerate(zip(self.combos, self.sizes, strict=True)):
            valid: npt.NDArray[np.bool_] | None = None
            for i in combo:
                if not complete[i]:
                    present = codes[i] >= 0
                    valid = present if valid is None else valid & present
            key = codes[combo[0]].astype(np.int64)
            for i, size in zip(combo[1:], sizes[1:], strict=True):
                key = key * size + codes[i]
            rows = error_rows
            if valid is not None:
                key, rows = key[valid], np.flatnonzero(errors[valid])
            self.n[k] += np.bincount(key, minlength=self.n[k].size)
            # Errors are counted on the erring items' keys alone: no weighted pass over every item.
            self.e[k] += np.bincount(key.take(rows), minlength=self.e[k].size)


def _count(
    batches: ItemBatches,
    n_items: int,
    seed: int,
    columns: Sequence[SliceColumn],
    combos: Sequence[tuple[int, ...]],
) -> _Cubes:
    """One pass over the items counting ``combos`` (of indices into ``columns``) on the
    exploration half."""
    used = sorted({i for combo in combos for i in combo})
    cubes = _Cubes(combos, [len(c.labels) for c in columns])
    for codes, errors, explore in _halves(batches, [columns[i].name for i in used], n_items, seed):
        cubes.add({i: c[explore] for i, c in zip(used, codes, strict=True)}, errors[explore])
    return cubes


def _evaluate(
    columns: Sequence[SliceColumn],
    combo: tuple[int, ...],
    n: I64,
    e: I64,
    n_all: float,
    e_all: float,
    min_support: int,
) -> list[ErrorSlice]:
    """Every cell of one column tuple with enough support, with its G-test against the rest."""
    cols = [columns[i] for i in combo]
    keep = np.flatnonzero((n >= min_support) & (n_all - n >= min_support))
    if keep.size == 0:
        return []
    g, p = g_test(e[keep].astype(np.float64), n[keep].astype(np.float64), e_all, n_all)
    cells = np.stack(np.unravel_index(keep, [len(c.labels) for c in cols]), axis=1).tolist()
    out = []
    for j, idx in enumerate(keep.tolist()):
        preds = tuple((c.name, c.labels[v]) for c, v in zip(cols, cells[j], strict=True))
        rest_n = n_all - n[idx]
        out.append(
            ErrorSlice(
                preds,
                int(n[idx]),
                int(e[idx]),
                e[idx] / n[idx],
                (e_all - e[idx]) / rest_n,
                float(g[j]),
                float(p[j]),
            )
        )
    return out


def _strongest(found: list[ErrorSlice]) -> float:
    return max((s.g_stat for s in found if s.error_rate > s.rest_error_rate), default=0.0)


# At most this many candidates go from the exploration half to the confirmation half: enough for
# every distinct pattern a person reads, few enough that the correction keeps its power. It also
# lets one 64-bit word per item say which candidates the item belongs to.
MAX_CANDIDATES = 50
MAX_RETESTS = 150


def find_error_slices_in(
    batches: ItemBatches,
    n_items: int,
    columns: Sequence[SliceColumn],
    screened: Sequence[SliceColumn] = (),
    min_support: int = 30,
    alpha: float = 0.05,
    max_pairs_columns: int = 12,
    max_triples_from: int = 20,
    top: int = 20,
    max_screened: int = 30,
    seed: int = 0,
) -> tuple[list[ErrorSlice], int]:
    """Significant error slices, most significant first, and the number of slices tried, in
    four passes over ``batches`` holding counts only (no per-item codes).

    ``columns`` all enter the search; ``screened`` (e.g. a model's hundreds of input columns)
    are ranked by their strongest single slice on the exploration half, and the
    ``max_screened`` best join them. ``min_support`` applies to the whole data (half of it
    within each half).
    """
    half_support = max(1, min_support // 2)
    everything = [*columns, *screened]
    # Pass 1: every single column, screened ones included.
    singles = _count(batches, n_items, seed, everything, [(i,) for i in range(len(everything))])
    n_all, e_all = float(singles.n_all), float(singles.e_all)
    if n_items == 0 or n_all == 0 or e_all == 0 or e_all == n_all:
        return [], 0

    def evaluate(cubes: _Cubes, k: int) -> list[ErrorSlice]:
        return _evaluate(
            everything, cubes.combos[k], cubes.n[k], cubes.e[k], n_all, e_all, half_support
        )

    single = [evaluate(singles, k) for k in range(len(everything))]
    ranked = sorted(range(len(columns), len(everything)), key=lambda i: (-_strongest(single[i]), i))
    chosen = list(range(len(columns))) + ranked[:max_screened]
    tried: list[ErrorSlice] = [s for i in chosen for s in single[i]]
    # Pass 2: pairs among the columns whose best single slice is most telling.
    pair_cols = sorted(chosen, key=lambda i: (-_strongest(single[i]), chosen.index(i)))
    pair_cols = pair_cols[:max_pairs_columns]
    pair_combos = list(combinations(sorted(pair_cols, key=chosen.index), 2))
    pairs = _count(batches, n_items, seed, everything, pair_combos)
    pair_found = [evaluate(pairs, k) for k in range(len(pair_combos))]
    for found in pair_found:
        tried += found
    # Pass 3: triples extend the strongest pairs by one more column.
    best_pairs = sorted(range(len(pair_combos)), key=lambda k: (-_strongest(pair_found[k]), k))
    triple_combos: list[tuple[int, ...]] = []
    for k in best_pairs[:max_triples_from]:
        for extra in pair_cols:
            triple = tuple(sorted({*pair_combos[k], extra}, key=chosen.index))
            if len(triple) == 3 and triple not in triple_combos:
                triple_combos.append(triple)
    if triple_combos:
        triples = _count(batches, n_items, seed, everything, triple_combos)
        for k in range(len(triple_combos)):
            tried += evaluate(triples, k)
    promising = sorted(
        (t for t in tried if t.error_rate > t.rest_error_rate and t.p_value < 0.5),
        key=lambda t: (t.p_value, -t.g_stat, len(t.predicates)),
    )[:MAX_CANDIDATES]
    # Pass 4: the candidates tested on the confirmation half, and counted on every item.
    confirmed = _confirm(batches, n_items, seed, everything, promising)
    tested = [confirmed.recount(k, half_support) for k in range(len(promising))]
    candidates = [(k, t) for k, t in enumerate(tested) if t is not None]
    for (_, candidate), q in zip(
        candidates, benjamini_hochberg([c.p_value for _, c in candidates]), strict=True
    ):
        candidate.q_value = q
    significant = [
        (k, c) for k, c in candidates if c.q_value < alpha and c.error_rate > c.rest_error_rate
    ]
    kept = confirmed.explain_away(significant, alpha, top)
    return [confirmed.described_on_all(k, s) for k, s in kept], len(tried)


class _Confirmation:
    """Counts of the candidate slices: on the confirmation half, on every item, and the
    confirmation items grouped by which candidates they belong to (one bit per candidate), which
    is all that setting aside the items of kept slices needs."""

    def __init__(self, candidates: Sequence[ErrorSlice]):
        self.candidates = list(candidates)
        k = len(self.candidates)
        self.n_half, self.e_half = np.zeros(k, np.int64), np.zeros(k, np.int64)
        self.n_in_all, self.e_in_all = np.zeros(k, np.int64), np.zeros(k, np.int64)
        self.rows = self.errors = self.n_all = self.e_all = 0
        self.patterns = np.empty(0, np.uint64)
        self.pattern_n = np.empty(0, np.int64)
        self.pattern_e = np.empty(0, np.int64)

    def add(
        self,
        members: npt.NDArray[np.bool_],
        errors: npt.NDArray[np.bool_],
        confirm: npt.NDArray[np.bool_],
    ) -> None:
        """One batch: ``members`` [candidates, items] says which items each candidate holds."""
        self.n_all += errors.size
        self.e_all += int(errors.sum())
        half_errors = errors[confirm]
        self.rows += int(confirm.sum())
        self.errors += int(half_errors.sum())
        self.n_in_all += np.count_nonzero(members, axis=1)
        self.e_in_all += np.count_nonzero(members[:, errors], axis=1)
        half = members[:, confirm]
        self.n_half += np.count_nonzero(half, axis=1)
        self.e_half += np.count_nonzero(half[:, half_errors], axis=1)
        # Candidate k is bit k of an item's pattern: eight rows of packed bits make one word.
        packed = np.packbits(half, axis=0, bitorder="little")
        words = np.zeros((8, half.shape[1]), np.uint8)
        words[: packed.shape[0]] = packed
        pattern = np.ascontiguousarray(words.T).view("<u8").ravel().astype(np.uint64)
        merged = np.concatenate((self.patterns, pattern))
        keys, where = np.unique(merged, return_inverse=True)
        ones = np.ones(pattern.size, np.int64)
        self.pattern_n = np.bincount(
            where, np.concatenate((self.pattern_n, ones)), keys.size
        ).astype(np.int64)
        self.pattern_e = np.bincount(
            where, np.concatenate((self.pattern_e, half_errors.astype(np.int64))), keys.size
        ).astype(np.int64)
        self.patterns = keys

    def recount(self, k: int, min_support: int) -> ErrorSlice | None:
        """Candidate ``k`` tested on the confirmation half only (None: too little support)."""
        n_rows, e_rows = self.rows, self.errors
        n_in, e_in = int(self.n_half[k]), int(self.e_half[k])
        if n_in < min_support or n_rows - n_in < min_support or e_rows in (0, n_rows):
            return None
        g, _ = g_test(
            np.array([float(e_in)]), np.array([float(n_in)]), float(e_rows), float(n_rows)
        )
        # Fisher's exact test here: few candidates are tested, and the G-test's chi-square
        # approximation runs liberal on slices of a few dozen items with few errors.
        p = hypergeometric_sf(e_in, n_rows, e_rows, n_in)
        rest = (e_rows - e_in) / (n_rows - n_in)
        return ErrorSlice(
            self.candidates[k].predicates, n_in, e_in, e_in / n_in, rest, float(g[0]), p
        )

    def explain_away(
        self, candidates: list[tuple[int, ErrorSlice]], alpha: float, top: int
    ) -> list[tuple[int, ErrorSlice]]:
        """Keep slices, most significant first, that still hold excess errors once the items of
        the slices already kept are set aside (re-tested on the confirmation half, with
        Bonferroni over the re-tests). Echoes, such as a pair that only overlaps a kept slice,
        drop out; refinements must also concentrate errors at least 25% beyond every kept slice
        they refine."""
        ordered = sorted(
            candidates, key=lambda c: (c[1].q_value, -c[1].g_stat, len(c[1].predicates))
        )[:MAX_RETESTS]
        covered = np.uint64(0)
        kept: list[tuple[int, ErrorSlice]] = []
        level = alpha / max(1, len(ordered))
        for k, s in ordered:
            if len(kept) >= top:
                break
            mine = set(s.predicates)
            if any(
                set(other.predicates) < mine and s.error_rate < 1.25 * other.error_rate
                for _, other in kept
            ):
                continue
            free = (self.patterns & covered) == 0
            member = ((self.patterns >> np.uint64(k)) & np.uint64(1)) == 1
            n_in = float(self.pattern_n[member & free].sum())
            e_in = float(self.pattern_e[member & free].sum())
            n_rest, e_rest = float(self.pattern_n[free].sum()), float(self.pattern_e[free].sum())
            if n_in == 0 or n_in == n_rest:
                continue
            _, p = g_test(np.array([e_in]), np.array([n_in]), e_rest, n_rest)
            if p[0] < level:
                kept.append((k, s))
                covered |= np.uint64(1) << np.uint64(k)
        return kept

    def described_on_all(self, k: int, s: ErrorSlice) -> ErrorSlice:
        """The confirmed slice's counts over every item; its test stays the confirmation half's."""
        n_in, e_in = int(self.n_in_all[k]), int(self.e_in_all[k])
        n_rest, e_rest = self.n_all - n_in, self.e_all - e_in
        return ErrorSlice(
            s.predicates,
            n_in,
            e_in,
            e_in / n_in,
            e_rest / n_rest if n_rest else 0.0,
            s.g_stat,
            s.p_value,
            s.q_value,
            confirmation=(s.n_items, s.n_errors, s.error_rate, s.rest_error_rate),
        )


def _confirm(
    batches: ItemBatches,
    n_items: int,
    seed: int,
    columns: Sequence[SliceColumn],
    candidates: Sequence[ErrorSlice],
) -> _Confirmation:
    assert len(candidates) <= 64, "one bit per candidate in a 64-bit word"
    index = {c.name: i for i, c in enumerate(columns)}
    used = sorted({index[name] for s in candidates for name, _ in s.predicates})
    position = {i: j for j, i in enumerate(used)}
    wanted = [
        [
            (position[index[name]], columns[index[name]].labels.index(value))
            for name, value in s.predicates
        ]
        for s in candidates
    ]
    confirmation = _Confirmation(candidates)
    for codes, errors, explore in _halves(batches, [columns[i].name for i in used], n_items, seed):
        members = np.empty((len(wanted), errors.size), bool)
        for k, predicates in enumerate(wanted):
            (first, code), *rest = predicates
            np.equal(codes[first], code, out=members[k])
            for j, value in rest:
                members[k] &= codes[j] == value
        confirmation.add(members, errors, ~explore)
    return confirmation


def find_error_slices(
    columns: list[CodedColumn],
    errors: npt.NDArray[np.bool_],
    min_support: int = 30,
    alpha: float = 0.05,
    max_pairs_columns: int = 12,
    max_triples_from: int = 20,
    top: int = 20,
    screened: Iterable[CodedColumn] = (),
    max_screened: int = 30,
    seed: int = 0,
    batch_rows: int = 1 << 20,
) -> tuple[list[ErrorSlice], int]:
    """``find_error_slices_in`` over columns already coded in memory (one code per item)."""
    screened = list(screened)
    by_name = {c.name: c for c in [*columns, *screened]}

    def batches(names: Sequence[str]) -> Iterator[tuple[list[Codes], npt.NDArray[np.bool_]]]:
        for start in range(0, max(errors.size, 1), batch_rows):
            end = start + batch_rows
            yield [by_name[name].codes[start:end] for name in names], errors[start:end]

    return find_error_slices_in(
        batches,
        errors.size,
        [SliceColumn(c.name, c.labels) for c in columns],
        [SliceColumn(c.name, c.labels) for c in screened],
        min_support,
        alpha,
        max_pairs_columns,
        max_triples_from,
        top,
        max_screened,
        seed,
    )


def quantile_codes(
    values: F, n_bins: int = 5, fmt: Callable[[float], str] = lambda v: f"{v:.4g}"
) -> tuple[Codes, tuple[str, ...]]:
    """Codes of quantile bins of a numeric column (nan: -1) and their labels ``[lo, hi)``."""
    present = np.isfinite(values)
    complete = bool(present.all())
    finite = values if complete else values[present]
    codes = np.full(values.size, -1, dtype=code_dtype(n_bins))
    if finite.size == 0:
        return codes, ()
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1)))
    if edges.size == 1:
        codes[present] = 0
        return codes, (fmt(edges[0]),)
    # A value's bin is the number of inner edges at or below it: one comparison per edge is
    # several times faster than a binary search over a handful of edges.
    codes[:] = 0
    for edge in edges[1:-1]:
        codes += values >= edge
    if not complete:
        codes[~present] = -1
    labels = tuple(
        f"[{fmt(edges[i])}, {fmt(edges[i + 1])}{']' if i == edges.size - 2 else ')'}"
        for i in range(edges.size - 1)
    )
    return codes, labels


def column_strength(column: CodedColumn, errors: npt.NDArray[np.bool_], min_support: int) -> float:
    """The largest G statistic of an error-prone value of one column (for screening many columns)."""
    valid = column.codes >= 0
    if not valid.any() or not column.labels:
        return 0.0
    n = np.bincount(column.codes[valid], minlength=len(column.labels)).astype(np.float64)
    e = np.bincount(
        column.codes[valid], weights=errors[valid].astype(np.float64), minlength=len(column.labels)
    )
    n_all, e_all = float(errors.size), float(errors.sum())
    ok = (n >= min_support) & (n_all - n >= min_support)
    if not ok.any() or e_all in (0.0, n_all):
        return 0.0
    g, _ = g_test(e[ok].astype(np.float64), n[ok], e_all, n_all)
    higher = e[ok] / n[ok] > (e_all - e[ok]) / (n_all - n[ok])
    return float(g[higher].max()) if higher.any() else 0.0
