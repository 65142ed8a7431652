"""Stored files are what was registered: model files and manifests checked against their digests.

A run reads a stored model file and a stored manifest; a changed byte in either would change the
metrics while ``result.json`` still named the registered versions. So every use hashes them in
full first (a size-and-mtime check misses a flipped byte; SHA-256 runs at about 1 GB/s, less
than a second even for a 10M-row manifest), and a mismatch stops the run naming the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from assay.core.errors import InputError
from assay.core.records import DatasetVersion, ModelVersion, RunRecord
from assay.digests import file_sha256
from assay.services.workspace import Workspace


class IntegrityError(InputError):
    """A stored file no longer matches the digest recorded when it was registered."""


Status = Literal["ok", "changed", "missing", "recorded", "outside"]


@dataclass(frozen=True)
class FileCheck:
    """One stored file against its digest: ``recorded`` when no digest was kept before (it is
    recorded now, from the file as it is); ``outside`` when it matches but lies outside the
    store checked (a store restored without its files reads the original's)."""

    what: str
    path: Path
    status: Status
    expected: str | None
    actual: str | None


def _check(what: str, path: Path, expected: str | None) -> FileCheck:
    if not path.is_file():
        return FileCheck(what, path, "missing", expected, None)
    actual = file_sha256(path)
    if expected is None:
        return FileCheck(what, path, "recorded", None, actual)
    return FileCheck(what, path, "ok" if actual == expected else "changed", expected, actual)


def model_file_check(mv: ModelVersion) -> FileCheck:
    """The model file, then each file stored with it (an OpenVINO IR's weights): the first
    that is not as registered, else the model file's check."""
    expected = mv.signature.get("file_sha256") or Path(mv.file_path).stem
    check = _check(f"model {mv.ref}", Path(mv.file_path), str(expected))
    for suffix, digest in (mv.signature.get("companions") or {}).items():
        if check.status != "ok":
            break
        companion = _check(
            f"model {mv.ref} ({suffix})", Path(mv.file_path).with_suffix(suffix), str(digest)
        )
        if companion.status != "ok":
            return companion
    return check


def manifest_check(ws: Workspace, dv: DatasetVersion) -> FileCheck:
    check = _check(f"dataset {dv.ref}", Path(dv.manifest_path), dv.manifest_sha256)
    if check.status == "recorded" and check.actual is not None:
        ws.catalog.record_manifest_digest(dv.id, check.actual)
    return check


def _raise_unless_ok(check: FileCheck) -> None:
    # A dataset or model can be registered again; a run cannot, only run again.
    again = "run it again" if check.what.startswith("run ") else "register it again"
    if check.status == "missing":
        raise IntegrityError(
            f"the stored file of {check.what} is missing: {check.path}; restore the store from "
            f"a backup or {again}"
        )
    if check.status == "changed" and check.expected is None:
        raise IntegrityError(
            f"{check.path} is in the folder of {check.what.split(' (')[0].rsplit(' ', 1)[0]} "
            "but the run did not write it: remove it, or restore the folder from a backup"
        )
    if check.status == "changed":
        assert check.expected is not None and check.actual is not None
        raise IntegrityError(
            f"the stored file of {check.what} has changed since it was recorded: {check.path} "
            f"(sha256 {check.actual[:12]}, registered {check.expected[:12]}); restore it or "
            f"{again}"
        )


def verified_bytes(what: str, path: Path, expected: str) -> bytes:
    """The bytes of ``path``, hashed in the same read that returns them (what is checked is what
    is used); IntegrityError when the file is missing or is not ``expected``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        _raise_unless_ok(FileCheck(what, path, "missing", expected, None))
        raise  # unreachable: a missing file raises above
    check_bytes(what, path, data, expected)
    return data


def check_bytes(what: str, path: Path, data: bytes, expected: str) -> None:
    """IntegrityError unless ``data``, read from ``path``, is what was recorded."""
    actual = hashlib.sha256(data).hexdigest()
    _raise_unless_ok(
        FileCheck(what, path, "ok" if actual == expected else "changed", expected, actual)
    )


def read_run_file(run: RunRecord, name: str) -> bytes | None:
    """A finished run's file ``name``, checked against the digest the run kept when it finished;
    None when it kept none (a run from before digests, or a file it did not write then), so that
    nothing unchecked is ever used. IntegrityError when the file is missing or changed."""
    expected = (run.artifact_sha256 or {}).get(name)
    if expected is None:
        return None
    return verified_bytes(f"run {run.id[:12]} {name}", Path(run.run_dir) / name, expected)


def verify_model_file(mv: ModelVersion) -> None:
    """Raise IntegrityError unless the stored model file is byte for byte the registered one."""
    _raise_unless_ok(model_file_check(mv))


def verify_manifest(ws: Workspace, dv: DatasetVersion) -> None:
    """Raise IntegrityError unless the stored manifest is byte for byte the registered one."""
    _raise_unless_ok(manifest_check(ws, dv))


# Every file a run may write to its folder and copy to --out.
RUN_FILES = (
    "result.json",
    "report.html",
    "predictions.parquet",
    "verdict.md",
    "junit.xml",
    "unmatched_predictions.csv",
    "fresh_items.csv",
    "comparison.parquet",
    "doubtful_labels.parquet",
    "disputed_items.parquet",
    "error_groups.parquet",
    "error_embeddings.parquet",
)
# What a finished run keeps digests of: every file it wrote, since each is read back, shown or
# served (a verdict.md edited to PASS is as false as an edited result.json); and the image
# descriptors of misclassified items, which incremental validation reuses.
KEPT_FILES = (*RUN_FILES, "error_descriptors.parquet")


def run_digests(run_dir: Path) -> dict[str, str]:
    """The digests a finished run keeps of the files it wrote."""
    return {name: file_sha256(run_dir / name) for name in KEPT_FILES if (run_dir / name).is_file()}


def checked_run_file(run: RunRecord, name: str) -> Path:
    """The path of a finished run's file ``name``, after checking it against the digest the run
    kept (a file the run kept no digest of, from before digests covered it, is not checked).
    IntegrityError when it is changed or missing; FileNotFoundError when the run never wrote
    it. For files served whole, too large to hold in memory (read_run_file holds them)."""
    path = Path(run.run_dir) / name
    kept = run.artifact_sha256 or {}
    expected = kept.get(name)
    if expected is not None:
        _raise_unless_ok(_check(f"run {run.id[:12]} {name}", path, expected))
    elif not path.is_file() or digests_every_file(kept):
        # (a file the run never wrote, put there since: a review planted another run's PASS
        # verdict.md in a run that had no verdict, and it was served as this run's)
        raise FileNotFoundError(path)
    return path


def digests_every_file(kept: dict[str, str]) -> bool:
    """Whether a run's digests cover every file it wrote (runs finished since 2026-11-30, which
    always write and digest report.html), so that a file without one was never its own."""
    return "report.html" in kept


def run_file_checks(run: RunRecord) -> list[FileCheck]:
    """A run's files against the digests the catalog kept: every file a finished run wrote;
    what a resume of a stopped one reads (none for runs finished before digests were kept)."""
    kept = run.artifact_sha256 or {}
    checks = [
        _check(f"run {run.id[:12]} {name}", Path(run.run_dir) / name, digest)
        for name, digest in sorted(kept.items())
    ]
    if run.status == "finished" and digests_every_file(kept):
        checks += [  # a run file the run never wrote, put in its folder since
            FileCheck(
                f"run {run.id[:12]} {name} (not written by the run)",
                path,
                "changed",
                None,
                file_sha256(path),
            )
            for name in KEPT_FILES
            if name not in kept and (path := Path(run.run_dir) / name).is_file()
        ]
    return checks


def verify_run_files(run: RunRecord) -> None:
    """Raise IntegrityError unless a finished run's files are the ones it wrote."""
    for check in run_file_checks(run):
        _raise_unless_ok(check)


def verify_store(ws: Workspace) -> list[FileCheck]:
    """Every stored model file, manifest and finished run's kept files against its digest."""
    checks = [model_file_check(mv) for mv in ws.catalog.list_models()]
    checks += [manifest_check(ws, dv) for dv in ws.catalog.list_datasets()]
    for run in ws.catalog.list_runs(limit=None):
        if run.status != "running":  # (a running run replaces its checkpoint as it goes)
            checks += run_file_checks(run)
    return [
        replace(c, status="outside")
        if c.status in ("ok", "recorded") and not c.path.is_relative_to(ws.home)
        else c
        for c in checks
    ]
