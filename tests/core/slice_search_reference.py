"""The error-slice search as it was before it streamed (commit 70d8adf), kept verbatim as the
reference the streaming search must equal: same slices, counts, p- and q-values, same number
tried. Only the in-memory parts are here; the statistics (G-test, Fisher, BH) are shared."""

# ruff: noqa
from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import numpy as np
import numpy.typing as npt

from assay.core.slice_search import CodedColumn, ErrorSlice, column_strength, g_test
from assay.core.stattests import benjamini_hochberg, hypergeometric_sf

I64 = npt.NDArray[np.int64]


def _cube(
    columns: list[CodedColumn],
    errors: npt.NDArray[np.bool_],
    error_rows: I64,
    valid: npt.NDArray[np.bool_] | None,
) -> tuple[I64, I64]:
    """Item and error counts for every combination of codes of ``columns``, flattened in C order
    over the columns' code counts (items missing a value excluded; ``valid`` None: none is).
    ``error_rows`` are the positions of ``errors``, found once for the whole search."""
    sizes = [len(c.labels) for c in columns]
    key = (
        columns[0].codes.astype(np.int64)
        if valid is None
        else columns[0].codes[valid].astype(np.int64)
    )
    for c, size in zip(columns[1:], sizes[1:], strict=True):
        key = key * size + (c.codes if valid is None else c.codes[valid])
    total = int(np.prod(sizes))
    n = np.bincount(key, minlength=total)
    # Errors are counted on the erring items' keys alone: no weighted pass over every item.
    picked = key.take(error_rows if valid is None else np.flatnonzero(errors[valid]))
    e = np.bincount(picked, minlength=total)
    return n, e


def _explore(
    columns: list[CodedColumn],
    errors: npt.NDArray[np.bool_],
    min_support: int,
    max_pairs_columns: int,
    max_triples_from: int,
) -> list[ErrorSlice]:
    """Every slice tried on these items, with its G-test against the rest (for ranking only)."""
    n_all, e_all = float(errors.size), float(errors.sum())
    if n_all == 0 or e_all == 0 or e_all == n_all:
        return []
    found: list[ErrorSlice] = []
    complete = [bool((c.codes >= 0).all()) for c in columns]  # no missing value: no masking
    error_rows = np.flatnonzero(errors)

    def evaluate(combo: tuple[int, ...]) -> list[ErrorSlice]:
        cols = [columns[i] for i in combo]
        valid: npt.NDArray[np.bool_] | None = None
        for i in combo:
            if not complete[i]:
                present = columns[i].codes >= 0
                valid = present if valid is None else valid & present
        n, e = _cube(cols, errors, error_rows, valid)
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

    singles = {i: evaluate((i,)) for i in range(len(columns))}
    for single in singles.values():
        found += single
    # Pairs among the columns whose best single slice is most telling.
    strength = sorted(
        singles,
        key=lambda i: (
            -max((s.g_stat for s in singles[i] if s.error_rate > s.rest_error_rate), default=0.0)
        ),
    )
    pair_cols = strength[:max_pairs_columns]
    pairs: dict[tuple[int, ...], list[ErrorSlice]] = {}
    for combo in combinations(sorted(pair_cols), 2):
        pairs[combo] = evaluate(combo)
        found += pairs[combo]
    # Triples extend the strongest pairs by one more column.
    best_pairs = sorted(
        pairs,
        key=lambda c: (
            -max((s.g_stat for s in pairs[c] if s.error_rate > s.rest_error_rate), default=0.0)
        ),
    )
    seen: set[tuple[int, ...]] = set()
    for pair in best_pairs[:max_triples_from]:
        for extra in pair_cols:
            triple: tuple[int, ...] = tuple(sorted({*pair, extra}))
            if len(triple) == 3 and triple not in seen:
                seen.add(triple)
                found += evaluate(triple)
    return found


# At most this many candidates go from the exploration half to the confirmation half: enough for
# every distinct pattern a person reads, few enough that the correction keeps its power.
MAX_CANDIDATES = 50


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
) -> tuple[list[ErrorSlice], int]:
    """Significant error slices, most significant first, and the number of slices tried.

    ``columns`` all enter the search; ``screened`` (e.g. a model's hundreds of input columns,
    read one at a time) are ranked by their strongest single slice on the exploration half, and
    the ``max_screened`` best join them. ``min_support`` applies to the whole data (half of it
    within each half).
    """
    n_all, e_all = errors.size, int(errors.sum())
    if n_all == 0 or e_all == 0 or e_all == n_all:
        return [], 0
    explore = np.random.default_rng([seed, n_all]).random(n_all) < 0.5
    confirm = ~explore
    half_support = max(1, min_support // 2)

    def part(column: CodedColumn, rows: npt.NDArray[np.bool_]) -> CodedColumn:
        return CodedColumn(column.name, column.codes[rows], column.labels)

    chosen = list(columns) + screen_columns(screened, errors, explore, half_support, max_screened)
    tried = _explore(
        [part(c, explore) for c in chosen],
        errors[explore],
        half_support,
        max_pairs_columns,
        max_triples_from,
    )
    promising = sorted(
        (t for t in tried if t.error_rate > t.rest_error_rate and t.p_value < 0.5),
        key=lambda t: (t.p_value, -t.g_stat, len(t.predicates)),
    )[:MAX_CANDIDATES]
    by_name = {c.name: c for c in chosen}
    tested = [_recount(t.predicates, by_name, errors, confirm, half_support) for t in promising]
    candidates = [t for t in tested if t is not None]
    for candidate, q in zip(
        candidates, benjamini_hochberg([c.p_value for c in candidates]), strict=True
    ):
        candidate.q_value = q
    significant = [c for c in candidates if c.q_value < alpha and c.error_rate > c.rest_error_rate]
    kept = _explain_away(significant, chosen, errors, confirm, alpha, top)
    return [_described_on_all(k, by_name, errors) for k in kept], len(tried)


def screen_columns(
    candidates: Iterable[CodedColumn],
    errors: npt.NDArray[np.bool_],
    explore: npt.NDArray[np.bool_],
    min_support: int,
    keep: int,
) -> list[CodedColumn]:
    """The ``keep`` columns whose strongest single slice is strongest on the exploration half,
    holding at most ``keep + 1`` columns at a time however many are offered."""
    e_explore = errors[explore]
    best: list[tuple[float, int, CodedColumn]] = []
    for i, column in enumerate(candidates):
        strength = column_strength(
            CodedColumn(column.name, column.codes[explore], column.labels), e_explore, min_support
        )
        best.append((-strength, i, column))
        best = sorted(best, key=lambda t: (t[0], t[1]))[:keep]
    return [c for _, _, c in best]


def _membership(
    predicates: tuple[tuple[str, str], ...], by_name: dict[str, CodedColumn]
) -> npt.NDArray[np.bool_]:
    first, *rest = predicates
    member: npt.NDArray[np.bool_] = by_name[first[0]].codes == by_name[first[0]].labels.index(
        first[1]
    )
    for column, value in rest:
        c = by_name[column]
        member &= c.codes == c.labels.index(value)
    return member


def _recount(
    predicates: tuple[tuple[str, str], ...],
    by_name: dict[str, CodedColumn],
    errors: npt.NDArray[np.bool_],
    rows: npt.NDArray[np.bool_],
    min_support: int,
) -> ErrorSlice | None:
    """The slice tested on ``rows`` only (None: too little support there)."""
    member = _membership(predicates, by_name) & rows
    n_rows, e_rows = int(rows.sum()), int(errors[rows].sum())
    n_in, e_in = int(member.sum()), int(errors[member].sum())
    if n_in < min_support or n_rows - n_in < min_support or e_rows in (0, n_rows):
        return None
    g, _ = g_test(np.array([float(e_in)]), np.array([float(n_in)]), float(e_rows), float(n_rows))
    # Fisher's exact test here: few candidates are tested, and the G-test's chi-square
    # approximation runs liberal on slices of a few dozen items with few errors.
    p = hypergeometric_sf(e_in, n_rows, e_rows, n_in)
    rest = (e_rows - e_in) / (n_rows - n_in)
    return ErrorSlice(predicates, n_in, e_in, e_in / n_in, rest, float(g[0]), p)


def _described_on_all(
    s: ErrorSlice, by_name: dict[str, CodedColumn], errors: npt.NDArray[np.bool_]
) -> ErrorSlice:
    """The confirmed slice's counts over every item; its test stays the confirmation half's."""
    member = _membership(s.predicates, by_name)
    n_in, e_in = int(member.sum()), int(errors[member].sum())
    n_rest, e_rest = errors.size - n_in, int(errors.sum()) - e_in
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


MAX_RETESTS = 150


def _explain_away(
    candidates: list[ErrorSlice],
    columns: list[CodedColumn],
    errors: npt.NDArray[np.bool_],
    rows: npt.NDArray[np.bool_],
    alpha: float,
    top: int,
) -> list[ErrorSlice]:
    """Keep slices, most significant first, that still hold excess errors once the items of the
    slices already kept are set aside (re-tested on ``rows``, with Bonferroni over the re-tests).
    Echoes, such as a pair that only overlaps a kept slice, drop out; refinements must also
    concentrate errors at least 25% beyond every kept slice they refine."""
    by_name = {c.name: c for c in columns}
    # Re-testing costs a pass over the items; the strongest candidates are the ones worth it.
    ordered = sorted(candidates, key=lambda s: (s.q_value, -s.g_stat, len(s.predicates)))[
        :MAX_RETESTS
    ]
    covered = ~rows
    kept: list[ErrorSlice] = []
    level = alpha / max(1, len(ordered))
    for s in ordered:
        if len(kept) >= top:
            break
        mine = set(s.predicates)
        if any(set(k.predicates) < mine and s.error_rate < 1.25 * k.error_rate for k in kept):
            continue
        member = _membership(s.predicates, by_name)
        free = ~covered
        n_in, e_in = float((member & free).sum()), float(errors[member & free].sum())
        n_rest, e_rest = float(free.sum()), float(errors[free].sum())
        if n_in == 0 or n_in == n_rest:
            continue
        _, p = g_test(np.array([e_in]), np.array([n_in]), e_rest, n_rest)
        if p[0] < level:
            kept.append(s)
            covered |= member
    return kept
