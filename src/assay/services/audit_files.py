"""An audit's files (leakage, coverage): kept in the store as one folder, replaced whole so that
no reader sees half of one audit and half of another, and copied to ``--out`` when asked."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from assay.services.out_folder import OutLock, out_folder


def publish(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` (name -> bytes) into a temporary folder beside ``folder``, then put it in
    the place of ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_out(folder: Path, names: Iterable[str], out: Path | None) -> None:
    """Copy the audit's files to ``out`` (nothing when it is None), each whole or not at all,
    while no validation or comparison writes there (``OutLock``)."""
    if out is None:
        return
    out = out_folder(out)
    with OutLock(out):
        for name in names:
            tmp = out / f".{name}.tmp"
            shutil.copyfile(folder / name, tmp)
            os.replace(tmp, out / name)
