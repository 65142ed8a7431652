"""SqlCatalog: datasets, models and runs in SQL (SQLite by default, any SQLAlchemy URL)."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
from collections.abc import Iterator
from dataclasses import fields
from dataclasses import replace as dataclass_replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, delete, event, false, func, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from assay.core.errors import InputError, NotFoundError, did_you_mean, one_line
from assay.core.records import (
    RUN_NEXT,
    SORTABLE,
    SUMMARY_FIELDS,
    DatasetVersion,
    Decision,
    ModelAlias,
    ModelVersion,
    RunQuery,
    RunRecord,
    VersionRef,
)
from assay.store.schema import (
    Base,
    DatasetRow,
    DecisionRow,
    ModelAliasRow,
    ModelRow,
    RunRow,
    RunTagRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"
R = TypeVar("R")
Row = TypeVar("Row", DatasetRow, ModelRow)


def _record(cls: type[R], row: Base) -> R:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{n: getattr(row, n) for n in names if hasattr(row, n)})


# Columns naming a file or folder inside the store. They are kept relative to the store's root
# (``datasets/<digest>/manifest.parquet``), so that a store copied or restored elsewhere reads
# its own files: kept absolute, a restored copy read the original's, and `store verify`
# called the original's files the copy's. Paths written before are made relative on open.
STORE_PATHS = ("manifest_path", "file_path", "run_dir")
NUMBERING_TRIES = 20


class AlreadyStoredError(Exception):
    """Another process stored this version (same name, same content) first."""

    def __init__(self, record: Any) -> None:
        super().__init__(f"{record.ref} is stored already")
        self.record = record


_TOP = ("datasets", "models", "runs")


def _inside(home: Path, path: Path) -> str | None:
    """``path`` relative to ``home`` (POSIX), when it lies inside it."""
    if path.is_absolute() and path.is_relative_to(home):
        return path.relative_to(home).as_posix()
    return None


def _moved(home: Path, path: Path) -> str | None:
    """The part of ``path`` from its store's ``datasets/``, ``models/`` or ``runs/`` on, when
    that file or folder exists in ``home``: a path of the store this one was copied from."""
    parts = path.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] in _TOP:
            rest = Path(*parts[i:])
            return rest.as_posix() if (home / rest).exists() else None
    return None


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
def known_revisions() -> tuple[set[str], set[str]]:
    """Every migration's revision, and those some migration names as its ``down_revision``
    (read from the files, without importing Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for key, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (revisions if key == "revision" else parents).add(value)
    return revisions, parents


def head_revision() -> str:
    """The newest migration: the one revision no other migration names as its ``down_revision``."""
    revisions, parents = known_revisions()
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


class SqlCatalog:
    """The catalog of dataset versions, model versions and runs."""

    def __init__(self, url: str, home: Path | None = None) -> None:
        self.url = url
        self.home = home
        self.engine: Engine = create_engine(sqlalchemy_url(url), future=True, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, home: Path | None = None) -> SqlCatalog:
        """Connect and bring the schema up to date (Alembic ``upgrade head``).

        A SQLite file that exists but is empty or not a database is refused: opening it would
        silently start an empty catalog over one that held every dataset, model and run.
        """
        path = sqlite_path(url)
        catalog = cls(url, home)
        try:
            # One process at a time: two commands opening a new store at once both created
            # its tables (one was told the catalog 'cannot be read'), or one saw the other's
            # file before its first write and called it truncated (reviews).
            with catalog._one_at_a_time():
                if path is not None and path.exists() and path.stat().st_size == 0:
                    raise InputError(
                        f"the catalog {path} is empty (0 bytes): it was truncated. Restore it "
                        "with `assay store restore BACKUP`, or move it aside to start an empty "
                        "store"
                    )
                catalog.migrate()
            catalog.relocate()
        except InputError:
            catalog.close()
            raise
        except DatabaseError as exc:
            catalog.close()
            if path is not None and not all(
                os.access(p, os.W_OK) for p in (path.parent, path) if p.exists()
            ):
                # A read-only store was called damaged, with advice to restore a backup over a
                # healthy catalog (a review).
                raise InputError(
                    f"the store {path.parent} is not writable: Assay records every command's "
                    "runs and leases in its catalog; give this user write access, or copy the "
                    "store elsewhere"
                ) from None
            raise InputError(
                f"the catalog {path or url} cannot be read ({one_line(str(exc.orig), 120)}): "
                "restore it with `assay store restore BACKUP`"
            ) from None
        return catalog

    def migrate(self) -> None:
        """Upgrade the schema to the newest migration. Alembic (~0.2 s to import) is loaded only
        when the stored revision is not already the newest, which is every open but the first.
        Called by ``open``, which holds the lock that makes it one process at a time."""
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(7171717)"))
            tables = inspect(connection).get_table_names()
            if "alembic_version" in tables:
                stored = [
                    row[0]
                    for row in connection.execute(text("SELECT version_num FROM alembic_version"))
                ]
                if stored == [head_revision()]:
                    return
                unknown = [r for r in stored if r not in known_revisions()[0]]
                if unknown:
                    # Another program's schema under Alembic, or a newer Assay's: upgrading
                    # from a revision it does not know would crash, or write over it.
                    raise InputError(
                        f"the catalog {self.where} is at schema revision {unknown[0]!r}, which "
                        "this Assay does not know: a newer Assay wrote it (upgrade), or it is "
                        "another program's database"
                    )
                if not stored and len(tables) > 1 and sqlite_path(self.url) is not None:
                    others = sorted(t for t in tables if t != "alembic_version")
                    raise InputError(
                        f"the catalog {self.where} holds tables of another program "
                        f"({', '.join(others[:3])}) and no Assay schema: restore Assay's with "
                        "`assay store restore BACKUP`, or point the store elsewhere"
                    )
            elif tables and sqlite_path(self.url) is not None:
                # Every Assay catalog has had its revision table from the first: a catalog file
                # with tables but without it is another program's database, and writing Assay's
                # schema into it would orphan every dataset, model and run the store holds (a
                # review). (A server database may be shared with other programs' tables.)
                raise InputError(
                    f"the catalog {self.where} holds tables of another program "
                    f"({', '.join(sorted(tables)[:3])}) and no Assay schema: restore Assay's "
                    "with `assay store restore BACKUP`, or point the store elsewhere"
                )
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextlib.contextmanager
    def _one_at_a_time(self) -> Iterator[None]:
        """An exclusive lock on a file beside a SQLite catalog while its schema is checked
        (a server database takes an advisory lock in the transaction instead); none where the
        file cannot be made (a read-only store: nothing will be written there)."""
        path = sqlite_path(self.url)
        if path is None:
            yield
            return
        try:
            fd = os.open(path.parent / ".catalog.lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # (closing releases the lock)

    @property
    def where(self) -> str:
        """The catalog's file, or its database URL without the password, for messages."""
        path = sqlite_path(self.url)
        return str(path) if path is not None else self.engine.url.render_as_string(True)

    def close(self) -> None:
        self.engine.dispose()

    def record(self, cls: type[R], row: Base) -> R:
        """The record of ``row``, its store paths resolved against the store's root."""
        out = _record(cls, row)
        if self.home is None:
            return out
        found = {
            name: str(self.home / value)
            for name in STORE_PATHS
            if isinstance(value := getattr(out, name, None), str) and not Path(value).is_absolute()
        }
        return dataclass_replace(out, **found) if found else out  # type: ignore[type-var]

    def stored(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` to write, their paths inside the store made relative to its root."""
        if self.home is None:
            return values
        return values | {
            name: _inside(self.home, Path(values[name])) or values[name]
            for name in STORE_PATHS
            if isinstance(values.get(name), str)
        }

    def relocate(self) -> list[str]:
        """Make the store paths written before (absolute) relative: those inside this store, and
        those of the store this one was copied from (``<old root>/runs/<id>`` where
        ``<root>/runs/<id>`` exists here). What is left points outside the store; returned."""
        if self.home is None:
            return []
        outside: list[str] = []
        with self._session.begin() as s:
            for table, column in ((DatasetRow, "manifest_path"), (ModelRow, "file_path"),
                                  (RunRow, "run_dir")):  # fmt: skip
                col = getattr(table, column)
                for row in s.scalars(select(table).where(col.like("/%"))):
                    value = getattr(row, column)
                    local = _inside(self.home, Path(value)) or _moved(self.home, Path(value))
                    if local is None:
                        outside.append(value)
                    else:
                        setattr(row, column, local)
        return outside

    # -- datasets -------------------------------------------------------------------------------

    def _resolve(self, s: Session, table: type[Row], ref: VersionRef, what: str) -> Row:
        if ref.alias is not None and table is ModelRow:
            alias = s.get(ModelAliasRow, (ref.name, ref.alias))
            if alias is not None:
                row = s.get(ModelRow, alias.model_id)
                assert row is not None  # a foreign key
                return row  # type: ignore[return-value]
        q = select(table).where(table.name == ref.name)
        if ref.number is not None:
            q = q.where(table.number == ref.number)
        elif ref.digest_prefix is not None:
            q = q.where(table.version.startswith(ref.digest_prefix, autoescape=True))
        elif ref.alias is not None:  # an alias that names nothing
            q = q.where(false())
        rows = list(s.scalars(q.order_by(table.number.desc())))
        if not rows:
            known = set(s.scalars(select(table.name).distinct()))
            if ref.name in known:  # the name exists; this version does not
                numbers = sorted(s.scalars(select(table.number).where(table.name == ref.name)))
                hint = f" (versions: {ref.name}@{numbers[0]} to @{numbers[-1]}"
                if table is ModelRow:
                    aliases = sorted(
                        s.scalars(select(ModelAliasRow.alias).where(ModelAliasRow.name == ref.name))
                    )
                    hint += f"; aliases: {', '.join(aliases)}" if aliases else "; no aliases"
                hint += ")"
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
            return None if row is None else self.record(DatasetVersion, row)

    def add_dataset(self, **values: Any) -> DatasetVersion:
        """Store a new dataset version; its number is one past the name's highest. Raises
        AlreadyStoredError when another process stored the same version first."""
        return self._add_numbered(DatasetRow, DatasetVersion, values)

    def _add_numbered(self, table: Any, kind: type[R], values: dict[str, Any]) -> R:
        """Add a row numbered one past its name's highest. Two processes registering at once
        both chose the same number and one ended in an internal error (a review): the loser
        takes the next number, or learns that the winner stored the same version."""
        for _ in range(NUMBERING_TRIES):
            try:
                with self._session.begin() as s:
                    number = (
                        s.scalar(select(func.max(table.number)).where(table.name == values["name"]))
                        or 0
                    ) + 1
                    row = table(number=number, created_at=now(), **self.stored(values))
                    s.add(row)
                    s.flush()
                    return self.record(kind, row)
            except IntegrityError:
                with self._session() as s:
                    same = s.scalars(
                        select(table).where(
                            table.name == values["name"], table.version == values["version"]
                        )
                    ).first()
                    if same is not None:
                        raise AlreadyStoredError(self.record(kind, same)) from None
        raise InputError(
            f"{values['name']}: other processes kept taking its next version number; try again"
        )

    def record_manifest_digest(self, dataset_id: int, digest: str) -> None:
        """Keep the digest of a manifest registered before digests were kept (once only)."""
        with self._session.begin() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is not None and row.manifest_sha256 is None:
                row.manifest_sha256 = digest

    def get_dataset(self, ref: VersionRef) -> DatasetVersion:
        with self._session() as s:
            return self.record(DatasetVersion, self._resolve(s, DatasetRow, ref, "dataset"))

    def get_dataset_by_id(self, dataset_id: int) -> DatasetVersion:
        with self._session() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise NotFoundError(f"dataset id {dataset_id} not found")
            return self.record(DatasetVersion, row)

    def list_datasets(self) -> list[DatasetVersion]:
        with self._session() as s:
            rows = s.scalars(select(DatasetRow).order_by(DatasetRow.name, DatasetRow.number))
            return [self.record(DatasetVersion, r) for r in rows]

    # -- models ---------------------------------------------------------------------------------

    def find_model(self, name: str, version: str) -> ModelVersion | None:
        with self._session() as s:
            row = s.scalars(
                select(ModelRow).where(ModelRow.name == name, ModelRow.version == version)
            ).first()
            return None if row is None else self.record(ModelVersion, row)

    def add_model(self, **values: Any) -> ModelVersion:
        """Store a new model version (see ``add_dataset``)."""
        return self._add_numbered(ModelRow, ModelVersion, values)

    def get_model(self, ref: VersionRef) -> ModelVersion:
        with self._session() as s:
            return self.record(ModelVersion, self._resolve(s, ModelRow, ref, "model"))

    def get_model_by_id(self, model_id: int) -> ModelVersion:
        with self._session() as s:
            row = s.get(ModelRow, model_id)
            if row is None:
                raise NotFoundError(f"model id {model_id} not found")
            return self.record(ModelVersion, row)

    def list_models(self) -> list[ModelVersion]:
        with self._session() as s:
            rows = s.scalars(select(ModelRow).order_by(ModelRow.name, ModelRow.number))
            return [self.record(ModelVersion, r) for r in rows]

    # -- runs -----------------------------------------------------------------------------------

    def create_run(self, status: str = "running", **values: Any) -> RunRecord:
        """A new run: ``running`` (``holder`` names its process, see ``assay.store.leases``), or
        ``queued`` for a worker to start (``start_queued_run``)."""
        if status not in ("running", "queued"):
            raise ValueError(f"a run starts running or queued, not {status}")
        with self._session.begin() as s:
            started = now()
            row = RunRow(
                status=status,
                started_at=started,
                heartbeat_at=started if status == "running" else None,
                **self.stored(values),
            )
            s.add(row)
            s.flush()
            return self.record(RunRecord, row)

    def start_queued_run(self, run_id: str, **values: Any) -> RunRecord:
        """Take a queued run to ``running`` (atomically: of two workers, one wins)."""
        with self._session.begin() as s:
            at = now()
            done = s.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == "queued")
                .values(status="running", started_at=at, heartbeat_at=at, **values)
            )
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"run {run_id} not found")
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise InputError(f"run {run_id} is {row.status}, not queued")
            return self.record(RunRecord, row)

    def finish_run(
        self,
        run_id: str,
        status: str,
        n_items: int | None = None,
        n_failed: int | None = None,
        error: str | None = None,
        artifact_sha256: dict[str, str] | None = None,
        summary: dict[str, Any] | None = None,
        decision: tuple[int, int, str, str] | None = None,
    ) -> RunRecord:
        """Record a run's end. A finished run is immutable: finishing it twice is an error.
        ``summary`` holds the list's columns (``SUMMARY_FIELDS``). ``decision`` (dataset id,
        model id, kind, verdict): the decision the run took, logged in the same transaction,
        so that no finished run's verdict escapes the decision budget (a process killed
        between two commits left a finished PASS the budget never counted; a review)."""
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"run {run_id} not found")
            if status not in RUN_NEXT.get(row.status, ()):
                raise InputError(f"run {run_id} already ended ({row.status})")
            row.status, row.finished_at = status, now()
            row.n_items, row.n_failed, row.error = n_items, n_failed, error
            if artifact_sha256 is not None or status == "finished":
                # (a run that stopped keeps the digests of what a resume reads)
                row.artifact_sha256 = artifact_sha256
            for key, value in (summary or {}).items():
                if key in SUMMARY_FIELDS:
                    setattr(row, key, value)
            if decision is not None:
                dataset_id, model_id, kind, verdict = decision
                s.add(
                    DecisionRow(
                        dataset_id=dataset_id,
                        model_id=model_id,
                        run_id=run_id,
                        kind=kind,
                        verdict=verdict,
                        decided_at=row.finished_at,
                    )
                )
            s.flush()
            return self.record(RunRecord, row)

    def set_run_environment(self, run_id: str, environment: dict[str, Any]) -> None:
        """What an unfinished run learnt of where it ran once its pass was done (on Spark, the
        executors): a finished run's environment is part of its record and stays."""
        with self._session.begin() as s:
            _unfinished(s, run_id).environment = environment

    def record_run_state(self, run_id: str, name: str, sha256: str) -> None:
        """The digest of a file a resume of this unfinished run reads (its ``invocation.json``,
        its last ``checkpoint-N.json``, which replaces the one before): the catalog, not the
        run folder, says what the run wrote, so an edited file is refused, never resumed from."""
        with self._session.begin() as s:
            row = _unfinished(s, run_id)
            kept = {
                k: v
                for k, v in (row.artifact_sha256 or {}).items()
                if not (name.startswith("checkpoint-") and k.startswith("checkpoint-"))
            }
            row.artifact_sha256 = {**kept, name: sha256}

    def forget_checkpoint(self, run_id: str) -> None:
        """The unfinished run's checkpoint is no longer one to resume from (its pass is whole,
        or failed): a resume starts from the first item."""
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None or row.status == "finished" or not row.artifact_sha256:
                return
            row.artifact_sha256 = {
                k: v for k, v in row.artifact_sha256.items() if not k.startswith("checkpoint-")
            }

    def record_summary(self, run_id: str, summary: dict[str, Any]) -> None:
        """Fill the list's columns of a run finished before they existed (from its result)."""
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is not None and row.headline_metric is None:
                for key in SUMMARY_FIELDS:
                    setattr(row, key, summary.get(key))

    def get_run(self, run_id: str) -> RunRecord:
        with self._session() as s:
            rows = list(
                s.scalars(select(RunRow).where(RunRow.id.startswith(run_id, autoescape=True)))
            )
            if not rows:
                raise NotFoundError(f"run {run_id} not found")
            if len(rows) > 1:
                raise InputError(f"run id {run_id} is ambiguous; give more characters")
            return self.record(RunRecord, rows[0])

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
            return None if row is None else self.record(RunRecord, row)

    def finished_runs(self, model_id: int) -> list[RunRecord]:
        """Every finished run of a model version, the newest first."""
        with self._session() as s:
            rows = s.scalars(
                select(RunRow)
                .where(RunRow.model_id == model_id, RunRow.status == "finished")
                .order_by(RunRow.finished_at.desc())
            )
            return [self.record(RunRecord, r) for r in rows]

    def record_decision(
        self, dataset_id: int, model_id: int, run_id: str | None, kind: str, verdict: str
    ) -> Decision:
        """Log a decision taken on a dataset version."""
        with self._session.begin() as s:
            row = DecisionRow(
                dataset_id=dataset_id,
                model_id=model_id,
                run_id=run_id,
                kind=kind,
                verdict=verdict,
                decided_at=now(),
            )
            s.add(row)
            s.flush()
            return _record(Decision, row)

    def decisions(self, dataset_ids: list[int]) -> list[Decision]:
        """The decisions taken on these dataset versions, oldest first."""
        with self._session() as s:
            rows = s.scalars(
                select(DecisionRow)
                .where(DecisionRow.dataset_id.in_(dataset_ids))
                .order_by(DecisionRow.decided_at, DecisionRow.id)
            )
            return [_record(Decision, r) for r in rows]

    def list_runs(self, limit: int | None = 100) -> list[RunRecord]:
        """The newest runs first (``limit`` None: every run)."""
        with self._session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.started_at.desc()).limit(limit))
            return [self.record(RunRecord, r) for r in rows]

    def query_runs(self, query: RunQuery) -> tuple[list[RunRecord], int]:
        """One page of runs matching ``query``, and how many match in all."""
        q = select(RunRow)
        if query.model is not None:
            q = q.where(RunRow.model_id.in_(self._version_ids(ModelRow, query.model, "model")))
        if query.dataset is not None:
            ids = self._version_ids(DatasetRow, query.dataset, "dataset")
            q = q.where(RunRow.dataset_id.in_(ids))
        if query.verdict is not None:
            none = query.verdict == "none"
            q = q.where(RunRow.verdict.is_(None) if none else RunRow.verdict == query.verdict)
        if query.status is not None:
            q = q.where(RunRow.status == query.status)
        if query.origin is not None:
            q = q.where(RunRow.origin == query.origin)
        if query.tag is not None:
            tagged = select(RunTagRow.run_id).where(RunTagRow.tag == query.tag)
            q = q.where(RunRow.id.in_(tagged))
        if query.since is not None:
            q = q.where(RunRow.started_at >= query.since)
        if query.until is not None:
            q = q.where(RunRow.started_at < query.until)
        if query.sort not in SORTABLE:
            raise InputError(f"cannot sort runs by {query.sort!r} (by: {', '.join(SORTABLE)})")
        column = getattr(RunRow, query.sort)
        # Runs without the value (unfinished, no verdict) go last either way; the id breaks ties
        # so that pages never repeat or skip a run.
        order = [
            column.is_(None),
            column.desc() if query.descending else column.asc(),
            RunRow.id,
        ]
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(
                q.order_by(*order).offset(max(0, query.offset)).limit(max(1, query.limit))
            )
            return [self.record(RunRecord, r) for r in rows], int(total)

    def _version_ids(self, table: type[Row], text: str, what: str) -> Any:
        """The ids of ``NAME`` (every version) or ``NAME@VERSION`` (that one), as a subquery."""
        if "@" not in text:
            return select(table.id).where(table.name == text)
        with self._session() as s:
            return [self._resolve(s, table, VersionRef.parse(text, what), what).id]

    # -- annotations of runs: tags and a note (the only things a finished run lets change) ----

    def set_tags(self, run_id: str, tags: list[str]) -> None:
        with self._session.begin() as s:
            if s.get(RunRow, run_id) is None:
                raise NotFoundError(f"run {run_id} not found")
            s.execute(delete(RunTagRow).where(RunTagRow.run_id == run_id))
            s.add_all(RunTagRow(run_id=run_id, tag=t) for t in dict.fromkeys(tags))

    def tags_of(self, run_ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {r: [] for r in run_ids}
        with self._session() as s:
            rows = s.execute(
                select(RunTagRow.run_id, RunTagRow.tag)
                .where(RunTagRow.run_id.in_(run_ids))
                .order_by(RunTagRow.tag)
            )
            for run_id, tag in rows:
                out[run_id].append(tag)
        return out

    def all_tags(self) -> list[str]:
        with self._session() as s:
            return list(s.scalars(select(RunTagRow.tag).distinct().order_by(RunTagRow.tag)))

    def set_note(self, run_id: str, note: str | None) -> None:
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFoundError(f"run {run_id} not found")
            row.note = note

    # -- model aliases ------------------------------------------------------------------------

    def set_alias(self, name: str, alias: str, model_id: int, set_by: str) -> ModelAlias:
        """Point ``name@alias`` at a version of ``name`` (moving it if it pointed elsewhere)."""
        with self._session.begin() as s:
            model = s.get(ModelRow, model_id)
            if model is None or model.name != name:
                raise InputError(f"model id {model_id} is not a version of {name}")
            row = s.get(ModelAliasRow, (name, alias))
            if row is None:
                row = ModelAliasRow(name=name, alias=alias)
                s.add(row)
            row.model_id, row.set_by, row.set_at = model_id, set_by, now()
            s.flush()
            return ModelAlias(name, alias, model_id, model.number, row.set_by, row.set_at)

    def remove_alias(self, name: str, alias: str) -> None:
        with self._session.begin() as s:
            row = s.get(ModelAliasRow, (name, alias))
            if row is None:
                raise NotFoundError(f"model {name} has no alias {alias!r}")
            s.delete(row)

    def aliases(self, name: str | None = None) -> list[ModelAlias]:
        q = select(ModelAliasRow, ModelRow.number).join(
            ModelRow, ModelRow.id == ModelAliasRow.model_id
        )
        if name is not None:
            q = q.where(ModelAliasRow.name == name)
        with self._session() as s:
            return [
                ModelAlias(a.name, a.alias, a.model_id, number, a.set_by, a.set_at)
                for a, number in s.execute(q.order_by(ModelAliasRow.name, ModelAliasRow.alias))
            ]


def _unfinished(s: Session, run_id: str) -> RunRow:
    """The row of a run that has not finished (a finished run's record stays as it is)."""
    row = s.get(RunRow, run_id)
    if row is None:
        raise NotFoundError(f"run {run_id} not found")
    if row.status == "finished":
        raise InputError(f"run {run_id} already finished")
    return row
