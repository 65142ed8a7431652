"""Browsing a finished run's items: any set of them (a confusion cell, a slice, an error group,
broken or fixed, doubtful labels, a filter on metadata and scores), a page at a time, and one
item in full (scores, metadata or features, experts' labels, the baseline's answer).

Everything is read from the run's own files (predictions.parquet, row for row with the dataset's
manifest, and the exploration files beside it), so a page shows exactly what the report counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.core.errors import InputError, NotFoundError, did_you_mean
from assay.core.records import DatasetVersion, RunRecord
from assay.datasets import columns as cols
from assay.reports.json import read_result_json
from assay.reports.thumbnails import overlay_png, thumbnail_jpeg
from assay.services import run_tables
from assay.services.overlays import row_overlay
from assay.services.runs import get_run
from assay.services.workspace import Workspace
from assay.store.manifests import manifest_schema, slice_mask, take_column

MAX_PAGE = 500
MAX_CONDITIONS = 10
OPS = {
    "=": pc.equal,
    "!=": pc.not_equal,
    ">=": pc.greater_equal,
    "<=": pc.less_equal,
    ">": pc.greater,
    "<": pc.less,
}
CHANGES = ("broken", "fixed", "both_right", "both_wrong", "not_comparable")
Sort = Literal["row", "confidence", "-confidence", "doubt", "typical"]


@dataclass(frozen=True)
class ItemFilter:
    """Which items to show; every given field must hold (AND)."""

    label: str | None = None  # the expert (reference) label
    predicted: str | None = None
    correct: bool | None = None  # right or wrong (judged items only)
    judged: bool | None = None  # False: the items that could not be judged
    change: str | None = None  # against the baseline: broken, fixed, both_right, both_wrong
    group: int | None = None  # an error group (error_groups.parquet)
    doubtful: bool = False  # candidates for label review (doubtful_labels.parquet)
    disputed: bool = False  # experts without a majority (disputed_items.parquet)
    slice: tuple[tuple[str, str], ...] = ()  # predicates as the report writes them
    where: tuple[tuple[str, str, str], ...] = ()  # (column, op, value) on the dataset's columns
    score: tuple[str, str, float] | None = None  # (class, op, value) on that class's score
    item: str | None = None  # part of the item id
    # Another finished run on the same dataset version: ``change`` and ``differs`` then compare
    # with it (instead of the run's own baseline), and cards show its answers.
    against: str | None = None
    differs: bool = False  # the two runs' predicted classes differ
    sort: Sort = "row"

    @classmethod
    def parse(cls, params: dict[str, str]) -> ItemFilter:
        """From query parameters (the explorer's URL): ``slice`` is JSON predicates, ``where``
        ``column<op>value`` clauses joined by ``;``, ``score`` ``class>=0.9``."""

        def flag(name: str) -> bool | None:
            value = params.get(name)
            if value in (None, ""):
                return None
            if value not in ("true", "false", "1", "0"):
                raise InputError(f"{name} must be true or false")
            return value in ("true", "1")

        predicates: tuple[tuple[str, str], ...] = ()
        if params.get("slice"):
            try:
                raw = json.loads(params["slice"])
                if not isinstance(raw, list) or not raw:
                    raise TypeError
                predicates = tuple((str(p["column"]), str(p["value"])) for p in raw)
            except (ValueError, TypeError, KeyError):
                raise InputError(
                    'slice: expected JSON like [{"column": "camera", "value": "3"}]'
                ) from None
        where = tuple(_clause(c) for c in (params.get("where") or "").split(";") if c.strip())
        if len(predicates) > MAX_CONDITIONS or len(where) > MAX_CONDITIONS:
            raise InputError(f"at most {MAX_CONDITIONS} conditions in a slice or a where")
        score = None
        if params.get("score"):
            name, op, value = _clause(params["score"])
            try:
                score = (name, op, float(value))
            except ValueError:
                raise InputError(f"score: {value!r} is not a number (score=CLASS>=0.9)") from None
            if not name or name in OPS:
                raise InputError("score: name the class, as in score=defect>=0.9")
        sort = params.get("sort") or "row"
        if sort not in ("row", "confidence", "-confidence", "doubt", "typical"):
            raise InputError("sort: row, confidence, -confidence, doubt or typical")
        group = params.get("group")
        if group not in (None, "") and (
            not str(group).lstrip("-").isdigit() or abs(int(str(group))) > 2**31
        ):
            raise InputError("group must be a whole number (an error group's)")
        change = params.get("change") or None
        if change is not None and change not in CHANGES:
            raise InputError(f"change: one of {', '.join(CHANGES)}")
        return cls(
            label=params.get("label") or None,
            predicted=params.get("predicted") or None,
            correct=flag("correct"),
            judged=flag("judged"),
            change=change,
            group=None if group in (None, "") else int(str(group)),
            doubtful=bool(flag("doubtful")),
            disputed=bool(flag("disputed")),
            slice=predicates,
            where=where,
            score=score,
            item=params.get("item") or None,
            against=params.get("against") or None,
            differs=bool(flag("differs")),
            sort=sort,  # type: ignore[arg-type]
        )


def _clause(text: str) -> tuple[str, str, str]:
    """``camera=3``, ``line_speed>=1800``, ``batch!=B7`` (the longest operator wins)."""
    for op in (">=", "<=", "!=", "=", ">", "<"):
        if op in text:
            column, value = text.split(op, 1)
            if column.strip():
                return column.strip(), op, value.strip()
    raise InputError(f"cannot read {text!r}: use COLUMN=VALUE, COLUMN>=VALUE, COLUMN!=VALUE, ...")


@dataclass(frozen=True)
class ItemCard:
    row: int
    item_id: str
    label: str | None
    predicted: str | None
    correct: bool | None
    confidence: float | None
    error: str | None
    baseline: str | None = None


@dataclass(frozen=True)
class ItemPage:
    total: int
    offset: int
    limit: int
    items: list[ItemCard]
    labels: list[str]
    kind: str  # image | tabular
    has_baseline: bool
    filters: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "labels": self.labels,
            "kind": self.kind,
            "has_baseline": self.has_baseline,
            "filters": self.filters,
            "items": [card.__dict__ for card in self.items],
        }


@dataclass(frozen=True)
class _Run:
    record: RunRecord
    folder: Path
    dataset: DatasetVersion
    labels: list[str]
    baseline_run: str | None
    ws: Workspace

    @property
    def manifest(self) -> Path:
        return Path(self.dataset.manifest_path)


def _finished(ws: Workspace, run_id: str) -> _Run:
    run = get_run(ws, run_id)
    if run.status != "finished":
        raise InputError(f"run {run.id[:12]} is {run.status}: its items are not ready")
    run_tables.verified(run)  # never browse predictions edited since the run
    labels, baseline = run_tables.labels_and_baseline(Path(run.run_dir) / "result.json")
    return _Run(
        run,
        Path(run.run_dir),
        ws.catalog.get_dataset_by_id(run.dataset_id),
        labels,
        baseline,
        ws,
    )


def _scores(table: pa.Table) -> tuple[list[str], np.ndarray | None]:
    names = [n for n in table.column_names if n.startswith("score_")]
    if not names:
        return [], None
    return names, np.column_stack(
        [table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names]
    )


def _ids_in(table: pa.Table, path: Path, column: str = "item_id", **match: Any) -> pa.Array:
    """Whether each predictions row's item id is among those of ``path`` (matching ``match``)."""
    if not path.exists():
        raise NotFoundError(f"this run has no {path.name}")
    other = run_tables.columns(path, [column, *match])
    keep = None
    for name, value in match.items():
        hit = pc.equal(other.column(name), value)
        keep = hit if keep is None else pc.and_(keep, hit)
    ids = other.column(column) if keep is None else other.filter(keep).column(column)
    return pc.is_in(table.column("item_id"), value_set=ids.combine_chunks())


def _where(run: _Run, n: int, clauses: tuple[tuple[str, str, str], ...]) -> np.ndarray:
    names = [c for c in manifest_schema(run.manifest).names if c not in cols.RESERVED]
    mask = np.ones(n, dtype=bool)
    for column, op, value in clauses:
        if column not in names:
            raise InputError(f"the dataset has no column {column!r}{did_you_mean(column, names)}")
        data = run_tables.columns(run.manifest, [column]).column(column).combine_chunks()
        numeric = pa.types.is_integer(data.type) or pa.types.is_floating(data.type)
        try:
            scalar = pa.scalar(float(value)) if numeric else pa.scalar(value)
            left = pc.cast(data, pa.float64()) if numeric else pc.cast(data, pa.string())
        except (ValueError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(
                f"{column}: {value!r} is not a number, and the column holds numbers"
            ) from None
        hit = OPS[op](left, scalar).fill_null(False).to_numpy(zero_copy_only=False)
        mask &= hit
    return mask


def _mask(run: _Run, table: pa.Table, f: ItemFilter) -> np.ndarray:
    n = table.num_rows
    mask = np.ones(n, dtype=bool)

    def both(arr: pa.Array | pa.ChunkedArray) -> None:
        nonlocal mask
        mask &= np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)

    for name, value in (("label", f.label), ("predicted", f.predicted)):
        if value is not None:
            if value not in run.labels:
                raise InputError(
                    f"{name}: no class {value!r}{did_you_mean(value, run.labels)} "
                    f"(classes: {', '.join(run.labels)})"
                )
            both(pc.equal(table.column(name), value))
    correct = table.column("correct")
    if f.correct is not None:
        both(pc.equal(correct, f.correct))
    if f.judged is not None:
        both(correct.is_valid() if f.judged else correct.is_null())
    if f.against is not None or f.differs:
        other = _other(run, f.against)
        if f.differs:
            both(pc.not_equal(table.column("predicted"), other.column("predicted")))
        if f.change is not None:
            mask &= _outcome(table.column("correct"), other.column("correct")) == f.change
    elif f.change is not None:
        both(_ids_in(table, run.folder / "comparison.parquet", outcome=f.change))
    if f.group is not None:
        both(_ids_in(table, run.folder / "error_groups.parquet", group=f.group))
    if f.doubtful:
        both(_ids_in(table, run.folder / "doubtful_labels.parquet"))
    if f.disputed:
        both(_ids_in(table, run.folder / "disputed_items.parquet"))
    if f.slice:
        mask &= slice_mask(run.manifest, f.slice)
    if f.where:
        mask &= _where(run, n, f.where)
    if f.score is not None:
        of, op, threshold = f.score
        if f"score_{of}" not in table.column_names:
            raise InputError(f"score: no scores of class {of!r} in this run")
        both(OPS[op](table.column(f"score_{of}"), pa.scalar(threshold)))
    if f.item is not None:
        both(pc.match_substring(table.column("item_id"), f.item))
    return mask


def _outcome(mine: pa.ChunkedArray, theirs: pa.ChunkedArray) -> np.ndarray:
    """Per item, as the comparison ledger names it: broken (the other right, this one wrong),
    fixed, both_right, both_wrong, or not_comparable (one of them could not judge it)."""

    def flags(values: Any) -> np.ndarray:
        return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)

    out = np.full(len(mine), "not_comparable", dtype=object)
    valid = flags(pc.and_(mine.is_valid(), theirs.is_valid()))
    right, other_right = flags(mine), flags(theirs)
    out[valid & right & other_right] = "both_right"
    out[valid & ~right & ~other_right] = "both_wrong"
    out[valid & ~right & other_right] = "broken"
    out[valid & right & ~other_right] = "fixed"
    return out


def _other(run: _Run, against: str | None) -> pa.Table:
    """The predicted class and correctness of the run compared with (default: the baseline)."""
    if against is None:
        if run.baseline_run is None:
            raise InputError("this run has no baseline: give against=RUN_ID")
        against = run.baseline_run
    other = get_run(run.ws, against)
    if other.status != "finished":
        raise InputError(f"run {other.id[:12]} is {other.status}, not finished")
    if other.dataset_id != run.record.dataset_id:
        raise InputError(
            f"run {other.id[:12]} is on another dataset version: items cannot be paired"
        )
    run_tables.verified(other)
    return run_tables.columns(Path(other.run_dir) / "predictions.parquet", ["predicted", "correct"])


def _order(run: _Run, table: pa.Table, rows: np.ndarray, f: ItemFilter) -> np.ndarray:
    if f.sort == "row" or rows.size == 0:
        return rows
    if f.sort in ("confidence", "-confidence"):
        _, scores = _scores(table)
        if scores is None:
            return rows
        top = np.nan_to_num(scores[rows].max(axis=1), nan=-np.inf)
        order = np.argsort(-top if f.sort == "confidence" else top, kind="stable")
        return rows[order]
    path, key, descending = {
        "doubt": (run.folder / "doubtful_labels.parquet", "label_quality", False),
        "typical": (run.folder / "error_groups.parquet", "distance_to_centre", False),
    }[f.sort]
    if not path.exists():
        return rows
    other = run_tables.columns(path, ["item_id", key])
    rank = dict(
        zip(other.column("item_id").to_pylist(), other.column(key).to_pylist(), strict=True)
    )
    ids = table.column("item_id").take(pa.array(rows)).to_pylist()
    keys = np.array([rank.get(i, math.inf) for i in ids], dtype=np.float64)
    return rows[np.argsort(-keys if descending else keys, kind="stable")]


_CARD_COLUMNS = ["item_id", "label", "predicted", "correct", "error"]


def item_page(
    ws: Workspace, run_id: str, f: ItemFilter, offset: int = 0, limit: int = 60
) -> ItemPage:
    """The items of a finished run that ``f`` selects, ``limit`` from ``offset`` on."""
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}")
    if not 0 <= offset <= 10**9:
        raise InputError("offset must be between 0 and 1,000,000,000")
    run = _finished(ws, run_id)
    path = run.folder / "predictions.parquet"
    schema = pq.read_schema(path)
    wanted = _CARD_COLUMNS + [n for n in schema.names if n.startswith("score_")]
    table = run_tables.columns(path, [c for c in wanted if c in schema.names])
    rows = np.flatnonzero(_mask(run, table, f))
    rows = _order(run, table, rows, f)
    page = rows[offset : offset + limit]
    picked = table.take(pa.array(page, pa.int64()))
    _, scores = _scores(picked)
    base = _baseline_answers(ws, run, page, f.against)
    cards = [
        ItemCard(
            row=int(r),
            item_id=str(p["item_id"]),
            label=p["label"],
            predicted=p["predicted"],
            correct=p["correct"],
            confidence=None
            if scores is None or not np.isfinite(scores[i]).any()
            else float(np.nanmax(scores[i])),
            error=p.get("error"),
            baseline=None if base is None else base[i],
        )
        for i, (r, p) in enumerate(zip(page.tolist(), picked.to_pylist(), strict=True))
    ]
    return ItemPage(
        total=int(rows.size),
        offset=offset,
        limit=limit,
        items=cards,
        labels=run.labels,
        kind=run.dataset.kind,
        has_baseline=run.baseline_run is not None or f.against is not None,
        filters={k: v for k, v in f.__dict__.items() if v not in (None, False, ())},
    )


def _baseline_answers(
    ws: Workspace, run: _Run, rows: np.ndarray, against: str | None = None
) -> list[str | None] | None:
    """The baseline run's (or ``against``'s) predicted class for these rows (same dataset
    version: same rows)."""
    other = against or run.baseline_run
    if other is None or rows.size == 0:
        return None
    try:
        base = get_run(ws, other)
    except NotFoundError:
        return None
    path = Path(base.run_dir) / "predictions.parquet"
    if not path.exists() or base.dataset_id != run.record.dataset_id:
        return None
    values = take_column(path, "predicted", rows)
    return [None if v is None else str(v) for v in values]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return f"({len(value):,} bytes)"
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value[:50]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:50]}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def item_detail(ws: Workspace, run_id: str, row: int) -> dict[str, Any]:
    """One item in full: the model's answer with every class score, the expert label(s), the
    dataset's columns (metadata, or a table's features), the baseline's answer, and what the
    explorations said of it (doubtful label, error group)."""
    run = _finished(ws, run_id)
    if not 0 <= row < run.dataset.n_items:
        raise NotFoundError(f"run {run.record.id[:12]} has no item at row {row}")
    path = run.folder / "predictions.parquet"
    names = [n for n in pq.read_schema(path).names if n != "mask"]
    (item,) = run_tables.row(path, row, names)
    schema = manifest_schema(run.manifest)
    columns = [c for c in schema.names if c not in cols.RESERVED or c == cols.PATH]
    (raw,) = run_tables.row(run.manifest, row, columns)
    values = {c: _jsonable(raw[c]) for c in columns}
    experts = {
        c[len("label_") :]: values.pop(c)
        for c in list(values)
        if c in cols.annotator_columns(columns)
    }
    out: dict[str, Any] = {
        "row": row,
        "item_id": item["item_id"],
        "label": item["label"],
        "predicted": item["predicted"],
        "correct": item["correct"],
        "error": item.get("error"),
        "scores": {n[len("score_") :]: _jsonable(item[n]) for n in names if n.startswith("score_")},
        "anomaly_score": _jsonable(item.get("anomaly_score")),
        "experts": experts,
        "path": values.pop(cols.PATH, None) if run.dataset.kind == "image" else None,
        "columns": values,
        "kind": run.dataset.kind,
        "baseline": None,
        "doubtful": None,
        "group": None,
    }
    out["path"] = None if out["path"] is None else Path(str(out["path"])).name
    if run.baseline_run is not None:
        try:
            base = ws.catalog.get_run(run.baseline_run)
            base_path = Path(base.run_dir) / "predictions.parquet"
            if base.dataset_id == run.record.dataset_id and base_path.exists():
                base_names = [n for n in pq.read_schema(base_path).names if n != "mask"]
                (b,) = run_tables.row(base_path, row, base_names)
                out["baseline"] = {
                    "run_id": base.id,
                    "predicted": b["predicted"],
                    "correct": b["correct"],
                    "scores": {
                        n[len("score_") :]: _jsonable(b[n])
                        for n in base_names
                        if n.startswith("score_")
                    },
                }
        except NotFoundError:
            pass
    for key, name in (("doubtful", "doubtful_labels.parquet"), ("group", "error_groups.parquet")):
        file = run.folder / name
        if file.exists():
            t = run_tables.columns(file, [n for n in pq.read_schema(file).names if n != "ref"])
            hit = t.filter(pc.equal(t.column("item_id"), item["item_id"]))
            if hit.num_rows:
                out[key] = {
                    k: _jsonable(v) for k, v in hit.slice(0, 1).to_pylist()[0].items() if k != "ref"
                }
    return out


# -- pictures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    data: bytes
    media_type: str


def _item_path(dataset: DatasetVersion, row: int) -> str | None:
    if dataset.kind != "image":
        raise NotFoundError(f"dataset {dataset.ref} has no images")
    if not 0 <= row < dataset.n_items:
        raise NotFoundError(f"dataset {dataset.ref} has no row {row}")
    (path,) = take_column(Path(dataset.manifest_path), cols.PATH, np.array([row]))
    return path if isinstance(path, str) else None


def dataset_picture(dataset: DatasetVersion, row: int, size: int) -> Picture:
    """A thumbnail of one item's image (at most ``size`` pixels a side; the path comes from
    the manifest, never from the request)."""
    data = thumbnail_jpeg(_item_path(dataset, row), max(32, min(size, 2048)))
    if data is None:
        raise NotFoundError("the image cannot be read")
    return Picture(data, "image/jpeg")


def run_picture(ws: Workspace, run_id: str, row: int, size: int) -> Picture:
    """An item's image as the run saw it: for detection, segmentation and anomaly runs, with
    the experts' boxes or mask (green) and the model's (magenta) drawn over it."""
    run = _finished(ws, run_id)
    if 0 <= row < run.dataset.n_items:
        result = read_result_json(run.folder / "result.json")
        overlay = row_overlay(result, run.folder, run.manifest, row)
        if overlay is not None:
            data = overlay_png(_item_path(run.dataset, row), overlay)
            if data is None:
                raise NotFoundError("the image cannot be read")
            return Picture(data, "image/png")
    return dataset_picture(run.dataset, row, size)


def dataset_samples(dataset: DatasetVersion, per_class: int = 4) -> dict[str, list[int]]:
    """A few rows of each class (the first ones), for the dataset's page."""
    labels = pq.read_table(dataset.manifest_path, columns=[cols.LABEL]).column(cols.LABEL)
    samples: dict[str, list[int]] = {}
    for label in list(dataset.label_counts)[:50]:
        rows = np.flatnonzero(
            pc.equal(labels, label).fill_null(False).to_numpy(zero_copy_only=False)
        )
        samples[label] = rows[: max(0, min(per_class, 20))].tolist()
    return samples
