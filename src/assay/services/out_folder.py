"""``--out``: the folder a command copies its files to, checked before any work is done."""

from __future__ import annotations

import tempfile
from pathlib import Path

from assay.core.errors import InputError

# What a store keeps under its root: an --out there would overwrite (or, with --overwrite,
# delete) another run's files, or a dataset's or model's.
STORE_FOLDERS = ("runs", "datasets", "models", "tmp", "comparisons", "audits", "cache")


def check_out(out: Path | str, store: Path | None = None) -> Path:
    """``out`` expanded; InputError when something other than a folder is in its place, or when
    it lies in ``store``'s own folders (a validation's --out in another run's folder overwrote
    its predictions and result, a review)."""
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder} exists and is not a folder")
    if store is not None:
        root, there = store.expanduser().resolve(), folder.resolve()
        if there == root or any(there.is_relative_to(root / name) for name in STORE_FOLDERS):
            raise InputError(
                f"--out {folder} is inside the store {root}, whose files it would overwrite: "
                "choose a folder outside it"
            )
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


def out_folder(out: Path | str, store: Path | None = None) -> Path:
    """``out`` checked (``check_out``) and created when missing; InputError when it cannot be
    (a parent is a file, no permission), so that this is one line and exit 2, not a crash."""
    folder = check_out(out, store)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {folder} cannot be created ({exc.strerror or exc})") from exc
    return folder
