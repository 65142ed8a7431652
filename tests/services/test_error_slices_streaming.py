"""The streaming error-slice search equals the search it replaced, end to end on stored files.

The reference is the in-memory pipeline as it was: whole columns coded at once
(``coded_column``), judged items as arrays, and the frozen in-memory search. The streaming one
reads the manifest and the runs' predictions in batches, several times. Their results must be
identical: the same slices with the same counts, p- and q-values, and the same number tried.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.core.policy import Policy
from assay.core.slice_search import CodedColumn
from assay.core.spec import parse_model_spec
from assay.datasets import columns as cols
from assay.services.error_slices import MAX_INPUT_COLUMNS, search_error_slices, slice_columns
from assay.store import coders, judged_items
from assay.store.manifests import coded_column, judged_errors, manifest_schema
from tests.core import slice_search_reference as reference
from tests.real_datasets import secom


def reference_search(
    manifest: Path, candidate: Path, baseline: Path | None, inputs: list[str], policy: Policy
) -> tuple[list[dict[str, Any]], int]:
    valid, errors = judged_errors(candidate, baseline)
    errors = errors[valid]
    names = [n for n in manifest_schema(manifest).names if n not in cols.RESERVED]
    metadata = [n for n in names if n not in set(inputs)]
    columns = []
    for name in metadata:
        coded = coded_column(manifest, name)
        if coded is not None:
            columns.append(CodedColumn(name, coded[0][valid], coded[1]))
    screened = []
    for name in inputs:
        coded = coded_column(manifest, name)
        if coded is not None:
            screened.append(CodedColumn(name, coded[0][valid], coded[1]))
    found, tried = reference.find_error_slices(
        columns,
        errors,
        min_support=policy.min_slice_size,
        alpha=1.0 - policy.confidence,
        screened=iter(screened),
        max_screened=MAX_INPUT_COLUMNS,
    )
    what = "broken" if baseline is not None else "errors"
    return [s.to_dict(what) for s in found], tried


def runs(tmp_path: Path, correct: np.ndarray, base: np.ndarray, rows: int) -> tuple[Path, Path]:
    """Predictions files holding only what the search reads, in row groups of ``rows`` (unlike
    the manifest's), with unjudged items as nulls."""
    paths = []
    for name, values in (("cand", correct), ("base", base)):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(
            pa.table({"correct": pa.array(values, pa.bool_())}), path, row_group_size=rows
        )
        paths.append(path)
    return paths[0], paths[1]


def planted_table(tmp_path: Path, n: int) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    camera = rng.integers(1, 6, n)
    line = rng.choice(["L1", "L2", "L3", None], n)
    speed = np.where(rng.random(n) < 0.05, np.nan, rng.uniform(1200, 2200, n))
    when = datetime(2026, 1, 1, tzinfo=UTC).timestamp() + rng.uniform(0, 8e6, n)
    x = rng.normal(size=(n, 4))
    wrong = rng.random(n) < 0.08
    planted = (camera == 3) & (line == "L2")
    wrong[planted] = rng.random(int(planted.sum())) < 0.5
    wrong[(x[:, 2] > 1.2) & (speed > 2000)] |= (
        rng.random(int(((x[:, 2] > 1.2) & (speed > 2000)).sum())) < 0.4
    )
    correct = np.where(rng.random(n) < 0.03, None, ~wrong).tolist()
    base = np.where(rng.random(n) < 0.02, None, rng.random(n) < 0.9).tolist()
    table = pa.table(
        {
            cols.ITEM_ID: [f"i{k}" for k in range(n)],
            "camera": camera,
            "line": line,
            "line_speed": speed,
            "made": pa.array((when * 1e6).astype(np.int64), pa.timestamp("us")),
            "serial": [f"s{k}" for k in range(n)],
            **{f"x{j}": x[:, j] for j in range(4)},
        }
    )
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(table, manifest, row_group_size=4096)
    return manifest, np.array(correct, dtype=object), np.array(base, dtype=object)


@pytest.mark.parametrize(("streamed_bins", "held_codes"), [(False, True), (True, False)])
def test_streaming_search_equals_the_in_memory_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed_bins: bool, held_codes: bool
) -> None:
    if streamed_bins:  # quantile bins found by radix passes rather than from held values
        monkeypatch.setattr(coders, "QUANTILE_VALUES", 1000)
    if not held_codes:  # every pass reads the files again, as on a large dataset
        monkeypatch.setattr(judged_items, "HELD_CODES_BYTES", 0)
    monkeypatch.setattr(coders, "TABLE_BATCH_BYTES", 8 * 7 * 1500)  # many uneven batches
    manifest, correct, base = planted_table(tmp_path, 30_000)
    cand, baseline = runs(tmp_path, correct, base, 7_001)
    spec = parse_model_spec(
        {
            "labels": ["defect", "ok"],
            "input": {"kind": "tabular", "columns": [f"x{j}" for j in range(4)]},
        }
    )
    policy = Policy(checks=())
    columns = slice_columns(manifest, spec)
    for base_path in (None, baseline):
        found, search = search_error_slices(manifest, cand, base_path, columns, policy)
        expected, tried = reference_search(
            manifest, cand, base_path, list(spec.input.columns), policy
        )
        assert found == expected
        assert search["n_slices_tried"] == tried > 0
    own, _ = search_error_slices(manifest, cand, None, columns, policy)
    assert {(p["column"], p["value"]) for p in own[0]["predicates"]} == {
        ("camera", "3"),
        ("line", "L2"),
    }
    assert "serial" not in columns.coders  # an identifier is not sliced


def test_secom_streaming_search_equals_the_in_memory_search(tmp_path: Path) -> None:
    """SECOM: 590 sensors screened, many missing values; errors of a simple rule on sensor 59."""
    _, x, y = secom()

    names = [f"f{j:03d}" for j in range(x.shape[1])]
    table = pa.table(
        {cols.ITEM_ID: [str(k) for k in range(len(y))], **{n: x[:, j] for j, n in enumerate(names)}}
    )
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(table, manifest, row_group_size=500)
    rng = np.random.default_rng(0)
    flagged = np.nan_to_num(x[:, 59], nan=0.0) > np.nanmedian(x[:, 59])
    right = (flagged == (y == "fail")) | (rng.random(len(y)) < 0.5)
    cand, baseline = runs(
        tmp_path, right.astype(object), (rng.random(len(y)) < 0.9).astype(object), 333
    )
    spec = parse_model_spec(
        {
            "labels": ["fail", "pass"],
            "input": {"kind": "tabular", "columns": names, "missing": "allow"},
        }
    )
    policy = Policy(checks=())
    columns = slice_columns(manifest, spec)
    for base_path in (None, baseline):
        found, search = search_error_slices(manifest, cand, base_path, columns, policy)
        expected, tried = reference_search(manifest, cand, base_path, names, policy)
        assert found == expected
        assert search["n_slices_tried"] == tried > 0
        assert search["input_columns_screened"] == 590


def test_a_manifest_and_predictions_of_different_lengths_are_refused(tmp_path: Path) -> None:
    manifest, correct, base = planted_table(tmp_path, 3000)
    cand, _ = runs(tmp_path, correct[:2999], base[:2999], 1000)
    spec = parse_model_spec(
        {"labels": ["defect", "ok"], "input": {"kind": "tabular", "columns": ["x0"]}}
    )
    columns = slice_columns(manifest, spec)
    with pytest.raises(ValueError, match="different lengths"):
        search_error_slices(manifest, cand, None, columns, Policy(checks=()))
