"""The CLI end to end: commands, outputs, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assay.cli.main import main
from tests.datasets.test_readers import make_class_folders
from tests.models import fit_logistic, tabular_onnx, write_spec


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def table(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = np.where(x.sum(axis=1) > 0, "fail", "pass")
    csv = tmp_path / "parts.csv"
    csv.write_text(
        "part,Torque [Nm],speed,verdict\n"
        + "".join(
            f"P{i},{a:.5f},{b:.5f},{v}\n" for i, ((a, b), v) in enumerate(zip(x, y, strict=True))
        )
    )
    onnx = tabular_onnx(fit_logistic(x.astype(np.float32), y), 2, tmp_path / "m.onnx")
    spec = write_spec(
        tmp_path / "m.yaml",
        labels=["fail", "pass"],
        input={"kind": "tabular", "columns": ["Torque [Nm]", "speed"]},
    )
    return {"csv": csv, "onnx": onnx, "spec": spec, "home": tmp_path / "home", "tmp": tmp_path}


def test_add_list_show_validate(capsys: pytest.CaptureFixture[str], table: dict[str, Path]) -> None:
    home = table["home"]
    add = [
        "dataset",
        "add",
        "parts",
        str(table["csv"]),
        "--label-column",
        "verdict",
        "--id-column",
        "part",
    ]
    code, out, _ = assay(capsys, home, *add)
    assert code == 0 and "added parts@1" in out
    code, out, _ = assay(capsys, home, *add)
    assert code == 0 and "unchanged" in out
    assert "parts@1" in assay(capsys, home, "dataset", "list")[1]
    assert "Torque [Nm]" in assay(capsys, home, "dataset", "show", "parts")[1]
    code, out, _ = assay(
        capsys, home, "model", "add", "press", str(table["onnx"]), "--spec", str(table["spec"])
    )
    assert code == 0 and "added press@1" in out
    assert "press@1" in assay(capsys, home, "model", "list")[1]
    assert "features" in assay(capsys, home, "model", "show", "press@1")[1]
    out_dir = table["tmp"] / "runs" / "first"
    code, out, _ = assay(
        capsys, home, "validate", "--model", "press", "--dataset", "parts", "--out", str(out_dir)
    )
    assert code == 0 and "accuracy" in out and "report:" in out
    result = json.loads((out_dir / "result.json").read_text())
    assert result["n_items"] == 200 and result["labels"] == ["fail", "pass"]
    run_id = result["run_id"]
    assert "finished" in assay(capsys, home, "run", "list")[1]
    assert "accuracy" in assay(capsys, home, "run", "show", run_id[:8])[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dataset", "add", "x", "/no/such/path"], "path does not exist"),
        (
            ["dataset", "add", "x", "{csv}", "--label-column", "nope"],
            "label column 'nope' not found",
        ),
        (["dataset", "add", "x", "{csv}", "--format", "hdf5"], "unknown dataset format 'hdf5'"),
        (["model", "add", "m", "{spec}", "--spec", "{spec}"], "unsupported model format .yaml"),
        (["model", "add", "m", "{junk}", "--spec", "{spec}"], "not a valid ONNX model"),
        (["model", "add", "m", "{onnx}", "--spec", "{badspec}"], "spec: labels must be a list"),
        (["model", "add", "m", "{onnx}", "--spec", "{badyaml}"], "not valid YAML at line 2"),
        (["model", "add", "m", "{onnx}", "--spec", "{mismatch}"], "spec produces [N, 3]"),
        (["validate", "--model", "ghost", "--dataset", "parts"], "model ghost not found"),
        (["dataset", "add", "bad/name", "{csv}"], "invalid dataset name"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_problem(
    capsys: pytest.CaptureFixture[str], table: dict[str, Path], args: list[str], message: str
) -> None:
    tmp = table["tmp"]
    (tmp / "junk.onnx").write_bytes(b"\x00\x01garbage")
    (tmp / "bad.yaml").write_text("labels: [one]\ninput: {kind: tabular, columns: [a]}\n")
    (tmp / "badyaml.yaml").write_text("labels: [a, b]\n  input: : :\n")
    write_spec(
        tmp / "mismatch.yaml",
        labels=["fail", "pass"],
        input={"kind": "tabular", "columns": ["a", "b", "c"]},
    )
    files = {
        "csv": table["csv"],
        "spec": table["spec"],
        "onnx": table["onnx"],
        "junk": tmp / "junk.onnx",
        "badspec": tmp / "bad.yaml",
        "badyaml": tmp / "badyaml.yaml",
        "mismatch": tmp / "mismatch.yaml",
    }
    from assay.services.workspace import Workspace

    Workspace.open(table["home"]).close()  # a store, without the model it is asked for
    code, _, err = assay(
        capsys, table["home"], *[a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", "--model", "m"]) == 2
    assert "validate needs --model and --dataset (or --resume RUN_ID)" in capsys.readouterr().err
    assert main(["dataset", "add"]) == 2
    assert "Missing argument" in capsys.readouterr().err


def test_installed_console_script_reports_exit_codes(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "assay"
    env = {**os.environ, "ASSAY_HOME": str(tmp_path / "home")}
    bad = subprocess.run(
        [str(exe), "dataset", "add", "x", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and "path does not exist" in bad.stderr
    ok = subprocess.run(
        [str(exe), "dataset", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0


def test_folder_dataset_through_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = make_class_folders(tmp_path / "tiles")
    code, out, _ = assay(capsys, tmp_path / "home", "dataset", "add", "tiles", str(root))
    assert code == 0 and "7 items" in out and "ignored 3 file(s)" in out


def test_an_interrupted_command_says_so(
    capsys: pytest.CaptureFixture[str], table: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM: exit 130 and one line. Typer turns KeyboardInterrupt into exit 130
    itself, so the line was never printed: a CI log of a killed run ended mid progress bar."""
    import assay.services.datasets as datasets

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("signal 15")

    monkeypatch.setattr(datasets, "register_dataset", interrupted)
    code, _, err = assay(capsys, table["home"], "dataset", "add", "parts", str(table["csv"]))
    assert code == 130
    assert err.strip() == "interrupted (a run in progress is recorded as interrupted)", err


def test_an_internal_error_is_exit_3_with_one_line_and_a_log(
    capsys: pytest.CaptureFixture[str], table: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is not bad input (2) and not a failed verdict (1): exit 3, one line, a log."""
    import assay.services.datasets as datasets

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(datasets, "register_dataset", broken)
    monkeypatch.setenv("ASSAY_HOME", str(table["home"]))
    (table["home"] / "logs").mkdir(parents=True)
    code, _, err = assay(capsys, table["home"], "dataset", "add", "parts", str(table["csv"]))
    assert code == 3
    assert len(err.strip().splitlines()) == 1, err
    assert "internal error: ZeroDivisionError: division by zero" in err
    (log,) = (table["home"] / "logs").glob("crash-*.log")
    assert "Traceback" in log.read_text() and "second line" in log.read_text()
    # With --home alone (no ASSAY_HOME), the log goes to that store's logs/ too, not to the
    # system's temporary folder (a review).
    log.unlink()
    monkeypatch.delenv("ASSAY_HOME")
    code, _, err = assay(capsys, table["home"], "dataset", "add", "parts", str(table["csv"]))
    assert code == 3 and str(table["home"] / "logs") in err
    assert len(list((table["home"] / "logs").glob("crash-*.log"))) == 1
