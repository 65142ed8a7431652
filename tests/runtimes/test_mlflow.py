"""Models from a real MLflow registry (``models:/NAME@ALIAS``): resolved, checked against the spec
and recorded with their version and run at ``model add``; an alias that does not exist, a pickled
flavour and a signature that does not fit the spec are refused with one line (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assay.cli.main import main
from assay.core.records import VersionRef
from assay.services.workspace import Workspace
from tests.mlflow_server import log_onnx_model, running_mlflow
from tests.models import fit_logistic, tabular_onnx, write_spec


def assay(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("mlflow")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 2)).astype(np.float32)
    y = np.where(x[:, 0] - x[:, 1] > 0, "defect", "ok")
    (tmp / "press.csv").write_text(
        "a,b,label\n"
        + "".join(f"{p!r},{q!r},{v}\n" for (p, q), v in zip(x.tolist(), y, strict=True))
    )
    onnx = tabular_onnx(fit_logistic(x, y), 2, tmp / "press.onnx")
    with running_mlflow(tmp / "server") as url:
        run_id, version = log_onnx_model(url, onnx, "press", "champion", (2,), ["a", "b"])
        log_onnx_model(url, Path("sklearn"), "pickled", "champion", (2,))
        yield {"url": url, "tmp": tmp, "onnx": onnx, "run_id": run_id, "version": version}


def spec(tmp: Path, columns: tuple[str, ...] = ("a", "b")) -> Path:
    return write_spec(
        tmp / f"spec-{len(columns)}.yaml",
        labels=["defect", "ok"],
        negative="ok",
        input={"kind": "tabular", "columns": list(columns)},
    )


def test_a_registry_alias_is_resolved_recorded_and_validated_like_its_file(
    registry: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry["url"])
    home = tmp_path / "home"
    assert (
        assay(capsys, home, "dataset", "add", "press", str(registry["tmp"] / "press.csv"))[0] == 0
    )
    code, out, err = assay(
        capsys,
        home,
        "model",
        "add",
        "champion",
        "models:/press@champion",
        "--spec",
        str(spec(tmp_path)),
    )
    assert code == 0, err
    assert f"version {registry['version']}, run {registry['run_id']}" in " ".join(out.split())
    ws = Workspace.open(home)
    model = ws.catalog.get_model(VersionRef.parse("champion", "model"))
    origin = model.signature["mlflow"]
    assert origin["name"] == "press" and origin["alias"] == "champion"
    assert origin["version"] == registry["version"] and origin["run_id"] == registry["run_id"]
    assert "onnx" in origin["flavors"]
    ws.close()
    # The same file registered directly: the same answers.
    assert (
        assay(
            capsys,
            home,
            "model",
            "add",
            "direct",
            str(registry["onnx"]),
            "--spec",
            str(spec(tmp_path)),
        )[0]
        == 0
    )
    results = {}
    for name in ("champion", "direct"):
        out_dir = tmp_path / name
        code, _, err = assay(
            capsys, home, "validate", "--model", name, "--dataset", "press", "--out", str(out_dir),
            "--no-profile", "--no-explore", "--resamples", "100",
        )  # fmt: skip
        assert code == 0, err
        results[name] = json.loads((out_dir / "result.json").read_text())
    assert results["champion"]["metrics"]["accuracy"] == results["direct"]["metrics"]["accuracy"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # validating again needs no registry
    code, _, err = assay(
        capsys,
        home,
        "validate",
        "--model",
        "champion",
        "--dataset",
        "press",
        "--no-profile",
        "--no-explore",
        "--resamples",
        "100",
    )
    assert code == 0, err


@pytest.mark.parametrize(
    ("uri", "columns", "message"),
    [
        ("models:/press@nope", ("a", "b"), "model 'press' has no alias 'nope' (aliases: champion)"),
        ("models:/ghost@champion", ("a", "b"), "model 'ghost' has no alias 'champion'"),
        ("models:/pickled@champion", ("a", "b"), "load by unpickling"),
        ("models:/press@champion", ("b", "a"), "its signature takes columns ['a', 'b']"),
        ("models:/press/99", ("a", "b"), "models:/press/99"),
    ],
)
def test_bad_registry_references_are_refused_with_one_line(
    uri: str,
    columns: tuple[str, ...],
    message: str,
    registry: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry["url"])
    code, _, err = assay(
        capsys, tmp_path / "home", "model", "add", "x", uri, "--spec", str(spec(tmp_path, columns))
    )
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "home" / "tmp").glob("mlflow-*"))  # nothing left behind


def test_without_a_tracking_server_the_reference_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, _, err = assay(
        capsys,
        tmp_path / "home",
        "model",
        "add",
        "x",
        "models:/press@champion",
        "--spec",
        str(spec(tmp_path)),
    )
    assert code == 2 and "set MLFLOW_TRACKING_URI" in err
