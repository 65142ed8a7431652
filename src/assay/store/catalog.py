"""SqlCatalog: datasets, models and runs in SQL (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import functools
import re
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from assay.core.errors import InputError, NotFoundError, did_you_mean, one_line
from assay.core.records import RUN_NEXT, DatasetVersion, ModelVersion, RunRecord, VersionRef
from assay.store.schema import Base, DatasetRow, ModelRow, RunRow

MIGRATIONS = Path(__file__).parent / "migrations"
R = TypeVar("R")
Row = TypeVar("Row", DatasetRow, ModelRow)


def _record(cls: type[R], row: Base) -> R:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{n: getattr(row, n) for n in names if hasattr(row, n)})


def now() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix) :] in ("", ":memory:"):
        return None
    return Path(url[len(prefix) :])


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` means the psycopg 3 driver (SQLAlchemy would pick psycopg2 otherwise)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


_REVISION = re.compile(r'^(down_revision|revision) = (?:"([^"]*)"|None)$', re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest migration: the one revision no other migration names as its ``down_revision``
    (read from the files, without importing Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (revisions if key == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


class SqlCatalog:
    """The catalog of dataset versions, model versions and runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(sqlalchemy_url(url), future=True, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> SqlCatalog:
        """Connect and bring the schema up to date (Alembic ``upgrade head``).

        A SQLite file that exists but is empty or not a database is refused: opening it would
        silently start an empty catalog over one that held every dataset, model and run.
        """
        path = sqlite_path(url)
        if path is not None and path.exists() and path.stat().st_size == 0:
            raise InputError(
                f"the catalog {path} is empty (0 bytes): it was truncated. Restore it with "
                "`assay store restore BACKUP`, or move it aside to start an empty store"
            )
        catalog = cls(url)
        try:
            catalog.migrate()
        except DatabaseError as exc:
            catalog.close()
            raise InputError(
                f"the catalog {path or url} cannot be read ({one_line(str(exc.orig), 120)}): "
                "restore it with `assay store restore BACKUP`"
            ) from None
        return catalog

    def migrate(self) -> None:
        """Upgrade the schema to the newest migration. Alembic (~0.2 s to import) is loaded only
        when the stored revision is not already the newest, which is every open but the first."""
        with self.engine.begin() as connection:
            if inspect(connection).has_table("alembic_version"):
                stored = connection.execute(text("SELECT version_num FROM alembic_version"))
                if [row[0] for row in stored] == [head_revision()]:
                    return
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -- datasets -------------------------------------------------------------------------------

    def _resolve(self, s: Session, table: type[Row], ref: VersionRef, what: str) -> Row:
        q = select(table).where(table.name == ref.name)
        if ref.number is not None:
            q = q.where(table.number == ref.number)
        elif ref.digest_prefix is not None:
            q = q.where(table.version.startswith(ref.digest_prefix, autoescape=True))
        rows = list(s.scalars(q.order_by(table.number.desc())))
        if not rows:
            known = set(s.scalars(select(table.name).distinct()))
            if ref.name in known:  # the name exists; this version does not
                numbers = sorted(s.scalars(select(table.number).where(table.name == ref.name)))
                hint = f" (versions: {ref.name}@{numbers[0]} to @{numbers[-1]})"
            else:
                hint = did_you_mean(ref.name, known)
            raise NotFoundError(f"{what} {ref} not found{hint}")
        if ref.digest_prefix is not None and len(rows) > 1:
            raise InputError(f"{what} {ref} is ambiguous; give more digits or the version number")
        return rows[0]

    def find_dataset(self, name: str, version: str) -> DatasetVersion | None:
        with self._session() as s:
            row = s.scalars(
                select(DatasetRow).where(DatasetRow.name == name, DatasetRow.version == version)
            ).first()
            return None if row is None else _record(DatasetVersion, row)

    def add_dataset(self, **values: Any) -> DatasetVersion:
        """Store a new dataset version; its number is one past the name's highest."""
        with self._session.begin() as s:
            number = (
                s.scalar(
                    select(func.max(DatasetRow.number)).where(DatasetRow.name == values["name"])
                )
                or 0
            ) + 1
            row = DatasetRow(number=number, created_at=now(), **values)
            s.add(row)
            s.flush()
            return _record(DatasetVersion, row)

    def record_manifest_digest(self, dataset_id: int, digest: str) -> None:
        """Keep the digest of a manifest registered before digests were kept (once only)."""
        with self._session.begin() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is not None and row.manifest_sha256 is None:
                row.manifest_sha256 = digest

    def get_dataset(self, ref: VersionRef) -> DatasetVersion:
        with self._session() as s:
            return _record(DatasetVersion, self._resolve(s, DatasetRow, ref, "dataset"))

    def get_dataset_by_id(self, dataset_id: int) -> DatasetVersion:
        with self._session() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFoundError(f"dataset id {dataset_id} not found")
            return _record(DatasetVersion, row)

    def list_datasets(self) -> list[DatasetVersion]:
        with self._session() as s:
            rows = s.scalars(select(DatasetRow).order_by(DatasetRow.name, DatasetRow.number))
            return [_record(DatasetVersion, r) for r in rows]

    # -- models ---------------------------------------------------------------------------------

    def find_model(self, name: str, version: str) -> ModelVersion | None:
        with self._session() as s:
            row = s.scalars(
                select(ModelRow).where(ModelRow.name == name, ModelRow.version == version)
            ).first()
            return None if row is None else _record(ModelVersion, row)

    def add_model(self, **values: Any) -> ModelVersion:
        with self._session.begin() as s:
            number = (
                s.scalar(select(func.max(ModelRow.number)).where(ModelRow.name == values["name"]))
                or 0
            ) + 1
            row = ModelRow(number=number, created_at=now(), **values)
            s.add(row)
            s.flush()
            return _record(ModelVersion, row)

    def get_model(self, ref: VersionRef) -> ModelVersion:
        with self._session() as s:
            return _record(ModelVersion, self._resolve(s, ModelRow, ref, "model"))

    def get_model_by_id(self, model_id: int) -> ModelVersion:
        with self._session() as s:
            row = s.get(ModelRow, model_id)
            if row is None:
                raise NotFoundError(f"model id {model_id} not found")
            return _record(ModelVersion, row)

    def list_models(self) -> list[ModelVersion]:
        with self._session() as s:
            rows = s.scalars(select(ModelRow).order_by(ModelRow.name, ModelRow.number))
            return [_record(ModelVersion, r) for r in rows]

    # -- runs -----------------------------------------------------------------------------------

    def create_run(self, **values: Any) -> RunRecord:
        """A new running run; ``holder`` names its process (see ``assay.store.leases``)."""
        with self._session.begin() as s:
            started = now()
            row = RunRow(status="running", started_at=started, heartbeat_at=started, **values)
            s.add(row)
            s.flush()
            return _record(RunRecord, row)

    def finish_run(
        self,
        run_id: str,
        status: str,
        n_items: int | None = None,
        n_failed: int | None = None,
        error: str | None = None,
        artifact_sha256: dict[str, str] | None = None,
    ) -> RunRecord:
        """Record a run's end. A finished run is immutable: finishing it twice is an error."""
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"run {run_id} not found")
            if status not in RUN_NEXT.get(row.status, ()):
                raise InputError(f"run {run_id} already ended ({row.status})")
            row.status, row.finished_at = status, now()
            row.n_items, row.n_failed, row.error = n_items, n_failed, error
            row.artifact_sha256 = artifact_sha256
            s.flush()
            return _record(RunRecord, row)

    def get_run(self, run_id: str) -> RunRecord:
        with self._session() as s:
            rows = list(
                s.scalars(select(RunRow).where(RunRow.id.startswith(run_id, autoescape=True)))
            )
            if not rows:
                raise NotFoundError(f"run {run_id} not found")
            if len(rows) > 1:
                raise InputError(f"run id {run_id} is ambiguous; give more characters")
            return _record(RunRecord, rows[0])

    def find_finished_run(self, model_id: int, dataset_id: int) -> RunRecord | None:
        """The latest finished run of a model version on a dataset version, if any."""
        with self._session() as s:
            row = s.scalars(
                select(RunRow)
                .where(
                    RunRow.model_id == model_id,
                    RunRow.dataset_id == dataset_id,
                    RunRow.status == "finished",
                )
                .order_by(RunRow.finished_at.desc())
            ).first()
            return None if row is None else _record(RunRecord, row)

    def list_runs(self, limit: int | None = 100) -> list[RunRecord]:
        """The newest runs first (``limit`` None: every run)."""
        with self._session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit))
            return [_record(RunRecord, r) for r in rows]
