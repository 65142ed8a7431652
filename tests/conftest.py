"""Shared fixtures: a fresh workspace per test, the real datasets in ../shared/data, artifacts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Several xdist workers, each with OpenMP's threads for every core (scikit-learn's gradient
# boosting), starve one another: their spinning threads took a 17-second test file past five
# minutes on two cores. Each worker gets its share of the cores, set before anything loads
# OpenMP.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (_CORES or 1) // _WORKERS)))

from assay.services.workspace import Workspace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
ARTIFACTS = ROOT / "test-artifacts"


def shared_dataset(name: str) -> Path:
    """Path of a real dataset; skips outside CI when ../shared is absent, fails inside CI."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the real dataset {path} is missing")
        pytest.skip(f"real dataset {path} not present (a clone without ../shared); CI runs it")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.open(tmp_path / "home")
    yield ws
    ws.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
