"""``--out``: the folder a command copies its files to, checked before any work is done."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows: no advisory locks on folders (see OutLock)
    fcntl = None  # type: ignore[assignment]

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


class OutLock:
    """A hold on an ``--out`` folder from the check of what it holds to the last file copied
    into it: an exclusive advisory lock (``flock``) on the folder itself, so a second run given
    the same folder is refused while the first holds it, and a killed run's hold ends with its
    process. Two runs started together into one folder were both let through (each found it
    empty) and each folder ended with the other run's verdict.md: a FAIL run's folder said PASS
    (a review). Where the system has no such locks (Windows) the folder is not held."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def __enter__(self) -> OutLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"--out {self.folder} cannot be created ({exc.strerror or exc})"
            ) from exc
        if fcntl is None:
            return self
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"--out {self.folder} is being written by another run right now: choose "
                "another folder"
            ) from None
        except OSError:  # a file system without locks (some network mounts): not held
            os.close(fd)
            return self
        self._fd = fd
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the folder's descriptor releases the lock
            self._fd = None
