"""FileStore: where manifests, model files and run artifacts live under the store root.

Model files are stored content-addressed (by digest, never at a name taken from the user), and
every write goes to a temporary name first and is renamed into place, so a crash or a rejected
input never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

_HOST = socket.gethostname().replace("~", "-")


def _owner_prefix() -> str:
    """``host~pid-``: whose work in progress a temporary entry is."""
    return f"{_HOST}~{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileStore:
    """Paths and atomic writes under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> FileStore:
        for sub in ("datasets", "models", "runs", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.remove_leftovers()
        return self

    def remove_leftovers(self) -> list[Path]:
        """Delete work in progress of processes of this host that no longer exist (a killed
        ``dataset add`` leaves its partial manifest here); returns what was removed."""
        removed = []
        for entry in (self.root / "tmp").iterdir():
            host, _, rest = entry.name.partition("~")
            pid = rest.split("-", 1)[0]
            if host != _HOST or not pid.isdigit() or _alive(int(pid)):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
        return removed

    def holds_anything(self) -> bool:
        """Whether any dataset, model or run has been stored here."""
        return any(
            any((self.root / sub).iterdir())
            for sub in ("datasets", "models", "runs")
            if (self.root / sub).is_dir()
        )

    def temp_dir(self) -> Path:
        """A fresh private directory for work in progress (on the same file system as the store)."""
        return Path(tempfile.mkdtemp(prefix=_owner_prefix(), dir=self.root / "tmp"))

    def dataset_dir(self, digest: str) -> Path:
        return self.root / "datasets" / digest

    def model_path(self, digest: str, suffix: str) -> Path:
        return self.root / "models" / f"{digest}{suffix}"

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def put_dir(self, tmp: Path, final: Path) -> Path:
        """Move a finished temporary directory into place (kept if already there: same digest)."""
        if final.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return final

    def put_file(self, src: Path, final: Path) -> Path:
        """Copy a file into the store under its final (content-addressed) name."""
        if final.exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temp_file(self.root / "tmp", prefix=_owner_prefix())
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, final)
        return final


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` sets it to read it, which
    would leave other threads creating files under a wrong mask meanwhile)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def temp_file(folder: Path, prefix: str = "", suffix: str = "") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``folder``, with the mode an ordinary file gets (0644 under the
    usual umask): mkstemp makes it 0600, and once renamed into place a result, a report or
    a history would be unreadable to the CI step or the web server that runs as another user."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, name


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
