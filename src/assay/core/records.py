"""Catalog records: dataset versions, model versions and runs, as plain immutable data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from assay.core.errors import InputError

_REF = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,199})(?:@(?P<version>[A-Za-z0-9][A-Za-z0-9_-]{0,99}))?$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")
_HEX = re.compile(r"^[0-9a-f]+$")


def check_name(name: str, what: str) -> str:
    """Names are 1-200 characters of letters, digits, '.', '_' and '-' (no '@', no '/')."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"invalid {what} name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def check_alias(alias: str) -> str:
    """An alias starts with a letter and holds lower-case letters, digits, '_' and '-', so that
    it can never be read as a version number (``@3``)."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise InputError(
            f"invalid alias {alias!r}: start with a letter; use lower-case letters, digits, "
            "'_' or '-'"
        )
    return alias


@dataclass(frozen=True)
class VersionRef:
    """``name`` (latest), ``name@3`` (version number), ``name@production`` (an alias, models
    only) or ``name@9f2c1a`` (digest prefix). A word that is also hex (``cafe``) is tried as an
    alias first."""

    name: str
    number: int | None = None
    digest_prefix: str | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, what: str) -> VersionRef:
        match = _REF.fullmatch(text.strip())
        if match is None:
            raise InputError(f"invalid {what} reference {text!r}: expected NAME or NAME@VERSION")
        version = match["version"]
        if version is None:
            return cls(match["name"])
        if version.isdigit() and len(version) < 6:
            return cls(match["name"], number=int(version))
        word = version.lower()
        if not (_HEX.fullmatch(word) or _ALIAS.fullmatch(word)):
            raise InputError(
                f"invalid {what} reference {text!r}: after '@' give a version number, an alias "
                "or a digest prefix"
            )
        return cls(
            match["name"],
            digest_prefix=word if _HEX.fullmatch(word) else None,
            alias=word if _ALIAS.fullmatch(word) else None,
        )

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.name}@{self.number}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.digest_prefix is not None:
            return f"{self.name}@{self.digest_prefix}"
        return self.name


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    name: str
    number: int
    version: str
    format: str
    kind: str
    source: str
    options: dict[str, Any]
    n_items: int
    label_counts: dict[str, int]
    columns: list[dict[str, str]]
    manifest_path: str
    notes: list[str]
    created_at: datetime
    manifest_sha256: str | None = None
    # validation; training (audited for leakage); production (an unlabelled sample of what the
    # line makes now, for coverage audits). Models are validated on validation sets only.
    role: str = "validation"

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"

    def __repr__(self) -> str:
        # The dataclass's own repr printed every column (20 kB for SECOM in a notebook cell).
        return (
            f"<DatasetVersion {self.ref} ({self.kind}, {self.format}, {self.role}): "
            f"{self.n_items:,} items, {len(self.columns)} columns, version {self.version[:12]}>"
        )


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str
    number: int
    version: str
    runtime: str
    file_path: str
    file_name: str
    size_bytes: int
    spec: dict[str, Any]
    signature: dict[str, Any]
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"


DATASET_ROLES = ("validation", "training", "production")

RunStatus = Literal["queued", "running", "interrupted", "finished", "failed", "cancelled"]
# The run's state machine: a run ends once (finished, failed, cancelled are final); an
# interrupted one may run again from its checkpoint (``assay validate --resume``).
RUN_NEXT: Mapping[str, frozenset[str]] = {
    # A queued run fails without running when its inputs no longer hold (a model file edited).
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"finished", "failed", "cancelled", "interrupted"}),
    "interrupted": frozenset({"running", "failed"}),
}


@dataclass(frozen=True)
class RunRecord:
    id: str
    model_id: int
    dataset_id: int
    status: str
    config: dict[str, Any]
    environment: dict[str, Any]
    started_at: datetime
    run_dir: str
    finished_at: datetime | None = None
    n_items: int | None = None
    n_failed: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    artifact_sha256: dict[str, str] | None = None
    holder: str | None = None
    heartbeat_at: datetime | None = None
    origin: str | None = None
    baseline_model_id: int | None = None
    verdict: str | None = None
    headline_metric: str | None = None
    headline_value: float | None = None
    headline_low: float | None = None
    headline_high: float | None = None
    duration_s: float | None = None
    note: str | None = None


# What a finished run's row keeps of its result for the list of runs (see ``run_summary``).
SUMMARY_FIELDS = (
    "verdict",
    "headline_metric",
    "headline_value",
    "headline_low",
    "headline_high",
    "duration_s",
)


@dataclass(frozen=True)
class Decision:
    """A decision taken on a dataset version: a validation's verdict (kind ``validation``) or a
    comparison's (``comparison``). Looks of an anytime-valid comparison are not decisions."""

    id: int
    dataset_id: int
    model_id: int
    run_id: str | None
    kind: str
    verdict: str
    decided_at: datetime


@dataclass(frozen=True)
class RunQuery:
    """A page of the list of runs: filters (all optional, combined with AND), order, page."""

    model: str | None = None  # a model name, or NAME@N for one version
    dataset: str | None = None
    verdict: str | None = None  # pass | fail | inconclusive | none (no verdict yet)
    status: str | None = None
    tag: str | None = None
    origin: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "started_at"
    descending: bool = True
    offset: int = 0
    limit: int = 50


SORTABLE = (
    "started_at",
    "duration_s",
    "headline_value",
    "n_items",
    "n_failed",
    "verdict",
    "status",
)


@dataclass(frozen=True)
class ModelAlias:
    name: str
    alias: str
    model_id: int
    number: int
    set_by: str
    set_at: datetime


ROLES = ("viewer", "validator", "admin")  # each role may do everything the ones before it may


@dataclass(frozen=True)
class Token:
    """An API token's record (never the secret itself)."""

    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None

    def may(self, role: str) -> bool:
        """Whether this token's role includes ``role``."""
        return self.revoked_at is None and ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class Job:
    """A validation queued through the web, and how far the worker has got with it."""

    id: str
    status: str  # queued | running | finished | failed | cancelled
    request: dict[str, Any]
    created_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress_done: int = 0
    progress_total: int | None = None
    cancel_requested: bool = False
    run_id: str | None = None
    verdict: str | None = None
    error: str | None = None
    holder: str | None = None
    heartbeat_at: datetime | None = None
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "request": self.request,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "progress": {"done": self.progress_done, "total": self.progress_total},
            "cancel_requested": self.cancel_requested,
            "run_id": self.run_id,
            "verdict": self.verdict,
            "error": self.error,
        }
