"""One list of runs, wherever they started: each run records where it came from and, once
finished, the few numbers the list shows and sorts by (verdict, headline metric and interval,
duration), so that listing never opens a result.json. Runs take tags and a note. Models take
aliases (``scanner@production``). Experts' reviews of doubtful labels are kept per reviewer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("origin", sa.String(20), nullable=True))
        batch.add_column(sa.Column("verdict", sa.String(20), nullable=True))
        batch.add_column(sa.Column("headline_metric", sa.String(60), nullable=True))
        batch.add_column(sa.Column("headline_value", sa.Float(), nullable=True))
        batch.add_column(sa.Column("headline_low", sa.Float(), nullable=True))
        batch.add_column(sa.Column("headline_high", sa.Float(), nullable=True))
        batch.add_column(sa.Column("duration_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("baseline_model_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch.create_index("ix_runs_started_at", ["started_at"])
        batch.create_index("ix_runs_verdict", ["verdict"])
    op.create_table(
        "run_tags",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_run_tags_tag", "run_tags", ["tag"])
    with op.batch_alter_table("jobs") as batch:
        batch.create_index("ix_jobs_run_id", ["run_id"])
    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(100), primary_key=True),
        sa.Column("model_id", sa.Integer(), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "label_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("item_id", sa.String(1000), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "item_id", "reviewer", name="uq_label_reviews_item"),
    )
    op.create_index("ix_label_reviews_dataset_id", "label_reviews", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_label_reviews_dataset_id", "label_reviews")
    op.drop_table("label_reviews")
    op.drop_table("model_aliases")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_run_id")
    op.drop_index("ix_run_tags_tag", "run_tags")
    op.drop_table("run_tags")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_verdict")
        batch.drop_index("ix_runs_started_at")
        for column in (
            "note",
            "baseline_model_id",
            "duration_s",
            "headline_high",
            "headline_low",
            "headline_value",
            "headline_metric",
            "verdict",
            "origin",
        ):
            batch.drop_column(column)
