"""Stored files are checked at use: the SHA-256 of each dataset's stored manifest and of each
finished run's predictions and result.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: versions registered before this revision get their digest on first use.
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("manifest_sha256", sa.String(64), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("artifact_sha256", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("artifact_sha256")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("manifest_sha256")
