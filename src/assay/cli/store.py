"""`assay store`: check the stored files against their digests, back up and restore the catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console
from assay.core.errors import InputError

store_app = typer.Typer(help="Check the store.", no_args_is_help=True)


@store_app.command("verify")
def store_verify(home: HomeOption = None) -> None:
    """Check every stored model file and manifest against its digest (exit 2 on any mismatch)."""
    from assay.services.integrity import verify_store

    checks = verify_store(_workspace(home, create=False))
    style = {"ok": "green", "recorded": "yellow", "changed": "bold red", "missing": "bold red",
             "outside": "bold red"}  # fmt: skip
    for c in checks:
        console.print(
            f"[{style[c.status]}]{c.status:>8}[/] {escape(c.what)}  {escape(str(c.path))}",
            highlight=False,
        )
    bad = [c for c in checks if c.status in ("changed", "missing")]
    if bad:
        raise InputError(
            f"{len(bad)} of {len(checks)} stored files do not match their digests: "
            + ", ".join(c.what for c in bad[:3])
        )
    away = [c for c in checks if c.status == "outside"]
    if away:
        raise InputError(
            f"{len(away)} of {len(checks)} stored files are read from outside this store "
            f"(another store's, e.g. {away[0].path}): copy its datasets/, models/ and runs/ "
            "into this one"
        )
    console.print(f"{len(checks)} stored files checked, all match their digests")


@store_app.command("backup")
def store_backup(
    folder: Annotated[Path, typer.Argument(help="Folder for the backup (created if needed).")],
    home: HomeOption = None,
) -> None:
    """Copy the SQLite catalog consistently, even while other commands run (SQLite's backup API)."""
    from assay.services.backup import backup_catalog
    from assay.services.workspace import default_home

    root = (home or default_home()).expanduser()
    path = backup_catalog(root, folder.expanduser())
    console.print(f"catalog backed up to {escape(str(path))}")
    console.print(
        f"  the stored files are immutable: copy {escape(str(root))}/datasets, models and runs "
        "beside it (e.g. rsync) for a complete backup"
    )


@store_app.command("restore")
def store_restore(
    backup: Annotated[Path, typer.Argument(help="A catalog file written by `assay store backup`.")],
    home: HomeOption = None,
) -> None:
    """Put a catalog backup in place; the catalog it replaces is kept beside it."""
    from assay.services.backup import restore_catalog
    from assay.services.workspace import default_home

    root = (home or default_home()).expanduser()
    kept = restore_catalog(root, backup.expanduser())
    console.print(f"catalog restored from {escape(str(backup))}")
    if kept is not None:
        console.print(f"  the catalog it replaced is kept as {escape(str(kept))}")
    # Opening the store makes the paths of the backed-up store point at this one's files.
    outside = _workspace(home, create=False).catalog.relocate()
    if outside:
        console.print(
            f"[yellow]warning:[/] {len(outside)} stored file(s) are not in {escape(str(root))} "
            f"(first: {escape(outside[0])}): copy datasets/, models/ and runs/ of the backed-up "
            "store beside the catalog; `assay store verify` fails until then",
            highlight=False,
        )
