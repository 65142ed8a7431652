"""Stored model files and manifests are checked against their digests whenever a run uses them."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.cli.main import main
from assay.services.workspace import Workspace
from tests.models import registered_table_model


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    made = registered_table_model(tmp_path)
    home = made["home"]
    capsys.readouterr()
    ws = Workspace.open(home)
    (mv,) = ws.catalog.list_models()
    (dv,) = ws.catalog.list_datasets()
    ws.close()
    return {"home": home, "model": Path(mv.file_path), "manifest": Path(dv.manifest_path)}


def validate(home: Path) -> int:
    return main(
        [
            "validate",
            "--model",
            "m",
            "--dataset",
            "t",
            "--no-profile",
            "--no-explore",
            "--home",
            str(home),
        ]
    )


@pytest.mark.parametrize("which", ["model", "manifest"])
def test_a_flipped_byte_in_a_stored_file_stops_the_run_naming_the_file(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str], which: str
) -> None:
    home = store["home"]
    assert validate(home) == 0
    flip_one_byte(store[which])
    capsys.readouterr()
    assert validate(home) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "has changed since it was recorded" in err and store[which].name in err
    # Nothing was recorded for the refused run.
    assert len(Workspace.open(home).catalog.list_runs()) == 1

    assert main(["store", "verify", "--home", str(home)]) == 2
    out, err = capsys.readouterr()
    assert "changed" in out and "1 of 7 stored files do not match" in err
    flip_one_byte(store[which])  # flipped back: the registered bytes again
    assert main(["store", "verify", "--home", str(home)]) == 0
    assert validate(home) == 0


def test_a_missing_model_file_is_named(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store["model"].unlink()
    capsys.readouterr()
    assert main(["profile", "m", "--home", str(store["home"])]) == 2
    assert "is missing" in capsys.readouterr().err


def test_a_manifest_registered_before_digests_gets_one_on_first_use(store: dict[str, Path]) -> None:
    from sqlalchemy import update

    from assay.store.schema import DatasetRow

    ws = Workspace.open(store["home"])
    with ws.catalog._session.begin() as s:
        s.execute(update(DatasetRow).values(manifest_sha256=None))
    assert validate(store["home"]) == 0
    (dv,) = ws.catalog.list_datasets()
    assert dv.manifest_sha256 is not None and len(dv.manifest_sha256) == 64
    flip_one_byte(store["manifest"])
    assert validate(store["home"]) == 2


def test_a_reused_baseline_whose_predictions_changed_stops_the_run(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Editing a finished baseline run's predictions (every baseline answer made wrong, so the
    candidate looks like no regression) is caught when the next validation would reuse them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    home = str(store["home"])
    onnx = store["model"]
    # The same weights with another decision threshold: another model (a twin, the same
    # weights answering the same, would be refused as the baseline).
    spec = tmp_path / "old.yaml"
    spec.write_text((tmp_path / "m.yaml").read_text() + "threshold: 0.6\n")
    assert main(["model", "add", "old", str(onnx), "--spec", str(spec), "--home", home]) == 0
    run = ["validate", "--model", "m", "--dataset", "t", "--baseline", "old", "--no-profile"]
    assert main([*run, "--no-explore", "--home", home]) in (0, 1)  # a verdict, whichever
    ws = Workspace.open(home)
    baseline = next(
        r for r in ws.catalog.list_runs() if r.model_id != ws.catalog.list_models()[0].id
    )
    path = Path(baseline.run_dir) / "predictions.parquet"
    table = pq.read_table(path)
    flipped = pa.array([not c for c in table.column("correct").to_pylist()])
    pq.write_table(
        table.set_column(table.schema.get_field_index("correct"), "correct", flipped), path
    )
    capsys.readouterr()
    assert main([*run, "--no-explore", "--home", home]) == 2
    err = capsys.readouterr().err
    assert "predictions.parquet" in err and "has changed since it was recorded" in err
    assert err.strip().endswith("restore it or run it again")  # a run is not registered
    assert main(["store", "verify", "--home", home]) == 2
    assert main(["compare", ws.catalog.list_runs()[0].id, baseline.id, "--home", home]) == 2


def test_the_same_images_from_another_folder_under_another_name_read_that_folder(
    tmp_path: Path,
) -> None:
    """A review copied a registered image folder, deleted the original and registered the copy
    as ``tiles-b``: same content, so the first folder's manifest was reused, paths and all, and
    every image read as 'not found'. The new name now reads its own folder."""
    import shutil

    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image

    from assay.datasets import columns as cols
    from assay.services.datasets import register_dataset

    rng = np.random.default_rng(0)
    for k in range(6):
        folder = tmp_path / "a" / ("bad" if k % 2 else "good")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16), np.uint8)).save(folder / f"{k}.png")
    ws = Workspace.open(tmp_path / "home")
    first = register_dataset(ws, "tiles", tmp_path / "a").dataset
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    second = register_dataset(ws, "tiles-b", tmp_path / "b").dataset
    assert second.version == first.version and second.manifest_path != first.manifest_path
    paths = pq.read_table(second.manifest_path).column(cols.PATH).to_pylist()
    assert len(paths) == 6 and all(Path(p).is_relative_to(tmp_path / "b") for p in paths)
    assert all(Path(p).exists() for p in paths)
    ws.close()


def test_a_store_copied_elsewhere_reads_and_verifies_its_own_files(
    store: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalog kept absolute paths: a store copied to another folder (a restored backup)
    read the original's files, `store verify` checked the original's and called them the
    copy's, and once the original was moved away every command stopped on "missing" files
    that sat in the copy. Paths inside the store are kept relative to it."""
    import shutil

    home = store["home"]
    assert validate(home) == 0
    copy = tmp_path / "elsewhere" / "home"
    shutil.copytree(home, copy)
    # The copy's own files: a byte flipped in the copy's manifest shows in the copy only.
    copied_manifest = copy / store["manifest"].relative_to(home)
    flip_one_byte(copied_manifest)
    capsys.readouterr()
    assert main(["store", "verify", "--home", str(copy)]) == 2
    assert "1 of 7 stored files do not match their digests: dataset t@1" in capsys.readouterr().err
    assert main(["store", "verify", "--home", str(home)]) == 0
    flip_one_byte(copied_manifest)
    # With the original gone, the copy works on its own.
    shutil.move(home, tmp_path / "gone")
    assert main(["store", "verify", "--home", str(copy)]) == 0
    assert validate(copy) == 0
    ws = Workspace.open(copy)
    try:
        (mv,) = ws.catalog.list_models()
        (dv,) = ws.catalog.list_datasets()
        runs = ws.catalog.list_runs()
        assert all(Path(p).is_relative_to(copy) for p in (mv.file_path, dv.manifest_path))
        assert all(Path(r.run_dir).is_relative_to(copy) for r in runs) and len(runs) == 2
    finally:
        ws.close()


def test_a_store_written_with_absolute_paths_and_copied_reads_the_copy(
    store: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A catalog from before paths were relative (every path absolute, into the original
    store), copied elsewhere: on open its paths point at the copy's files. Restored without
    the files, it warns, and `store verify` refuses the original's files as the copy's."""
    import shutil
    import sqlite3

    home = store["home"]
    assert validate(home) == 0
    con = sqlite3.connect(home / "catalog.db")
    with con:
        for table, column in (("datasets", "manifest_path"), ("models", "file_path"),
                              ("runs", "run_dir")):  # fmt: skip
            con.execute(f"UPDATE {table} SET {column} = ? || '/' || {column}", (str(home),))
    con.close()
    copy = tmp_path / "copy" / "home"
    shutil.copytree(home, copy)
    assert main(["store", "verify", "--home", str(copy)]) == 0
    con = sqlite3.connect(copy / "catalog.db")
    assert con.execute("SELECT run_dir FROM runs").fetchone()[0].startswith("runs/")
    con.close()
    # Only the catalog restored into an empty store: the original's files are not this one's.
    assert main(["store", "backup", str(tmp_path / "bk"), "--home", str(home)]) == 0
    (backup,) = (tmp_path / "bk").glob("catalog-*.db")  # the old store's absolute paths
    # One self-contained file: the check of the copy left its -shm and -wal beside it.
    assert [p.name for p in (tmp_path / "bk").iterdir()] == [backup.name]
    bare = tmp_path / "bare"
    capsys.readouterr()
    assert main(["store", "restore", str(backup), "--home", str(bare)]) == 0
    assert "not in" in capsys.readouterr().out
    assert main(["store", "verify", "--home", str(bare)]) == 2
    assert "read from outside this store" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["result.json", "report.html"])
def test_a_run_file_edited_after_the_run_is_refused_not_shown(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """From a review: a FAIL run's result.json edited to say PASS was shown by `run show` as
    PASS (exit 0), and its verdict.md, junit.xml and report.html had no digest at all, so
    `store verify` said all matched. Every file a run writes is digested when it finishes."""
    home = store["home"]
    assert validate(home) == 0
    ws = Workspace.open(home)
    (run,) = ws.catalog.list_runs()
    ws.close()
    assert set(run.artifact_sha256 or {}) >= {"result.json", "report.html", "predictions.parquet"}
    path = Path(run.run_dir) / name
    path.write_text(path.read_text().replace("accuracy", "accuracy "), encoding="utf-8")
    capsys.readouterr()
    assert main(["store", "verify", "--home", str(home)]) == 2
    assert name in capsys.readouterr().out
    if name == "result.json":
        assert main(["run", "show", run.id, "--home", str(home)]) == 2
        err = capsys.readouterr().err
        assert "has changed since it was recorded" in err and len(err.strip().splitlines()) == 1


def test_an_unreadable_result_of_a_run_without_digests_is_named(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run from before digests whose result.json is damaged: `run show` crashed (exit 3,
    JSONDecodeError); it names the file (exit 2)."""
    home = store["home"]
    assert validate(home) == 0
    ws = Workspace.open(home)
    (run,) = ws.catalog.list_runs()
    with ws.catalog.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE runs SET artifact_sha256 = NULL WHERE id = ?", (run.id,))
    ws.close()
    (Path(run.run_dir) / "result.json").write_text('{"run_id": ', encoding="utf-8")
    capsys.readouterr()
    assert main(["run", "show", run.id[:8], "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "is not a readable result.json" in err and len(err.strip().splitlines()) == 1
