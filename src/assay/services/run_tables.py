"""Columns of a finished run's files (and of its dataset's manifest), read once per server
process and kept while they are browsed.

A finished run never changes, and neither does a dataset version, so what the item explorer and
the comparison read can be kept in memory between requests: without it, each page of a
million-item run read its predictions file again. The cache is bounded in bytes (least recently
used first out) and keyed by the file's identity (path, size, modification time, inode), so a
file replaced on disk is read again, and checked again.

Integrity: the first read of a run's files by a process hashes them in full against the digests
the run kept (``verify_run_files``); later reads trust them while their identity is unchanged. A
validation that reuses a run's predictions still hashes them every time.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from assay.core.records import RunRecord
from assay.reports.json import read_result_json
from assay.services.integrity import verify_run_files

T = TypeVar("T")
BUDGET_MB = int(os.environ.get("ASSAY_BROWSE_CACHE_MB", "512"))

_lock = threading.Lock()
# One reader per file: concurrent requests for a table not yet kept wait for that read instead
# of each reading the file (fifty clients opening a new run page at once).
_loading: dict[tuple[object, ...], threading.Lock] = {}
_tables: OrderedDict[tuple[object, ...], pa.Table] = OrderedDict()
_bytes = 0
_verified: dict[str, tuple[object, ...]] = {}


def _identity(path: Path) -> tuple[object, ...]:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def verified(run: RunRecord) -> None:
    """``verify_run_files`` once per process for files that have not changed since."""
    folder = Path(run.run_dir)
    key = tuple(
        _identity(folder / name)
        for name in ("predictions.parquet", "result.json")
        if (folder / name).is_file()
    )
    with _lock:
        if _verified.get(run.id) == key:
            return
    verify_run_files(run)
    with _lock:
        _verified[run.id] = key


def columns(path: Path, names: list[str]) -> pa.Table:
    """Columns ``names`` of the Parquet file at ``path`` (those it has), kept for the next read."""
    global _bytes
    key = (*_identity(path), tuple(names))
    with _lock:
        table = _tables.get(key)
        if table is not None:
            _tables.move_to_end(key)
            return table
        reading = _loading.setdefault(key, threading.Lock())
    with reading:
        with _lock:
            table = _tables.get(key)
        if table is not None:  # another request read it meanwhile
            return table
        present = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[n for n in names if n in present])
        size = table.nbytes
        with _lock:
            _loading.pop(key, None)
            if size <= BUDGET_MB << 20 and key not in _tables:
                _tables[key] = table
                _bytes += size
                while _bytes > BUDGET_MB << 20 and _tables:
                    _, dropped = _tables.popitem(last=False)
                    _bytes -= dropped.nbytes
    return table


_kept: OrderedDict[tuple[object, ...], object] = OrderedDict()


def kept(key: tuple[object, ...], compute: Callable[[], T]) -> T:
    """``compute()``, kept under ``key`` (which must name everything it depends on, files by
    their identity): the comparison of two immutable runs is the same on every request."""
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]  # type: ignore[return-value]
        computing = _loading.setdefault(key, threading.Lock())
    with computing:
        with _lock:
            if key in _kept:  # another request computed it meanwhile
                return _kept[key]  # type: ignore[return-value]
        value = compute()
        with _lock:
            _loading.pop(key, None)
            _kept[key] = value
            while len(_kept) > 32:
                _kept.popitem(last=False)
    return value


def identity(path: Path) -> tuple[object, ...]:
    """What names a file's content for the caches here: path, size, mtime, inode."""
    return _identity(path)


def clear() -> None:
    """Forget every kept table and check (tests; a server never needs it)."""
    global _bytes
    with _lock:
        _tables.clear()
        _verified.clear()
        _results.clear()
        _kept.clear()
        _bytes = 0


def row(path: Path, index: int, names: list[str]) -> list[dict[str, object]]:
    """One row of a Parquet file, reading only the row group that holds it."""
    file = pq.ParquetFile(path, pre_buffer=False)
    start = 0
    for group in range(file.metadata.num_row_groups):
        n = file.metadata.row_group(group).num_rows
        if index < start + n:
            present = set(file.schema_arrow.names)
            table = file.read_row_group(group, columns=[c for c in names if c in present])
            return table.slice(index - start, 1).to_pylist()  # type: ignore[no-any-return]
        start += n
    raise IndexError(f"row {index} is not in {path.name}")


_results: OrderedDict[tuple[object, ...], tuple[list[str], str | None]] = OrderedDict()


def labels_and_baseline(result: Path) -> tuple[list[str], str | None]:
    """A run's classes and its baseline run's id, from its result.json (kept: it is parsed
    once, however many pages read it)."""
    key = _identity(result)
    with _lock:
        if key in _results:
            return _results[key]
    parsed = read_result_json(result)
    found = (list(parsed.labels), (parsed.comparison or {}).get("baseline", {}).get("run_id"))
    with _lock:
        _results[key] = found
        while len(_results) > 64:
            _results.popitem(last=False)
    return found
