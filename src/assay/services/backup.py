"""Backing up and restoring the SQLite catalog (PostgreSQL has pg_dump for that).

The catalog is the index of everything stored: the files under ``datasets/``, ``models/`` and
``runs/`` are immutable and content-addressed, so copying them (rsync) is a complete backup of
them, but the catalog changes while commands run. SQLite's online backup API copies it
consistently even while another command writes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from assay.core.errors import InputError, one_line

TABLES = {"alembic_version", "datasets", "models", "runs"}


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _sqlite_only() -> None:
    if os.environ.get("ASSAY_DATABASE_URL"):
        raise InputError(
            "the catalog is on the server ASSAY_DATABASE_URL names: back it up with pg_dump "
            "(and restore with pg_restore); `assay store backup` copies SQLite catalogs"
        )


def backup_catalog(home: Path, folder: Path) -> Path:
    """Copy ``home``'s catalog into ``folder`` (a new, timestamped file) and return its path."""
    _sqlite_only()
    source = home / "catalog.db"
    if not source.is_file() or source.stat().st_size == 0:
        raise InputError(f"there is no catalog to back up at {source}")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"catalog-{_stamp()}.db"
    tmp = target.with_suffix(".db.tmp")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        # A backup is one self-contained file: in the catalog's WAL mode, opening it (the check
        # below) left catalog-<t>.db.tmp-shm and -wal beside it (a review).
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.DatabaseError as exc:
        raise InputError(f"the catalog {source} cannot be read ({one_line(str(exc))})") from None
    finally:
        dst.close()
        src.close()
    check_catalog_file(tmp)
    os.replace(tmp, target)
    return target


def check_catalog_file(path: Path) -> None:
    """Raise InputError unless ``path`` is a sound SQLite file holding an Assay catalog."""
    if not path.is_file() or path.stat().st_size == 0:
        raise InputError(f"{path} is not a catalog backup (missing or empty)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (status,) = con.execute("PRAGMA integrity_check").fetchone()
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path} is not a SQLite database ({one_line(str(exc))})") from None
    if status != "ok":
        raise InputError(f"{path} fails SQLite's integrity check: {one_line(str(status))}")
    if not names >= TABLES:
        raise InputError(f"{path} is a SQLite database but not an Assay catalog")


def restore_catalog(home: Path, backup: Path) -> Path | None:
    """Put ``backup`` in place as ``home``'s catalog; the catalog it replaces (if any) is kept
    beside it as ``catalog.db.replaced-<time>``, whose path is returned."""
    _sqlite_only()
    check_catalog_file(backup)
    target = home / "catalog.db"
    home.mkdir(parents=True, exist_ok=True)
    kept: Path | None = None
    stamp = _stamp()
    # The write-ahead log of the old catalog would be replayed into the restored one: set aside.
    for suffix in ("", "-wal", "-shm"):
        old = home / f"catalog.db{suffix}"
        if old.exists():
            aside = home / f"catalog.db{suffix}.replaced-{stamp}"
            os.replace(old, aside)
            kept = kept or aside
    tmp = home / f".catalog.db.restoring-{stamp}"
    shutil.copyfile(backup, tmp)
    os.replace(tmp, target)
    return kept
