"""search_error_slices: which metadata and input values the errors (or broken items) pile up on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assay.core.policy import Policy
from assay.core.slice_search import CodedColumn, column_strength, find_error_slices
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
    screened: list[tuple[float, CodedColumn]] = []
    for name in inputs:
        coded = coded_column(manifest, name)
        if coded is None:
            continue
        column = CodedColumn(name, coded[0][valid], coded[1])
        screened.append((column_strength(column, errors, policy.min_slice_size), column))
        screened = sorted(screened, key=lambda t: -t[0])[:MAX_INPUT_COLUMNS]
    columns += [c for _, c in screened]
    found, tried = find_error_slices(
        columns, errors, min_support=policy.min_slice_size, alpha=1.0 - policy.confidence
    )
    what = "broken" if baseline is not None else "errors"
    search = {
        "target": target,
        "n_items": int(errors.size),
        "n_slices_tried": tried,
        "columns": [c.name for c in columns],
        "input_columns_screened": len(inputs),
        "input_columns_used": len(screened),
        "min_support": policy.min_slice_size,
    }
    return [s.to_dict(what) for s in found], search
