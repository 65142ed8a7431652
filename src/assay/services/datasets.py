"""register_dataset and friends: turn a path into an immutable, versioned dataset."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from assay.core.errors import InputError
from assay.core.records import DatasetVersion, VersionRef, check_name
from assay.datasets import columns as cols
from assay.datasets.images import add_image_properties
from assay.datasets.registry import ReadOptions, detect_reader, get_reader
from assay.datasets.versioning import VersionDigest, add_file_digests
from assay.services.workspace import Workspace
from assay.store.manifests import count_nulls, write_manifest


@dataclass(frozen=True)
class Registered:
    dataset: DatasetVersion
    created: bool  # False: identical content was already registered under this name


def register_dataset(
    ws: Workspace,
    name: str,
    path: Path | str,
    fmt: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
) -> Registered:
    """Read ``path``, store its manifest and catalogue it; identical content is a no-op."""
    check_name(name, "dataset")
    src = Path(path).expanduser()
    if not src.exists():
        raise InputError(f"path does not exist: {src}")
    reader = get_reader(fmt) if fmt else detect_reader(src)
    source = reader.open(src, ReadOptions(label_column=label_column, id_column=id_column))
    digest = VersionDigest(source.format, source.options)
    for f in source.files:
        digest.add_file(f, source.root)

    tmp = ws.files.temp_dir()
    try:
        with ThreadPoolExecutor(4, thread_name_prefix="assay-hash") as pool:

            def hashed() -> Iterator[pa.RecordBatch]:
                for batch in source.batches():
                    if source.kind == "image":
                        batch = add_file_digests(batch, pool)
                        batch = add_image_properties(batch, pool)
                    digest.add_items(batch)
                    yield batch

            stats = write_manifest(hashed(), tmp / "manifest.parquet")
        if stats.n_items == 0:
            raise InputError(f"dataset {src} is empty: the {source.format} reader found no items")
        version = digest.hexdigest()
        existing = ws.catalog.find_dataset(name, version)
        if existing is not None:
            return Registered(existing, created=False)
        final = ws.files.put_dir(tmp, ws.files.dataset_dir(version))
        assert stats.schema is not None
        notes = list(source.notes)
        if stats.n_unlabelled:
            notes.append(
                f"{stats.n_unlabelled} item(s) have no label and will be reported as not judged"
            )
        if source.kind == "image":
            missing = count_nulls(final / "manifest.parquet", cols.SHA256)
            if missing:
                notes.append(f"{missing} referenced file(s) are missing or unreadable")
        record = ws.catalog.add_dataset(
            name=name,
            version=version,
            format=source.format,
            kind=source.kind,
            source=str(src.resolve()),
            options=source.options,
            n_items=stats.n_items,
            label_counts=dict(sorted(stats.label_counts.items())),
            columns=[
                {"name": f.name, "type": str(f.type)}
                for f in stats.schema
                if f.name not in cols.RESERVED
            ],
            manifest_path=str(final / "manifest.parquet"),
            notes=notes,
        )
        return Registered(record, created=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def get_dataset(ws: Workspace, ref: str) -> DatasetVersion:
    return ws.catalog.get_dataset(VersionRef.parse(ref, "dataset"))


def list_datasets(ws: Workspace) -> list[DatasetVersion]:
    return ws.catalog.list_datasets()
