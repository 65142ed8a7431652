"""Experts' reviews of items' labels: one decision per reviewer and item, the latest kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from assay.store.catalog import SqlCatalog, now
from assay.store.schema import LabelReviewRow


@dataclass(frozen=True)
class Review:
    dataset_id: int
    item_id: str
    reviewer: str
    decision: str  # keep | relabel | unsure
    label: str | None  # the new label, for relabel
    note: str | None
    run_id: str | None
    reviewed_at: datetime


def _review(row: LabelReviewRow) -> Review:
    return Review(
        row.dataset_id,
        row.item_id,
        row.reviewer,
        row.decision,
        row.label,
        row.note,
        row.run_id,
        row.reviewed_at,
    )


class ReviewStore:
    def __init__(self, catalog: SqlCatalog) -> None:
        self._session = catalog._session

    def record(
        self,
        dataset_id: int,
        item_id: str,
        reviewer: str,
        decision: str,
        label: str | None,
        note: str | None,
        run_id: str | None,
    ) -> Review:
        """Record a reviewer's decision, replacing their earlier one on the same item."""
        with self._session.begin() as s:
            row = s.scalars(
                select(LabelReviewRow).where(
                    LabelReviewRow.dataset_id == dataset_id,
                    LabelReviewRow.item_id == item_id,
                    LabelReviewRow.reviewer == reviewer,
                )
            ).first()
            if row is None:
                row = LabelReviewRow(dataset_id=dataset_id, item_id=item_id, reviewer=reviewer)
                s.add(row)
            row.decision, row.label, row.note, row.run_id = decision, label, note, run_id
            row.reviewed_at = now()
            s.flush()
            return _review(row)

    def of_dataset(self, dataset_id: int, item_ids: list[str] | None = None) -> list[Review]:
        """Every decision on the dataset version's items (on these items only, if given)."""
        q = select(LabelReviewRow).where(LabelReviewRow.dataset_id == dataset_id)
        if item_ids is not None:
            q = q.where(LabelReviewRow.item_id.in_(item_ids))
        with self._session() as s:
            rows = s.scalars(q.order_by(LabelReviewRow.item_id, LabelReviewRow.reviewer))
            return [_review(r) for r in rows]
