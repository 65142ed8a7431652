"""Closing the loop on labels: experts review a run's doubtful and disputed items (keep the
label, relabel, or unsure), several reviewers each with their own decision; the decisions
export as CSV, and their consensus becomes a new dataset version with corrected labels.

The consensus of an item: among its reviewers' decisions other than "unsure", a strict
majority for one label; "keep" counts for the current label. Only items whose majority label
differs from the current one are corrections. Ties and unsure-only items stay as they are.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from assay.core.errors import InputError, NotFoundError, check_text
from assay.core.records import RunRecord
from assay.reports.json import read_result_json
from assay.services import run_tables
from assay.services.datasets import Registered, correct_dataset
from assay.services.runs import get_run
from assay.services.workspace import Workspace
from assay.store.reviews import Review

DECISIONS = ("keep", "relabel", "unsure")
# What a spreadsheet may read as the start of a formula (OWASP's list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MAX_NOTE = 2000


@dataclass(frozen=True)
class _Reviewed:
    run: RunRecord
    labels: list[str]
    current: dict[str, str | None]  # item id -> the expert (reference) label in this run


def _run(ws: Workspace, run_id: str) -> _Reviewed:
    run = get_run(ws, run_id)
    if run.status != "finished":
        raise InputError(f"run {run.id[:12]} is {run.status}: its items are not ready")
    run_tables.verified(run)  # never review labels against files edited since the run
    folder = Path(run.run_dir)
    labels = list(read_result_json(folder / "result.json").labels)
    table = pq.read_table(folder / "predictions.parquet", columns=["item_id", "label"])
    current = dict(
        zip(table.column("item_id").to_pylist(), table.column("label").to_pylist(), strict=True)
    )
    return _Reviewed(run, labels, current)


def record_review(
    ws: Workspace,
    run_id: str,
    item_id: str,
    reviewer: str,
    decision: str,
    label: str | None = None,
    note: str | None = None,
) -> Review:
    """Record ``reviewer``'s decision on an item of the run's dataset (replacing theirs)."""
    if decision not in DECISIONS:
        raise InputError(f"decision must be one of {', '.join(DECISIONS)}")
    if not isinstance(item_id, str):  # null or a list was "no item None" (404), not bad input
        raise InputError(f"item_id must be text (an item's id), got {type(item_id).__name__}")
    r = _run(ws, run_id)
    if item_id not in r.current:
        raise NotFoundError(f"run {r.run.id[:12]} has no item {item_id!r}")
    if decision == "relabel":
        if label not in r.labels:
            raise InputError(f"relabel needs a label among {', '.join(r.labels)}")
        if label == r.current[item_id]:
            raise InputError(f"{item_id!r} is already labelled {label!r}: that is keep")
    elif label is not None:
        raise InputError(f"a {decision} decision takes no label")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise InputError(f"note must be text of at most {MAX_NOTE} characters")
    if note is not None:
        check_text(note, "note")
    return ws.reviews.record(
        r.run.dataset_id, item_id, reviewer, decision, label, note or None, r.run.id
    )


def review_dict(review: Review) -> dict[str, Any]:
    return {
        "item_id": review.item_id,
        "reviewer": review.reviewer,
        "decision": review.decision,
        "label": review.label,
        "note": review.note,
        "run_id": review.run_id,
        "reviewed_at": review.reviewed_at.isoformat(),
    }


def consensus(current: str | None, reviews: list[Review]) -> str | None:
    """The label a strict majority of decided reviewers gave (keep: ``current``), or None."""
    votes = Counter(
        current if r.decision == "keep" else r.label for r in reviews if r.decision != "unsure"
    )
    if not votes:
        return None
    top, n = votes.most_common(1)[0]
    return top if n * 2 > sum(votes.values()) else None


def reviews_of(ws: Workspace, run_id: str, item_ids: list[str] | None = None) -> dict[str, Any]:
    """The decisions on the run's dataset (on these items only, if given), by item, with each
    item's consensus, and how far the review has got."""
    r = _run(ws, run_id)
    reviews = ws.reviews.of_dataset(r.run.dataset_id, item_ids)
    by_item: dict[str, list[Review]] = {}
    for review in reviews:
        by_item.setdefault(review.item_id, []).append(review)
    items = {
        item: {
            "current": r.current.get(item),
            "consensus": consensus(r.current.get(item), rs),
            "reviews": [review_dict(x) for x in rs],
        }
        for item, rs in by_item.items()
    }
    corrections = [i for i, v in items.items() if v["consensus"] not in (None, v["current"])]
    return {
        "labels": r.labels,
        "items": items,
        "n_reviewed": len(items),
        "n_corrections": len(corrections),
        "reviewers": sorted({x.reviewer for x in reviews}),
    }


def _csv(header: list[str], rows: list[list[Any]], inert: bool = False) -> str:
    """CSV text; ``inert``: free text starting with = + - @ gets a leading quote, so that a
    spreadsheet shows it instead of running it as a formula."""
    out = io.StringIO()
    # CRLF rows (RFC 4180): a value holding \r or \n is then quoted, never a row of its own.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            ["'" + c if inert and isinstance(c, str) and c[:1] in FORMULA_START else c for c in row]
        )
    return out.getvalue()


def reviews_csv(ws: Workspace, run_id: str) -> str:
    """Every decision on the run's dataset version, one row per reviewer and item."""
    r = _run(ws, run_id)
    rows = [
        [
            x.item_id,
            r.current.get(x.item_id),
            x.reviewer,
            x.decision,
            x.label or "",
            x.note or "",
            x.reviewed_at.isoformat(),
            x.run_id or "",
        ]
        for x in ws.reviews.of_dataset(r.run.dataset_id)
    ]
    header = [
        "item_id",
        "label",
        "reviewer",
        "decision",
        "new_label",
        "note",
        "reviewed_at",
        "run_id",
    ]
    return _csv(header, rows, inert=True)


def corrections_csv(ws: Workspace, run_id: str) -> str:
    """The consensus corrections: what ``assay dataset add ... --corrections FILE`` reads."""
    r = _run(ws, run_id)
    by_item: dict[str, list[Review]] = {}
    for x in ws.reviews.of_dataset(r.run.dataset_id):
        by_item.setdefault(x.item_id, []).append(x)
    rows = []
    for item, rs in by_item.items():
        current = r.current.get(item)
        agreed = consensus(current, rs)
        if agreed is not None and agreed != current:
            decided = [x for x in rs if x.decision != "unsure"]
            agree = sum(1 for x in decided if x.label == agreed)
            rows.append(
                [
                    item,
                    agreed,
                    current or "",
                    agree,
                    len(decided),
                    "; ".join(f"{x.reviewer}: {x.label or x.decision}" for x in rs),
                ]
            )
    header = ["item_id", "label", "previous_label", "n_agree", "n_decided", "decisions"]
    return _csv(header, rows)


def register_corrections(ws: Workspace, run_id: str) -> Registered:
    """A new version of the run's dataset carrying the review's consensus corrections."""
    r = _run(ws, run_id)
    text = corrections_csv(ws, run_id)
    if text.count("\n") <= 1:
        raise InputError("no corrections yet: no item has a reviewers' majority for a new label")
    dataset = ws.catalog.get_dataset_by_id(r.run.dataset_id)
    tmp = ws.files.temp_dir()
    try:
        path = tmp / "corrections.csv"
        path.write_text(text, encoding="utf-8")
        return correct_dataset(ws, dataset, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
