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
from assay.store.catalog import SqlCatalog, head_revision, sqlalchemy_url
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


def _migrations_config(connection: Any = None) -> Any:
    from alembic.config import Config

    from assay.store.catalog import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@pytest.mark.parametrize("previous", ["0003", "0004"])
def test_a_catalog_behind_the_newest_migration_is_upgraded(tmp_path: Path, previous: str) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = create_engine(url)
    with engine.begin() as c:  # as if the catalog had been written by an earlier release
        command.upgrade(_migrations_config(c), previous)
        c.execute(text("INSERT INTO datasets (id, name, number, version, format, kind, source, "
                       "options, n_items, label_counts, columns, manifest_path, notes, created_at) "
                       "VALUES (1, 'kept', 1, 'v', 'folder', 'image', 's', '{}', 3, '{}', '[]', "
                       "'m', '[]', '2026-01-01')"))  # fmt: skip
    engine.dispose()
    catalog = SqlCatalog.open(url)  # upgrades to the newest migration, keeping what it held
    with catalog.engine.connect() as c:
        assert (
            c.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        )
        c.execute(text("SELECT holder, origin, headline_value, note FROM runs"))
    assert [d.ref for d in catalog.list_datasets()] == ["kept@1"]
    catalog.close()


def test_the_migrations_build_exactly_the_schema_the_code_declares(tmp_path: Path) -> None:
    """A column added to schema.py without its migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from assay.store.schema import Base

    catalog = SqlCatalog.open(f"sqlite:///{tmp_path / 'catalog.db'}")
    with catalog.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    catalog.close()
    # SQLite reports foreign keys and server defaults loosely; tables, columns, types and
    # indexes must match.
    assert [d for d in diff if d[0] not in ("add_fk", "remove_fk")] == []


def test_aliases_point_at_one_version_and_resolve_before_digests(catalog: SqlCatalog) -> None:
    first = catalog.add_model(**model(version="cafe" + "0" * 60))
    second = catalog.add_model(**model(version="beef" + "0" * 60))
    other = catalog.add_model(**model(name="other"))
    catalog.set_alias("scanner", "production", first.id, "alice")
    ref = VersionRef.parse("scanner@production", "model")
    assert (ref.alias, ref.digest_prefix) == ("production", None)
    assert catalog.get_model(ref).id == first.id
    catalog.set_alias("scanner", "production", second.id, "bob")  # moved, not duplicated
    assert catalog.get_model(ref).id == second.id
    assert [(a.alias, a.number, a.set_by) for a in catalog.aliases("scanner")] == [
        ("production", 2, "bob")
    ]
    # A word that is also hex is an alias first, then a digest prefix.
    assert catalog.get_model(VersionRef.parse("scanner@cafe", "model")).id == first.id
    catalog.set_alias("scanner", "cafe", second.id, "carol")
    assert catalog.get_model(VersionRef.parse("scanner@cafe", "model")).id == second.id
    with pytest.raises(InputError, match="not a version of scanner"):
        catalog.set_alias("scanner", "x", other.id, "mallory")
    with pytest.raises(
        NotFoundError,
        match=r"scanner@staging not found \(versions: scanner@1 to @2; aliases: cafe, production\)",
    ):
        catalog.get_model(VersionRef.parse("scanner@staging", "model"))
    catalog.remove_alias("scanner", "production")
    with pytest.raises(NotFoundError):
        catalog.get_model(ref)
    with pytest.raises(NotFoundError, match="no alias"):
        catalog.remove_alias("scanner", "production")
    # Aliases are the models': a dataset version is named by number or digest only.
    catalog.add_dataset(**dataset())
    with pytest.raises(NotFoundError):
        catalog.get_dataset(VersionRef.parse("scans@production", "dataset"))


@pytest.mark.parametrize("text", ["scanner@Prod uction", "scanner@-x", "scanner@1a-2", "a@b@c"])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        VersionRef.parse(text, "model")


def test_runs_are_listed_filtered_sorted_and_paged(catalog: SqlCatalog) -> None:
    from assay.core.records import RunQuery

    d = catalog.add_dataset(**dataset())
    m1 = catalog.add_model(**model())
    m2 = catalog.add_model(**model(version="c" * 64))
    ids = []
    for i, (m, verdict, value) in enumerate(
        [(m1, "pass", 0.9), (m2, "fail", 0.5), (m2, "pass", 0.7), (m1, None, None)]
    ):
        run_id = f"{i:032d}"
        catalog.create_run(
            id=run_id, model_id=m.id, dataset_id=d.id, config={}, environment={},
            run_dir=f"/r/{i}", origin="cli",
        )  # fmt: skip
        if verdict is not None:
            catalog.finish_run(
                run_id, "finished", n_items=10, n_failed=0,
                summary={"verdict": verdict, "headline_metric": "accuracy", "headline_value": value},
            )  # fmt: skip
        ids.append(run_id)
    catalog.set_tags(ids[2], ["rc", "line-3"])
    rows, total = catalog.query_runs(RunQuery(model="scanner@2"))
    assert total == 2 and {r.id for r in rows} == {ids[1], ids[2]}
    rows, total = catalog.query_runs(
        RunQuery(verdict="pass", sort="headline_value", descending=False)
    )
    assert [r.id for r in rows] == [ids[2], ids[0]]
    rows, _ = catalog.query_runs(RunQuery(sort="headline_value"))
    assert [r.id for r in rows][-1] == ids[3]  # no value: last, whatever the order
    assert [r.id for r in catalog.query_runs(RunQuery(tag="rc"))[0]] == [ids[2]]
    assert catalog.tags_of([ids[2], ids[0]]) == {ids[2]: ["line-3", "rc"], ids[0]: []}
    seen = [r.id for o in (0, 2) for r in catalog.query_runs(RunQuery(offset=o, limit=2))[0]]
    assert sorted(seen) == sorted(ids)
    catalog.set_note(ids[0], "dirty lens")
    assert catalog.get_run(ids[0]).note == "dirty lens"
    with pytest.raises(InputError, match="cannot sort"):
        catalog.query_runs(RunQuery(sort="id; drop table runs"))


@pytest.mark.parametrize("name", ["prod\n", "tok\n", " x", "x/y"])
def test_names_and_aliases_are_whole_matches(name: str) -> None:
    from assay.core.records import check_alias, check_name

    with pytest.raises(InputError):
        check_alias(name)
    with pytest.raises(InputError):
        check_name(name, "token")


def test_two_processes_registering_at_once_both_succeed(tmp_path: Path) -> None:
    """A crash review: concurrent `dataset add` chose one number twice and one process ended
    in an internal error (UNIQUE constraint failed). The loser takes the next number, or
    learns that the same version is stored already. On a new store, two processes both
    created its tables, and one was told the catalog 'cannot be read'."""
    import subprocess
    import sys

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    for k in range(4):
        x = np.random.default_rng(k).normal(size=2000)
        pq.write_table(pa.table({"x": x, "label": np.where(x > 0, "a", "b")}),
                       tmp_path / f"v{k}.parquet")  # fmt: skip
    home = tmp_path / "home"  # a new store: its catalog is created by the first of them
    files = [f"v{k}.parquet" for k in range(4)] + ["v0.parquet"] * 2
    command = [sys.executable, "-m", "assay", "dataset", "add", "racey"]
    procs = [
        subprocess.Popen([*command, str(tmp_path / f), "--home", str(home)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for f in files
    ]  # fmt: skip
    done = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(files), [e.decode() for _, e in done]
    from assay.services.workspace import Workspace

    versions = Workspace.open(home, create=False).catalog.list_datasets()
    assert sorted(d.number for d in versions) == [1, 2, 3, 4]


def test_a_read_only_store_is_named_as_such_not_as_damaged(tmp_path: Path) -> None:
    """A crash review: every command on a read-only store said the catalog 'cannot be read'
    and advised restoring a backup over a healthy catalog."""
    import os
    import shutil
    import subprocess
    import sys

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"x": np.arange(10.0), "label": ["a", "b"] * 5}), tmp_path / "t.parquet"
    )
    home = tmp_path / "home"
    assay = [sys.executable, "-m", "assay"]
    subprocess.run([*assay, "dataset", "add", "t", str(tmp_path / "t.parquet"), "--home",
                    str(home)], check=True, capture_output=True)  # fmt: skip
    listing = [*assay, "dataset", "list", "--home", str(home)]
    if os.geteuid() != 0:
        home.chmod(0o500)
        (home / "catalog.db").chmod(0o400)
        done = subprocess.run(listing, capture_output=True, text=True)
        home.chmod(0o700)
    elif shutil.which("unshare"):  # root writes anywhere but on a read-only mount
        script = f"mount --bind {home} {home} && mount -o remount,ro,bind {home} && " + " ".join(
            listing
        )
        done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
        if "mount" in done.stderr and done.returncode != 2:
            pytest.skip(f"no read-only mount here: {done.stderr.strip()[:200]}")
    else:
        pytest.skip("root without unshare: no way to make the store read-only")
    assert done.returncode == 2, done.stderr
    assert "is not writable" in done.stderr and "restore" not in done.stderr
