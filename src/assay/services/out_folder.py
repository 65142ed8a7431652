"""``--out``: the folder a command copies its files to, checked before any work is done."""

from __future__ import annotations

import tempfile
from pathlib import Path

from assay.core.errors import InputError


def check_out(out: Path | str) -> Path:
    """``out`` expanded; InputError when something other than a folder is in its place."""
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} exists and is not a folder")
    # The folder, or the nearest one above it that exists, must take a file: checked before
    # the work, since a run recorded and then unable to write its --out files is half done.
    there = next((p for p in (folder, *folder.absolute().parents) if p.exists()), Path("/"))
    if not there.is_dir():
        raise InputError(f"--out {folder} cannot be created: {there} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=there):
            pass
    except OSError as exc:
        raise InputError(f"--out {folder} cannot be written ({exc.strerror or exc})") from exc
    return folder


def out_folder(out: Path | str) -> Path:
    """``out`` checked (``check_out``) and created when missing; InputError when it cannot be
    (a parent is a file, no permission), so that this is one line and exit 2, not a crash."""
    folder = check_out(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {folder} cannot be created ({exc.strerror or exc})") from exc
    return folder
