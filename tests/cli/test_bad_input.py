"""Bad input gets one clear line and exit 2; the store refuses to lose its catalog."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from assay.cli.main import main
from tests.models import registered_table_model, write_spec

# Nine levels of nine aliases: 387 bytes that expand to 9**9 (387 million) strings.
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_exit_2(result: tuple[int, str, str], *needles: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert len(err) < 1200
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    made = registered_table_model(tmp_path, rows=200)
    capsys.readouterr()
    return made


def add_model(
    capsys: pytest.CaptureFixture[str], store: dict[str, Path], spec: Path
) -> tuple[int, str, str]:
    """``assay model add x`` with the store's model file and ``spec``."""
    return cli(
        capsys,
        "model",
        "add",
        "x",
        str(store["onnx"]),
        "--spec",
        str(spec),
        "--home",
        str(store["home"]),
    )


def validate(store: dict[str, Path], *extra: str) -> list[str]:
    return [
        "validate",
        "--model",
        "m",
        "--dataset",
        "t",
        "--no-profile",
        "--home",
        str(store["home"]),
        *extra,
    ]


def test_yaml_alias_bombs_are_refused_at_once(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = store["tmp"] / "bomb.yaml"
    bomb.write_text(BOMB + "checks: [cohen_kappa > 0]\n")
    one_line_exit_2(
        cli(capsys, *validate(store, "--policy", str(bomb))), "bomb.yaml line 2", "aliases"
    )
    spec = store["tmp"] / "spec-bomb.yaml"
    spec.write_text(BOMB + "labels: [bad, good]\n")
    one_line_exit_2(
        add_model(capsys, store, spec),
        "aliases",
    )


@pytest.mark.parametrize("which", ["spec", "policy"])
def test_files_that_are_not_utf8_are_named(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str], which: str
) -> None:
    path = store["tmp"] / f"{which}.yaml"
    path.write_bytes("labels: [bad, good]\n# caf\xe9\n".encode("latin-1"))
    if which == "spec":
        args = [
            "model",
            "add",
            "x",
            str(store["onnx"]),
            "--spec",
            str(path),
            "--home",
            str(store["home"]),
        ]
    else:
        args = validate(store, "--policy", str(path))
    one_line_exit_2(cli(capsys, *args), f"{which}.yaml: not UTF-8")


def test_numbers_in_exponent_form_are_numbers(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML 1.1 reads 1e3 as a string; people (and JSON) mean a number."""
    policy = store["tmp"] / "p.yaml"
    policy.write_text("costs: {false_alarm: 1, missed_defect: 5e1}\nchecks: [cohen_kappa > 0]\n")
    code, _, err = cli(capsys, *validate(store, "--policy", str(policy), "--no-explore"))
    assert code in (0, 1), err


def test_an_image_size_beyond_memory_is_refused_before_anything_is_allocated(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(
        store["tmp"] / "huge.yaml",
        labels=["bad", "good"],
        input={"kind": "image", "size": [200000, 200000]},
    )
    one_line_exit_2(
        add_model(capsys, store, spec),
        "input.size [200000, 200000] is over 8192 pixels a side",
    )


def test_a_truncated_catalog_is_refused_never_recreated_empty(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    home = store["home"]
    backups = store["tmp"] / "backups"
    code, out, _ = cli(capsys, "store", "backup", str(backups), "--home", str(home))
    assert code == 0 and "catalog backed up to" in out
    (backup,) = backups.glob("catalog-*.db")
    catalog = home / "catalog.db"
    for leftover in home.glob("catalog.db-*"):
        leftover.unlink()  # what a crash might leave: only the truncated main file
    catalog.write_bytes(b"")
    one_line_exit_2(
        cli(capsys, "dataset", "list", "--home", str(home)), "is empty (0 bytes)", "store restore"
    )
    assert catalog.stat().st_size == 0  # untouched: nothing silently re-created
    catalog.write_bytes(b"this is not a database" * 100)
    one_line_exit_2(cli(capsys, "model", "list", "--home", str(home)), "cannot be read")
    # Another program's database (a review): Assay's schema was written into it, `store verify`
    # said "0 stored files checked, all match", and every dataset, model and run was orphaned.
    import sqlite3

    catalog.unlink()
    with contextlib.closing(sqlite3.connect(catalog)) as foreign:
        foreign.execute("CREATE TABLE x (a)")
        foreign.commit()
    for command in (["store", "verify"], ["model", "list"]):
        one_line_exit_2(
            cli(capsys, *command, "--home", str(home)), "holds tables of another program (x)"
        )
    with contextlib.closing(sqlite3.connect(catalog)) as foreign:
        assert [r[0] for r in foreign.execute("SELECT name FROM sqlite_master")] == ["x"]
        # ... nor under an (empty) Alembic table, nor at a revision Assay does not know (it
        # crashed: "Can't locate revision").
        foreign.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        foreign.commit()
    one_line_exit_2(cli(capsys, "run", "list", "--home", str(home)), "tables of another program")
    with contextlib.closing(sqlite3.connect(catalog)) as foreign:
        foreign.execute("INSERT INTO alembic_version VALUES ('abc123')")
        foreign.commit()
    one_line_exit_2(cli(capsys, "run", "list", "--home", str(home)), "schema revision 'abc123'")
    with contextlib.closing(sqlite3.connect(catalog)) as foreign:
        names = {r[0] for r in foreign.execute("SELECT name FROM sqlite_master")}
        assert names == {"x", "alembic_version"}
    catalog.unlink()
    one_line_exit_2(
        cli(capsys, "run", "list", "--home", str(home)), "is missing but the store holds"
    )
    code, out, _ = cli(capsys, "store", "restore", str(backup), "--home", str(home))
    assert code == 0 and "restored" in out
    code, out, _ = cli(capsys, "dataset", "list", "--home", str(home))
    assert code == 0 and "t@1" in out
    one_line_exit_2(
        cli(capsys, "store", "restore", str(store["spec"]), "--home", str(home)),
        "not a SQLite database",
    )


def small_png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("how", ["dot-dot", "absolute", "symlink"])
def test_items_outside_the_dataset_folder_are_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """A manifest or a folder must not pull in files from elsewhere on the machine."""
    secret = small_png(tmp_path / "elsewhere" / "secret.png")
    root = tmp_path / "data"
    small_png(root / "ok" / "a.png")
    if how == "symlink":
        (root / "ok" / "b.png").symlink_to(secret)
        target = root
    else:
        entry = "../elsewhere/secret.png" if how == "dot-dot" else str(secret)
        target = root / "manifest.csv"
        target.write_text(f"path,label\nok/a.png,ok\n{entry},ok\n")
    home = str(tmp_path / "home")
    one_line_exit_2(
        cli(capsys, "dataset", "add", "d", str(target), "--home", home),
        "points outside the dataset folder",
    )
    code, out, err = cli(
        capsys, "dataset", "add", "d", str(target), "--allow-outside-paths", "--home", home
    )
    assert code == 0, err
    assert "2 items" in out


def test_duplicate_item_ids_are_refused_with_examples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("serial,a,label\nS1,0.1,bad\nS2,0.2,good\nS1,0.3,good\nS3,0.4,bad\nS3,0.5,bad\n")
    one_line_exit_2(
        cli(
            capsys,
            "dataset",
            "add",
            "t",
            str(csv),
            "--id-column",
            "serial",
            "--home",
            str(tmp_path / "h"),
        ),
        "2 item id(s) occur more than once",
        "'S1', 'S3'",
    )
    assert cli(capsys, "dataset", "list", "--home", str(tmp_path / "h"))[1].count("t@") == 0


def test_nan_in_a_float_label_column_is_a_missing_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """pandas writes a missing label into a float column as NaN: not judged, never a crash."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"a": [0.1, 0.2, 0.3, 0.4], "label": [0.0, 1.0, float("nan"), 1.0]}), path
    )
    code, out, err = cli(capsys, "dataset", "add", "t", str(path), "--home", str(tmp_path / "h"))
    assert code == 0, err
    assert "1 item(s) have no label" in out
    code, out, _ = cli(capsys, "dataset", "show", "t", "--home", str(tmp_path / "h"))
    assert "labels: 0 (1), 1 (2)" in out  # 0.0 and 1.0 read as "0" and "1"; NaN as no label


def test_an_image_file_name_that_is_not_utf8_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "imgs"
    small_png(root / "ok" / "plain.png")
    import os

    os.rename(root / "ok" / "plain.png", os.fsencode(root / "ok") + b"/caf\xe9.png")
    small_png(root / "ok" / "plain.png")
    one_line_exit_2(
        cli(capsys, "dataset", "add", "i", str(root), "--home", str(tmp_path / "h")),
        "is not valid UTF-8",
    )


# Found by the reader fuzzing (tests/datasets/test_reader_fuzz.py); each was exit 3 with a
# traceback (or a crash of the registration) before.


def _damaged_parquet(path: Path) -> Path:
    """A Parquet file whose footer reads but whose first page header does not decode."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [0.5] * 100, "label": ["ok", "defect"] * 50}), buffer)
    data = bytearray(buffer.getvalue())
    data[4] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _parquet_with_bytes_as_text(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels = pa.array([b"ok", b"\x9c\xff"], pa.binary()).view(pa.string())  # never validated
    pq.write_table(pa.table({"x": [1.0, 2.0], "label": labels}), path)
    return path


@pytest.mark.parametrize(
    ("name", "make", "needle"),
    [
        ("damaged.parquet", _damaged_parquet, "cannot read table"),
        ("latin1.parquet", _parquet_with_bytes_as_text, "cannot read table"),
        ("header.csv", lambda p: p.write_bytes(b"x,lab\xe9l\n1,ok\n") and p, "not UTF-8"),
        ("twice.csv", lambda p: p.write_text("x,label,label\n1,ok,ok\n") and p, "'label' appears"),
    ],
)
def test_damaged_and_odd_tables_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, make: object, needle: str
) -> None:
    path = make(tmp_path / name)  # type: ignore[operator]
    one_line_exit_2(
        cli(capsys, "dataset", "add", "d", str(path), "--home", str(tmp_path / "home")), needle
    )


def test_a_manifest_path_with_a_nul_character_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": ["a\x00.png"], "label": ["ok"]}), tmp_path / "m.parquet")
    one_line_exit_2(
        cli(capsys, "dataset", "add", "d", str(tmp_path / "m.parquet"), "--home", str(tmp_path)),
        "NUL character",
    )


def test_a_device_the_models_runtime_has_not_is_refused_before_a_run_is_recorded(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """OpenVINO's ``GPU`` for an ONNX model: one line before the run starts, never a failed run
    in the list (the web queue used to accept it and fail in the worker)."""
    one_line_exit_2(
        cli(capsys, *validate(store, "--device", "GPU")),
        "--device GPU: not for the onnx runtime (it runs on cpu or cuda)",
    )
    code, out, _ = cli(capsys, "run", "list", "--home", str(store["home"]))
    assert code == 0 and "failed" not in out


def test_a_device_the_baselines_runtime_has_not_is_refused_before_a_run_is_recorded(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An ONNX candidate on cuda against a scikit-learn baseline: the baseline's earlier run is
    taken only from the same device, so it would run on cuda and fail after the run was
    recorded (a hostile review found the failed run in the list). Refused first, in one line."""
    import skops.io as sio

    from tests.models import fit_logistic

    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 2)).astype(np.float32)
    sio.dump(fit_logistic(x, np.where(x.sum(axis=1) > 0, "bad", "good")), store["tmp"] / "b.skops")
    home = str(store["home"])
    assert cli(capsys, "model", "add", "sk", str(store["tmp"] / "b.skops"), "--spec",
               str(store["spec"]), "--home", home)[0] == 0  # fmt: skip
    one_line_exit_2(
        cli(capsys, *validate(store, "--baseline", "sk", "--device", "cuda")),
        "--device cuda: not for the sklearn runtime (it runs on the CPU only)",
    )
    code, out, _ = cli(capsys, "run", "list", "--home", home)
    assert code == 0 and "failed" not in out
    one_line_exit_2(cli(capsys, *validate(store, "--device", "cpu:1")), "cpu takes no index")


@pytest.mark.parametrize(
    ("extra", "says"),
    [(["--seed", "-1"], "--seed must be a whole number from 0"),
     (["--threads", "0"], "--threads must be at least 1"),
     (["--out", "/proc/assay-out"], "--out /proc/assay-out cannot be written")],
)  # fmt: skip
def test_settings_that_would_fail_after_the_run_are_refused_before_it(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    """``--seed -1`` crashed in the bootstrap (exit 3) and ``--out`` under /proc after the
    run was recorded as finished (a review found both); ``--threads 0`` was taken silently."""
    one_line_exit_2(cli(capsys, *validate(store, *extra)), says)
    code, out, _ = cli(capsys, "run", "list", "--home", str(store["home"]))
    assert code == 0 and "pass" not in out and "fail" not in out


def test_editing_the_out_folder_leaves_the_stored_run_alone(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--out held hard links to the store's files: a review rewrote its output folder's
    predictions.parquet with pandas, and the stored run was changed with it (every later
    reuse and baseline then refused the run)."""
    out = store["tmp"] / "out"
    assert cli(capsys, *validate(store, "--out", str(out)))[0] in (0, 1)
    with (out / "predictions.parquet").open("r+b") as f:
        f.write(b"edited")
    assert cli(capsys, "store", "verify", "--home", str(store["home"]))[0] == 0
    assert cli(capsys, *validate(store, "--out", str(store["tmp"] / "again")))[0] in (0, 1)


def test_a_store_path_that_is_a_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--home` naming a file crashed with FileExistsError (exit 3)."""
    not_a_folder = tmp_path / "notadir"
    not_a_folder.write_text("x")
    one_line_exit_2(cli(capsys, "dataset", "list", "--home", str(not_a_folder)), "is not a folder")
    one_line_exit_2(
        cli(capsys, "dataset", "list", "--home", str(not_a_folder / "below")), "is not a folder"
    )


def test_validate_in_a_folder_that_holds_no_store_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --home made an empty store there, then said 'model m not found' (and so did
    the commands that read runs, models or a dataset's history)."""
    typo = tmp_path / "hme"
    for command in (
        ["validate", "--model", "m", "--dataset", "t"],
        ["profile", "m"],
        ["compare", "abc", "def"],
        ["history", "t"],
        ["run", "show", "abc"],
        ["store", "verify"],
        # the listings and the other readers made one too (a review: `run list` on a typo
        # showed an empty table, as if nothing had ever run)
        ["run", "list"],
        ["dataset", "list"],
        ["dataset", "show", "t"],
        ["model", "list"],
        ["model", "show", "m"],
        ["model", "alias", "m@1", "production"],
        ["token", "list"],
        ["token", "revoke", "ci"],
        ["audit", "leakage", "--train", "a", "--dataset", "t"],
        ["audit", "coverage", "--production", "p.csv", "--dataset", "t"],
    ):
        one_line_exit_2(cli(capsys, *command, "--home", str(typo)), f"no Assay store at {typo}")
        assert not typo.exists(), command


def test_a_baseline_whose_scores_equal_the_candidates_is_named(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """From a review: the same file under a spec that reads it the same way (there, a ZipMap's
    labels in another order) compared as '0 fixed, 0 broken' and passed, silently. The CLI
    says the comparison measures no change."""
    spec = write_spec(
        store["tmp"] / "allow.yaml",
        labels=["bad", "good"],
        input={"kind": "tabular", "columns": ["a", "b"], "missing": "allow"},
    )
    assert add_model(capsys, store, spec)[0] == 0
    code, out, err = cli(capsys, *validate(store, "--baseline", "x", "--no-explore"))
    assert code in (0, 1), err
    # On one line, whole, as a CI log shows it (Rich cut lines at 80 columns when piped).
    assert (
        "the candidate's scores equal the baseline's (x@1) on every item both judged: this "
        "comparison measures no change\n"
    ) in out
    code, out, _ = cli(capsys, *validate(store, "--no-explore"))  # no baseline: no word of it
    assert "equal the baseline's" not in out


def test_a_demo_too_small_is_refused_and_a_small_one_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a review: `assay demo --n-items 120` exited 3 (it damaged scan 194 of 120 on
    purpose), and `--n-items 0` too."""
    from assay.demo.run import write_scan_folder

    one_line_exit_2(cli(capsys, "demo", "--n-items", "0", "--home", str(tmp_path / "h")),
                    "--n-items must lie in [100,")  # fmt: skip
    manifest = write_scan_folder(tmp_path / "scans", 120, seed=7)
    assert len(manifest.read_text().splitlines()) == 121


def test_serve_and_worker_name_what_they_cannot_use(
    store: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """From a review: a port in use or out of range and a file that is no certificate crashed
    `assay serve` (exit 3, after it had printed its address); a damaged queue.db crashed the
    worker (exit 3) and printed a traceback from the server's supervisor thread; a worker on a
    mistyped --home made an empty store and waited on it forever."""
    import socket

    home = str(store["home"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, out, err = cli(capsys, "serve", "--port", port, "--workers", "0", "--home", home)
        one_line_exit_2((code, out, err), f"cannot listen on 127.0.0.1:{port}")
        assert out == ""  # no address printed for a server that never ran
    one_line_exit_2(cli(capsys, "serve", "--port", "99999", "--home", home), "from 1 to 65535")
    spec = str(store["spec"])
    one_line_exit_2(
        cli(capsys, "serve", "--certfile", spec, "--keyfile", spec, "--home", home),
        "are not a PEM certificate and its key",
    )
    (store["home"] / "queue.db").write_bytes(b"not a database" * 100)
    for command in (["worker"], ["serve", "--port", port, "--workers", "0"]):  # free again
        one_line_exit_2(cli(capsys, *command, "--home", home), "the job queue", "cannot be read")
    typo = store["tmp"] / "hme"
    one_line_exit_2(cli(capsys, "worker", "--home", str(typo)), "no Assay store at")
    assert not typo.exists()
