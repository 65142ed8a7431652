"""Workspace: the catalog and the file store of one Assay home (``ASSAY_HOME``, default ./.assay)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import InputError
from assay.store.access import AccessStore
from assay.store.catalog import SqlCatalog
from assay.store.files import FileStore
from assay.store.jobs import JobStore
from assay.store.reviews import ReviewStore


def default_home() -> Path:
    return Path(os.environ.get("ASSAY_HOME", ".assay")).expanduser()


@dataclass
class Workspace:
    """Everything a service needs to read and write: catalog + files."""

    home: Path
    catalog: SqlCatalog
    files: FileStore

    @classmethod
    def open(
        cls, home: Path | str | None = None, database_url: str | None = None, create: bool = True
    ) -> Workspace:
        """Open (creating if needed) the store at ``home``; ``ASSAY_DATABASE_URL`` overrides
        SQLite. ``create`` False: InputError where no store is (a mistyped folder would be an
        empty new store, and its first lookup a puzzling 'not found')."""
        root = Path(home).expanduser() if home is not None else default_home()
        url = database_url or os.environ.get("ASSAY_DATABASE_URL")
        if any(p.exists() and not p.is_dir() for p in (root, *root.parents)):
            raise InputError(f"the store {root} is not a folder (--home, ASSAY_HOME)")
        if not create and not (
            (root / "catalog.db").is_file()  # a SQLite store
            or (root.is_dir() and (url is not None or FileStore(root).holds_anything()))
        ):  # (a store whose catalog was lost is told to restore it, below)
            raise InputError(
                f"no Assay store at {root}: give the folder that holds it (home=, --home, "
                "ASSAY_HOME), or register a dataset and a model there first"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InputError(f"the store {root} is not a folder (--home, ASSAY_HOME)") from None
        except PermissionError:
            raise InputError(f"the store {root} cannot be created: permission denied") from None
        files = FileStore(root.resolve()).ensure()
        if url is None:
            catalog = files.root / "catalog.db"
            if not catalog.exists() and files.holds_anything():
                raise InputError(
                    f"{catalog} is missing but the store holds datasets, models or runs: restore "
                    "it with `assay store restore BACKUP` (a new catalog would list none of them)"
                )
            url = f"sqlite:///{catalog}"
        return cls(files.root, SqlCatalog.open(url, files.root), files)

    @property
    def access(self) -> AccessStore:
        """Tokens and browser sessions."""
        return AccessStore(self.catalog)

    @property
    def jobs(self) -> JobStore:
        """Validations queued through the web."""
        return JobStore(self.catalog)

    @property
    def reviews(self) -> ReviewStore:
        """Experts' decisions on items' labels."""
        return ReviewStore(self.catalog)

    def close(self) -> None:
        self.catalog.close()
