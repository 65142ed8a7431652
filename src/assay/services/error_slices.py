"""search_error_slices: which metadata and input values the errors (or broken items) pile up on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.core.policy import Policy
from assay.core.slice_search import (
    MAX_CANDIDATES,
    ErrorSlice,
    SliceColumn,
    find_error_slices_in,
)
from assay.core.spec import ModelSpec, TabularInput
from assay.datasets import columns as cols
from assay.store.coders import ColumnCoder, fit_coders
from assay.store.judged_items import JudgedItems
from assay.store.manifests import manifest_schema

# A tabular model may read hundreds of columns; only the most telling ones enter the search.
MAX_INPUT_COLUMNS = 30


@dataclass(frozen=True)
class SliceColumns:
    """The dataset's columns a search slices by, fitted once for every search of a run."""

    metadata: list[str]
    inputs: list[str]  # the model's input columns: screened, the most telling kept
    coders: dict[str, ColumnCoder]

    def of(self, names: list[str]) -> list[SliceColumn]:
        return [SliceColumn(n, self.coders[n].labels) for n in names if n in self.coders]


def slice_columns(manifest: Path, spec: ModelSpec, exclude: tuple[str, ...] = ()) -> SliceColumns:
    """Fit the codes of every sliceable column, in passes over the manifest."""
    inputs = list(spec.input.columns) if isinstance(spec.input, TabularInput) else []
    # The expert label is not a property of the item: slicing by it repeats the per-class tables.
    names = [
        n for n in manifest_schema(manifest).names if n not in cols.RESERVED and n not in exclude
    ]
    metadata = [n for n in names if n not in set(inputs)]
    inputs = [n for n in inputs if n in set(names)]
    coders = fit_coders(manifest, metadata + inputs)
    return SliceColumns(
        metadata, inputs, {name: coder for name, coder in coders.items() if coder is not None}
    )


def search_error_slices(
    manifest: Path,
    candidate: Path,
    baseline: Path | None,
    columns: SliceColumns,
    policy: Policy,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``error_slices`` (most significant first) and a description of the search.

    The search streams: it reads the items in batches, four times, holding counts only."""
    items = JudgedItems(manifest, candidate, baseline, columns.coders)
    metadata = columns.of(columns.metadata)
    found, tried = find_error_slices_in(
        items,
        items.n_items,
        metadata,
        columns.of(columns.inputs),
        min_support=policy.min_slice_size,
        alpha=1.0 - policy.confidence,
        max_screened=MAX_INPUT_COLUMNS,
        seed=seed,
    )
    used = [c for c in found_columns(found) if c in set(columns.inputs)]
    what = "broken" if baseline is not None else "errors"
    search = {
        "target": what,
        "n_items": items.n_items,
        "n_slices_tried": tried,
        "columns": [c.name for c in metadata],
        "input_columns_screened": len(columns.inputs),
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
