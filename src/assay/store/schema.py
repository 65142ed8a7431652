"""Catalog tables. Changes here need an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps that come back timezone-aware (UTC) from every backend.

    PostgreSQL keeps the zone; SQLite stores text without it, so a record read back would otherwise
    differ from the one just written, and comparing it with ``now()`` would raise.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    """One dataset version: immutable once written."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_datasets_name_version"),
        UniqueConstraint("name", "number", name="uq_datasets_name_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_items: Mapped[int] = mapped_column(Integer)
    label_counts: Mapped[dict[str, int]] = mapped_column(JSON)
    columns: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    manifest_path: Mapped[str] = mapped_column(Text)
    # SHA-256 of the stored manifest file, checked whenever a run reads it (None: registered
    # before digests were kept; filled on first use).
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # validation (models are judged on it) or training (for leakage audits only).
    role: Mapped[str] = mapped_column(String(20), default="validation", server_default="validation")


class ModelRow(Base):
    """One model version: the file (content-addressed in the store) and its spec."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_models_name_version"),
        UniqueConstraint("name", "number", name="uq_models_name_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    runtime: Mapped[str] = mapped_column(String(20))
    file_path: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RunRow(Base):
    """One validation run. Finished runs are never modified."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    n_items: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_failed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_dir: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # SHA-256 of every file a finished run wrote, checked whenever one is read back, shown or
    # served; while it runs, of what a resume reads (invocation.json, its last checkpoint).
    artifact_sha256: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # The lease of a running run: "host:pid" of the process running it, and its last heartbeat.
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Where the run was started: cli, python or web (a web run exists from the moment it is
    # queued, status "queued"; its job only says how far the worker got).
    origin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    baseline_model_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # What the list of runs shows and sorts by, written when the run finishes (or, for runs
    # finished before these columns, from their result.json on first listing).
    verdict: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    headline_metric: Mapped[str | None] = mapped_column(String(60), nullable=True)
    headline_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    headline_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    headline_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The one part of a finished run that may change: people's notes on it (and its tags).
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class RunTagRow(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class DecisionRow(Base):
    """One decision taken on a dataset version: a validation's verdict or a comparison's."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    verdict: Mapped[str] = mapped_column(String(20))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelAliasRow(Base):
    """``name@alias`` points at one version of the model ``name`` (moved by ``assay model
    alias``); the catalog resolves it before version numbers and digest prefixes."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LabelReviewRow(Base):
    """One reviewer's decision on one item's expert label: keep it, relabel it, or unsure.
    A reviewer's later decision on the same item replaces the earlier one."""

    __tablename__ = "label_reviews"
    __table_args__ = (
        UniqueConstraint("dataset_id", "item_id", "reviewer", name="uq_label_reviews_item"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    item_id: Mapped[str] = mapped_column(String(1000))
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(20))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TokenRow(Base):
    """An API token: only its SHA-256 is stored; revoked tokens stay for the record."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SessionRow(Base):
    """A browser session opened with a token; the cookie holds the secret, the row its hash."""

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JobRow(Base):
    """A validation requested through the web: queued, then run by a worker."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    verdict: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The lease of a running job (its worker, as for runs) and how often it was started.
    holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
