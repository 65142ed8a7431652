"""The one mechanism through which dataset readers are registered, chosen and detected.

A reader is a name, a ``detect(path)`` predicate and an ``open(path, options)`` function. Built-in
readers register themselves here the same way a plugin would; detection tries them in order of
``priority`` (specific importers before generic layouts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import InputError
from assay.datasets.source import DatasetSource


@dataclass(frozen=True)
class ReadOptions:
    """What the user said about the dataset's columns (None: the reader's default)."""

    label_column: str | None = None
    id_column: str | None = None
    # Experts' labels come from a separate annotations table: the label column may be absent.
    annotated: bool = False
    # Files outside the dataset's folder (``..``, absolute paths, symlinks out) are refused
    # unless the user says they are meant.
    allow_outside: bool = False
    # A production sample: nobody labelled it, so a missing label column is expected.
    unlabelled: bool = False


def inside_root(path: Path, root: Path, where: str, allow_outside: bool) -> Path:
    """``path`` resolved (symlinks followed); InputError when that leaves ``root`` uninvited."""
    if "\x00" in str(path):
        raise InputError(f"{where}: a path cannot hold a NUL character")
    resolved = path.resolve()
    if not allow_outside and not resolved.is_relative_to(root):
        raise InputError(
            f"{where} points outside the dataset folder {root} (to {resolved}); "
            "pass --allow-outside-paths if that is meant"
        )
    return resolved


@dataclass(frozen=True)
class Reader:
    name: str
    description: str
    detect: Callable[[Path], bool]
    open: Callable[[Path, ReadOptions], DatasetSource]
    priority: int = 100


_READERS: dict[str, Reader] = {}


def register_reader(reader: Reader) -> Reader:
    """Make a reader available to ``--format`` and to detection."""
    _READERS[reader.name] = reader
    return reader


def readers() -> list[Reader]:
    """Registered readers, in detection order."""
    _load_builtins()
    return sorted(_READERS.values(), key=lambda r: (r.priority, r.name))


def get_reader(name: str) -> Reader:
    _load_builtins()
    if name not in _READERS:
        raise InputError(f"unknown dataset format {name!r} (known: {', '.join(sorted(_READERS))})")
    return _READERS[name]


def detect_reader(path: Path) -> Reader:
    """The first reader whose ``detect`` accepts ``path``."""
    for reader in readers():
        if reader.detect(path):
            return reader
    raise InputError(
        f"cannot tell the dataset format of {path}; pass --format "
        f"({', '.join(r.name for r in readers())})"
    )


def _load_builtins() -> None:
    # Imported for their registration side effect; late so that plugins can import this module.
    from assay.datasets import coco, folder, manifest, neu_det, secom, tables, voc, yolo  # noqa: F401
