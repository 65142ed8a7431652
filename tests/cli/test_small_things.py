"""What users notice first: the version, readable help, a quiet --out that never overwrites a
run by surprise, a stage line after the pass, names that suggest the right one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.cli.main import _serve_url, cli_command, main
from tests.cli.test_cli import assay as run_assay
from tests.cli.test_cli import table  # noqa: F401  (fixture)


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "assay 0.1.0"


def test_help_names_what_to_type_not_python_types(capsys: pytest.CaptureFixture[str]) -> None:
    for path, _ in _commands(cli_command()):
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert "<" not in out.replace("label_<", "").replace("score_<", ""), (path, out)
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--batch-size N" in out and "--policy PATH" in out and "--slice SLICE " in out


def test_serve_prints_the_address_to_open() -> None:
    assert _serve_url("127.0.0.1", 8000, False) == "http://127.0.0.1:8000/"
    assert _serve_url("::1", 8443, True) == "https://[::1]:8443/"
    wildcard = _serve_url("0.0.0.0", 80, False)
    assert "0.0.0.0" not in wildcard and wildcard.endswith(":80/")


def test_python_api_is_listed_and_results_print_in_one_line(
    capsys: pytest.CaptureFixture[str],
    table: dict[str, Path],  # noqa: F811
) -> None:
    assert {"validate", "add_model", "add_dataset", "ValidationResult"} <= set(dir(assay))
    home = table["home"]
    assay.add_dataset("parts", table["csv"], label_column="verdict", id_column="part", home=home)
    assay.add_model("m", table["onnx"], spec=table["spec"], home=home)
    v = assay.validate(model="m", dataset="parts", home=home)
    text = repr(v)
    assert "\n" not in text and len(text) < 400, text
    assert text.startswith("<Validation m@1 on parts@1: PASS, accuracy 0.")
    assert "200 items, 0 not judged" in text and "report.html" in text
    assert repr(v.result).startswith("<ValidationResult m@1 on parts@1")


def _validate(capsys: pytest.CaptureFixture[str], t: dict[str, Path], *more: str) -> Any:
    return run_assay(
        capsys,
        t["home"],
        "validate",
        "--model",
        "m",
        "--dataset",
        "parts",
        "--no-profile",
        "--no-explore",
        *more,
    )


def test_out_refuses_another_runs_folder_unless_overwrite(
    capsys: pytest.CaptureFixture[str],
    table: dict[str, Path],  # noqa: F811
) -> None:
    home = table["home"]
    assert run_assay(capsys, home, "dataset", "add", "parts", str(table["csv"]),
                     "--label-column", "verdict", "--id-column", "part")[0] == 0  # fmt: skip
    assert run_assay(capsys, home, "model", "add", "m", str(table["onnx"]),
                     "--spec", str(table["spec"]))[0] == 0  # fmt: skip
    out = table["tmp"] / "out"
    code, _, err = _validate(capsys, table, "--out", str(out))
    assert code == 0
    # The pass is followed by a stage line, not a silent wait.
    assert "finalising" in err and "writing the report" in err
    first = json.loads((out / "result.json").read_text())["run_id"]
    (out / "comparison.parquet").write_bytes(b"left by an older run")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    code, _, err = _validate(capsys, table, "--out", str(out))
    assert code == 2 and err.count("\n") == 1
    assert "already holds another run's files" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched

    code, _, _ = _validate(capsys, table, "--out", str(out), "--overwrite")
    assert code == 0
    second = json.loads((out / "result.json").read_text())["run_id"]
    assert second != first
    assert not (out / "comparison.parquet").exists()  # no file of the old run stays beside it


def test_names_suggest_the_closest_one(
    capsys: pytest.CaptureFixture[str],
    table: dict[str, Path],  # noqa: F811
) -> None:
    home = table["home"]
    code, _, err = run_assay(capsys, home, "dataset", "add", "parts", str(table["csv"]),
                             "--label-column", "verdit", "--id-column", "part")  # fmt: skip
    assert code == 2 and "did you mean 'verdict'?" in err
    assert run_assay(capsys, home, "dataset", "add", "parts", str(table["csv"]),
                     "--label-column", "verdict", "--id-column", "part")[0] == 0  # fmt: skip
    assert run_assay(capsys, home, "model", "add", "scanner", str(table["onnx"]),
                     "--spec", str(table["spec"]))[0] == 0  # fmt: skip
    code, _, err = run_assay(capsys, home, "validate", "--model", "scaner", "--dataset", "parts")
    assert code == 2 and "model scaner not found (did you mean 'scanner'?)" in err
    code, _, err = run_assay(capsys, home, "validate", "--model", "scanner@7", "--dataset", "part")
    assert code == 2 and "scanner@7 not found (versions: scanner@1 to @1)" in err
    code, _, err = run_assay(
        capsys, home, "validate", "--model", "scanner", "--dataset", "parts", "--slice", "Speed"
    )
    assert code == 2 and "did you mean 'speed'?" in err
