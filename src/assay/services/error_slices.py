"""search_error_slices: which metadata and input values the errors (or broken items) pile up on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.core.policy import Policy
from assay.core.slice_search import MAX_CANDIDATES, CodedColumn, ErrorSlice, find_error_slices
from assay.core.spec import ModelSpec, TabularInput
from assay.datasets import columns as cols
from assay.store.manifests import coded_column, judged_errors, manifest_schema

# A tabular model may read hundreds of columns; only the most telling ones enter the search.
MAX_INPUT_COLUMNS = 30


def search_error_slices(
    manifest: Path,
    candidate: Path,
    baseline: Path | None,
    spec: ModelSpec,
    policy: Policy,
    exclude: tuple[str, ...] = (),
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``error_slices`` (most significant first) and a description of the search."""
    valid, errors = judged_errors(candidate, baseline)
    target = "broken" if baseline is not None else "errors"
    errors = errors[valid]
    inputs = list(spec.input.columns) if isinstance(spec.input, TabularInput) else []
    # The expert label is not a property of the item: slicing by it repeats the per-class tables.
    names = [
        n for n in manifest_schema(manifest).names if n not in cols.RESERVED and n not in exclude
    ]
    metadata = [n for n in names if n not in set(inputs)]
    columns: list[CodedColumn] = []
    for name in metadata:
        coded = coded_column(manifest, name)
        if coded is not None:
            columns.append(CodedColumn(name, coded[0][valid], coded[1]))

    def input_columns() -> Iterator[CodedColumn]:
        """One input column at a time: a model may read hundreds, only the best are kept."""
        for name in inputs:
            coded = coded_column(manifest, name)
            if coded is not None:
                yield CodedColumn(name, coded[0][valid], coded[1])

    found, tried = find_error_slices(
        columns,
        errors,
        min_support=policy.min_slice_size,
        alpha=1.0 - policy.confidence,
        screened=input_columns(),
        max_screened=MAX_INPUT_COLUMNS,
        seed=seed,
    )
    used = [c for c in found_columns(found) if c in set(inputs)]
    what = "broken" if baseline is not None else "errors"
    search = {
        "target": target,
        "n_items": int(errors.size),
        "n_slices_tried": tried,
        "columns": [c.name for c in columns],
        "input_columns_screened": len(inputs),
        "input_columns_in_slices": used,
        "min_support": policy.min_slice_size,
        "method": (
            "split-sample: columns, combinations and candidates chosen on a random half of the "
            f"items, at most {MAX_CANDIDATES} candidates tested on the other half "
            "(one-sided Fisher exact test, Benjamini-Hochberg across them)"
        ),
    }
    return [s.to_dict(what) for s in found], search


def found_columns(found: list[ErrorSlice]) -> list[str]:
    """The columns the reported slices use, in order of first appearance."""
    return list(dict.fromkeys(column for s in found for column, _ in s.predicates))
