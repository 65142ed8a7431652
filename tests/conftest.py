"""Shared fixtures: a fresh workspace per test, the real datasets in ../shared/data, artifacts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.services.workspace import Workspace

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
