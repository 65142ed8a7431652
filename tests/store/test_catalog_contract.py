"""The catalog's contract, on SQLite and on a real PostgreSQL server: the same migrations, the
same answers. Every backend Assay supports must pass every test here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from assay.core.errors import InputError, NotFoundError
from assay.core.records import VersionRef
from assay.store.access import AccessStore
from assay.store.catalog import SqlCatalog, sqlalchemy_url
from assay.store.jobs import JobStore
from tests.postgres import postgres_server


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = f"t_{uuid.uuid4().hex[:12]}"  # a fresh database per test
    admin = create_engine(sqlalchemy_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def catalog(url: str) -> Iterator[SqlCatalog]:
    c = SqlCatalog.open(url)
    yield c
    c.close()


def dataset(name: str = "scans", version: str = "a" * 64, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "format": "table",
        "kind": "tabular",
        "source": "/data/scans.csv",
        "options": {"label_column": "label", "nested": {"ü": [1, 2.5, None]}},
        "n_items": 10,
        "label_counts": {"ok": 7, "défaut": 3},
        "columns": [{"name": "line", "type": "string"}],
        "manifest_path": "/store/m.parquet",
        "notes": ["ünïcödé note"],
        **more,
    }


def model(name: str = "scanner", version: str = "b" * 64) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "runtime": "onnx",
        "file_path": "/store/m.onnx",
        "file_name": "m.onnx",
        "size_bytes": 1234,
        "spec": {"labels": ["ok", "défaut"]},
        "signature": {"inputs": []},
    }


def test_migrations_are_idempotent(url: str) -> None:
    SqlCatalog.open(url).close()
    again = SqlCatalog.open(url)  # upgrading an up-to-date schema changes nothing
    assert again.list_datasets() == []
    again.close()


def test_versions_are_numbered_per_name_and_resolved_by_any_reference(catalog: SqlCatalog) -> None:
    first = catalog.add_dataset(**dataset())
    second = catalog.add_dataset(**dataset(version="ab" + "c" * 62))
    other = catalog.add_dataset(**dataset(name="other"))
    assert (first.number, second.number, other.number) == (1, 2, 1)
    assert first.options["nested"] == {"ü": [1, 2.5, None]} and first.label_counts["défaut"] == 3
    assert catalog.get_dataset(VersionRef.parse("scans", "dataset")).number == 2
    assert catalog.get_dataset(VersionRef.parse("scans@1", "dataset")).id == first.id
    assert catalog.get_dataset(VersionRef.parse("scans@abcc", "dataset")).id == second.id
    with pytest.raises(NotFoundError):
        catalog.get_dataset(VersionRef.parse("scans@9", "dataset"))
    assert catalog.find_dataset("scans", "a" * 64) == first
    assert [d.ref for d in catalog.list_datasets()] == ["other@1", "scans@1", "scans@2"]
    assert first.created_at.tzinfo is not None or catalog.engine.dialect.name == "sqlite"


def test_ambiguous_digest_prefix(catalog: SqlCatalog) -> None:
    catalog.add_dataset(**dataset(version="ab" + "1" * 62))
    catalog.add_dataset(**dataset(version="ab" + "2" * 62))
    with pytest.raises(InputError, match="ambiguous"):
        catalog.get_dataset(VersionRef.parse("scans@ab", "dataset"))
    assert catalog.get_dataset(VersionRef.parse("scans@ab22", "dataset")).number == 2


def test_runs_start_finish_once_and_are_found_by_prefix(catalog: SqlCatalog) -> None:
    d = catalog.add_dataset(**dataset())
    m = catalog.add_model(**model())
    assert catalog.add_model(**model(version="c" * 64)).number == 2
    run = catalog.create_run(
        id="f00d" + "0" * 28,
        model_id=m.id,
        dataset_id=d.id,
        config={},
        environment={},
        run_dir="/r",
    )
    assert run.status == "running" and catalog.find_finished_run(m.id, d.id) is None
    done = catalog.finish_run(run.id, "finished", n_items=10, n_failed=1)
    assert done.status == "finished" and done.n_failed == 1
    with pytest.raises(InputError, match="already ended"):
        catalog.finish_run(run.id, "failed")
    assert catalog.get_run("f00d").id == run.id
    with pytest.raises(NotFoundError):
        catalog.get_run("f0_d")  # LIKE wildcards in a typed prefix match nothing
    assert catalog.find_finished_run(m.id, d.id) == done
    assert [r.id for r in catalog.list_runs()] == [run.id]
    with pytest.raises(IntegrityError):  # a run of a model that does not exist
        catalog.create_run(
            id="x" * 32, model_id=999, dataset_id=d.id, config={}, environment={}, run_dir="/r"
        )


def test_an_interrupted_run_is_claimed_by_one_holder_of_two(catalog: SqlCatalog) -> None:
    """Two processes resuming one run: the first takes it back to running, the second is told."""
    from datetime import timedelta

    from assay.store.catalog import now
    from assay.store.leases import claim_run, expire_leases

    d, m = catalog.add_dataset(**dataset()), catalog.add_model(**model())
    run = catalog.create_run(
        id="e" * 32,
        model_id=m.id,
        dataset_id=d.id,
        config={},
        environment={},
        run_dir="/r",
        holder="gone-host:1",
    )
    with pytest.raises(InputError, match="is running: only an interrupted run"):
        claim_run(catalog, run.id, "a:1")
    (expired,) = expire_leases(catalog, at=now() + timedelta(seconds=61))
    assert expired.status == "interrupted"
    taken = claim_run(catalog, run.id, "host-a:1")
    assert (taken.status, taken.holder, taken.finished_at, taken.error) == (
        "running",
        "host-a:1",
        None,
        None,
    )
    with pytest.raises(InputError, match="is running: only an interrupted run"):
        claim_run(catalog, run.id, "host-b:2")
    with pytest.raises(NotFoundError):
        claim_run(catalog, "0" * 32, "host-b:2")
    assert catalog.finish_run(run.id, "finished").status == "finished"
    with pytest.raises(InputError, match="is finished"):
        claim_run(catalog, run.id, "host-b:2")


def test_tokens_sessions_and_jobs(catalog: SqlCatalog) -> None:
    access, jobs = AccessStore(catalog), JobStore(catalog)
    token, secret = access.create_token("line-3", "validator")
    assert access.check_token(secret) == token and access.check_token("nope") is None
    with pytest.raises(InputError, match="already exists"):
        access.create_token("line-3", "viewer")
    session = access.open_session(token)
    assert access.check_session(session) == token
    access.revoke_token("line-3")
    assert access.check_token(secret) is None and access.check_session(session) is None

    job = jobs.create({"model": "m@1", "dataset": "d@1"}, "line-3")
    assert jobs.start(job.id, "host:1") is True
    assert jobs.start(job.id, "host:1") is False  # two workers never take the same job
    jobs.update(job.id, progress_done=5, progress_total=10)
    assert jobs.get(job.id).progress_done == 5
    assert jobs.request_cancel(job.id).cancel_requested and jobs.cancel_requested(job.id)
    queued = jobs.create({"model": "m@1", "dataset": "d@2"}, "line-3")
    assert jobs.request_cancel(queued.id).status == "cancelled"
    assert jobs.start(queued.id, "host:1") is False
    assert [j.id for j in jobs.list()] == [queued.id, job.id]


def test_a_whole_validation_on_the_backend(url: str, tmp_path: Path) -> None:
    from assay.services.datasets import register_dataset
    from assay.services.models import register_model
    from assay.services.validation import validate
    from assay.services.workspace import Workspace
    from tests.models import brightness_onnx, write_spec
    from tests.web.conftest import SIZE, bright_and_dark

    ws = Workspace.open(tmp_path / "home", database_url=url)
    register_dataset(ws, "scans", bright_and_dark(tmp_path / "scans"))
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["defect", "ok"],
        input={"kind": "image", "size": list(SIZE), "color": "grayscale"},
    )
    register_model(ws, "bright", brightness_onnx(tmp_path / "m.onnx", SIZE), spec)
    outcome = validate(ws, "bright", "scans")
    (run,) = ws.catalog.list_runs()
    assert run.id == outcome.result.run_id and run.status == "finished" and run.n_items == 40
    assert ws.catalog.find_finished_run(run.model_id, run.dataset_id) == run
    ws.close()


def test_the_head_read_from_the_files_is_alembics_head() -> None:
    """Opening an up-to-date catalog skips Alembic, trusting a head read from the migration
    files: it must be the one Alembic computes."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from assay.store.catalog import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_a_catalog_behind_the_newest_migration_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    SqlCatalog.open(url).close()
    engine = create_engine(url)
    with engine.begin() as c:  # as if the catalog had been written by the previous release
        c.execute(text("UPDATE alembic_version SET version_num = '0003'"))
        for table, column in [
            ("runs", "holder"),
            ("runs", "heartbeat_at"),
            ("jobs", "holder"),
            ("jobs", "heartbeat_at"),
            ("jobs", "attempts"),
        ]:  # what migration 0004 added
            c.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    engine.dispose()
    catalog = SqlCatalog.open(url)  # upgrades: 0004 adds the column again
    with catalog.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0004"
        c.execute(text("SELECT holder FROM runs"))
    catalog.close()
