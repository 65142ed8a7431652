"""Reading runs: every read first settles runs whose holder is gone (``interrupted``), so the
CLI, the worker and the web app see the same state."""

from __future__ import annotations

from assay.core.records import RunRecord
from assay.services.workspace import Workspace
from assay.store.leases import expire_leases


def list_runs(ws: Workspace, limit: int | None = 100) -> list[RunRecord]:
    """The newest runs first, abandoned ones marked ``interrupted`` with the reason."""
    expire_leases(ws.catalog)
    return ws.catalog.list_runs(limit)


def get_run(ws: Workspace, run_id: str) -> RunRecord:
    """One run by id (or a unique prefix), its lease settled first."""
    expire_leases(ws.catalog)
    return ws.catalog.get_run(run_id)
