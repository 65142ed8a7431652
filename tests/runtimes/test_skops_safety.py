"""Model files never run code: crafted skops files are refused by the CLI and the upload API.

Each payload is first shown to be live (skops told to trust the file's types runs it, in a child
process, and the marker file appears), so the refusals below are tested against real exploits.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from assay.cli.main import main
from assay.runtimes.sklearn import is_data_type
from assay.services.workspace import Workspace
from assay.web.app import create_app

_ids = itertools.count(10**15)
Node = dict[str, Any]


def _node(module: str, name: str, loader: str, **extra: Any) -> Node:
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": loader,
        **extra,
        "__id__": next(_ids),
    }


def text(value: str) -> Node:
    return _node("builtins", "str", "JsonNode", content=json.dumps(value), is_json=True)


def call(module: str, name: str, *args: Node) -> Node:
    """``module.name(*args)`` as skops' reduce node builds it while loading."""
    return _node(module, name, "ConstructorFromReduceNode", content=tup(*args))


def num(value: int) -> Node:
    return _node("builtins", "int", "JsonNode", content=json.dumps(value), is_json=True)


def tup(*items: Node) -> Node:
    return _node("builtins", "tuple", "TupleNode", content=list(items))


def lst(*items: Node) -> Node:
    return _node("builtins", "list", "ListNode", content=list(items))


def touch(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


PAYLOADS: dict[str, Callable[[Path], Node]] = {
    "builtins.exec": lambda m: call("builtins", "exec", text(touch(m))),
    "builtins.eval": lambda m: call("builtins", "eval", text(touch(m))),
    "os.system": lambda m: call("os", "system", text(f"touch {m}")),
    # getattr(__import__("os"), "system") mapped over a command list, forced by list().
    "getattr chain": lambda m: call(
        "builtins",
        "list",
        call(
            "builtins",
            "map",
            call("builtins", "getattr", call("builtins", "__import__", text("os")), text("system")),
            lst(text(f"touch {m}")),
        ),
    ),
    # operator.methodcaller("system", cmd) applied to the os module through map().
    "operator.methodcaller": lambda m: call(
        "builtins",
        "list",
        call(
            "builtins",
            "map",
            _node(
                "operator",
                "methodcaller",
                "OperatorFuncNode",
                attrs=tup(text("system"), text(f"touch {m}")),
            ),
            lst(call("builtins", "__import__", text("os"))),
        ),
    ),
    # A function from a package whose classes are trusted: numpy.save writes a file.
    "numpy.save": lambda m: call("numpy", "save", text(str(m)), lst(text("x"))),
    # numpy.memmap under its defining module's name creates (or truncates) a file.
    "numpy._core.memmap.memmap": lambda m: call(
        "numpy._core.memmap", "memmap", text(str(m)), text("uint8"), text("w+"), num(0), tup(num(4))
    ),
    # A standard-library class that writes a file when constructed.
    "gzip.GzipFile": lambda m: call("gzip", "GzipFile", text(str(m)), text("wb")),
    # A third-party class that does (a review truncated a file of the server's with it).
    "pyarrow.lib.OSFile": lambda m: call("pyarrow.lib", "OSFile", text(str(m)), text("w")),
}


def plain_model(tmp: Path) -> tuple[Path, Path]:
    """A real LogisticRegression as skops, and its spec."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.random((60, 3))
    model = LogisticRegression().fit(x, np.array(["bad", "good"])[(x[:, 0] > 0.5).astype(int)])
    path = tmp / "plain.skops"
    sio.dump(model, path)
    spec = tmp / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"labels": ["bad", "good"], "input": {"kind": "tabular", "columns": ["a", "b", "c"]}}
        )
    )
    return path, spec


def crafted(plain: Path, payload: Node, out: Path) -> Path:
    """``plain`` with one more attribute on the estimator, built by ``payload`` while loading."""
    with zipfile.ZipFile(plain) as z:
        files = {name: z.read(name) for name in z.namelist()}
    schema = json.loads(files["schema.json"])
    attrs = schema["content"]
    attrs["content"]["payload"] = payload
    attrs["key_types"]["content"].append(_node("builtins", "str", "TypeNode"))
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return plain_model(tmp_path)


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_each_crafted_file_really_runs_code_when_skops_trusts_it(
    tmp_path: Path, files: tuple[Path, Path], name: str
) -> None:
    """The control: without Assay's review, loading the file runs the payload."""
    marker = tmp_path / "ran.npy"  # numpy.save appends .npy to other names
    path = crafted(files[0], PAYLOADS[name](marker), tmp_path / "evil.skops")
    script = (
        "import sys, skops.io as s; p = sys.argv[1]; "
        "s.load(p, trusted=s.get_untrusted_types(file=p))"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, timeout=120)
    assert marker.exists(), f"the {name} payload did not run even when trusted"


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_model_add_refuses_crafted_files_and_runs_nothing(
    tmp_path: Path,
    files: tuple[Path, Path],
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    marker = tmp_path / "ran.npy"  # numpy.save appends .npy to other names
    path = crafted(files[0], PAYLOADS[name](marker), tmp_path / "evil.skops")
    home = str(tmp_path / "home")
    capsys.readouterr()
    assert main(["model", "add", "evil", str(path), "--spec", str(files[1]), "--home", home]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "evil.skops" in err
    assert not marker.exists()
    # Trusting the type by name does not help: these can run code and are never loaded.
    forbidden = name.split()[0] if name != "getattr chain" else "builtins.getattr"
    trust = ["--trust", forbidden, "--trust", "builtins.map", "--trust", "numpy.save"]
    trust += ["--trust", "numpy._core.memmap.memmap", "--trust", "gzip.GzipFile"]
    trust += ["--trust", "pyarrow.lib.OSFile"]
    code = main(
        ["model", "add", "evil", str(path), "--spec", str(files[1]), "--home", home, *trust]
    )
    assert code == 2 and not marker.exists()
    assert Workspace.open(home).catalog.list_models() == []


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_model_upload_refuses_crafted_files_and_runs_nothing(
    tmp_path: Path, files: tuple[Path, Path], name: str
) -> None:
    marker = tmp_path / "ran.npy"  # numpy.save appends .npy to other names
    path = crafted(files[0], PAYLOADS[name](marker), tmp_path / "evil.skops")
    home = tmp_path / "home"
    ws = Workspace.open(home)
    token = ws.access.create_token("v", "validator")[1]
    ws.close()
    with TestClient(create_app(home, max_upload_mb=5)) as client:
        r = client.post(
            "/api/models",
            data={"name": "evil", "spec_text": files[1].read_text()},
            files={"file": ("evil.skops", path.read_bytes())},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert 400 <= r.status_code < 500, r.text
        assert "evil.skops" in r.json()["detail"]
        assert client.get("/api/models", headers={"Authorization": f"Bearer {token}"}).json() == []
    assert not marker.exists()


def test_the_web_app_takes_no_trusted_types_from_an_upload(
    tmp_path: Path, files: tuple[Path, Path]
) -> None:
    """From a review: a validator uploaded a skops file with a spec trusting the type it held
    (pyarrow.lib.OSFile, opened for writing) and truncated a file of the server's. Trust is
    given on the server, never by the uploader."""
    marker = tmp_path / "victim.txt"
    marker.write_text("kept")
    path = crafted(files[0], PAYLOADS["pyarrow.lib.OSFile"](marker), tmp_path / "evil.skops")
    home = tmp_path / "home"
    ws = Workspace.open(home)
    token = ws.access.create_token("v", "validator")[1]
    ws.close()
    spec = files[1].read_text() + "trusted_types: [pyarrow.lib.OSFile]\n"
    with TestClient(create_app(home, max_upload_mb=5)) as client:
        r = client.post(
            "/api/models",
            data={"name": "evil", "spec_text": spec},
            files={"file": ("evil.skops", path.read_bytes())},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 422 and "trusted_types cannot be given" in r.json()["detail"]
    assert marker.read_text() == "kept"


def test_show_types_lists_every_type_and_adds_nothing(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran.npy"  # numpy.save appends .npy to other names
    path = crafted(files[0], PAYLOADS["builtins.exec"](marker), tmp_path / "evil.skops")
    home = str(tmp_path / "home")
    capsys.readouterr()
    assert main(["model", "add", "evil", str(path), "--show-types", "--home", home]) == 0
    out = capsys.readouterr().out
    assert "never loaded" in out and "builtins.exec" in out
    assert "sklearn.linear_model._logistic.LogisticRegression" in out
    assert not marker.exists()
    assert Workspace.open(home).catalog.list_models() == []


def test_common_estimators_load_with_the_default_trust(tmp_path: Path) -> None:
    """Trees, boosting, pipelines with an MLP, neighbours: their types are data types."""
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.random((80, 3))
    y = np.array(["bad", "good"])[(x[:, 0] > 0.5).astype(int)]
    _, spec = plain_model(tmp_path)
    home = str(tmp_path / "home")
    models = {
        "forest": RandomForestClassifier(5, random_state=0),
        "hgb": HistGradientBoostingClassifier(max_iter=5),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=2000, random_state=0)),
        "knn": KNeighborsClassifier(3),
    }
    for name, model in models.items():
        path = tmp_path / f"{name}.skops"
        sio.dump(model.fit(x, y), path)
        assert main(["model", "add", name, str(path), "--spec", str(spec), "--home", home]) == 0


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("sklearn.tree._tree.Tree", True),
        ("numpy.dtype", True),
        ("numpy.float32", True),
        ("numpy.random.mtrand.RandomState", True),
        ("scipy.sparse._csr.csr_matrix", True),
        ("numpy.memmap", False),  # opens and can create files
        ("numpy._core.memmap.memmap", False),  # the same class under its defining module
        ("numpy.f2py.__main__.X", False),  # naming it must not import (and run) it
        ("numpy.save", False),  # a function, not a type
        ("numpy.load", False),
        ("sklearn.utils._testing.assert_allclose", False),
        ("sklearn.base.BaseEstimator.fit", False),  # a method
        ("builtins.exec", False),
        ("builtins.getattr", False),
        ("os.system", False),
        ("operator.methodcaller", False),
        ("collections.namedtuple", False),
        ("nonexistent.module.Thing", False),
    ],
)
def test_only_data_types_are_trusted_by_default(name: str, trusted: bool) -> None:
    assert is_data_type(name) is trusted


@pytest.mark.parametrize(
    "name",
    ["docker.client.DockerClient", "pyarrow.lib.OSFile", "pandas.io.parsers.TextFileReader",
     "mlflow.tracking.MlflowClient", "huey.SqliteHuey", "PIL.Image.Image"],
)  # fmt: skip
def test_io_capable_packages_are_never_trusted_even_when_asked(name: str) -> None:
    """From a review: a class trusted by name (docker.client.DockerClient) called a network
    address while the file loaded. Packages whose classes open files or sockets are refused."""
    from assay.runtimes.sklearn import _is_system_type

    assert _is_system_type(name)


def test_a_type_name_in_a_file_never_imports_its_module(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Reviewing the types must not import what the file names: importing numpy.f2py.__main__
    runs f2py's command line (which then exits the process with status 0)."""
    node = _node("numpy.f2py.__main__", "X", "ObjectNode")
    path = crafted(files[0], node, tmp_path / "f2py.skops")
    home = str(tmp_path / "home")
    capsys.readouterr()
    for extra in (["--show-types"], ["--spec", str(files[1])]):
        code = main(["model", "add", "f2", str(path), *extra, "--home", home])
        out, err = capsys.readouterr()
        assert "Unknown option" not in out + err  # f2py's own command line did not run
        if extra == ["--show-types"]:
            assert code == 0 and "numpy.f2py.__main__.X" in out
        else:
            assert code == 2 and "numpy.f2py.__main__.X" in err
    assert Workspace.open(home).catalog.list_models() == []


@pytest.mark.parametrize("kind", ["big schema", "second schema"])
def test_a_skops_zip_bomb_is_refused_unread(
    tmp_path: Path, files: tuple[Path, Path], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """From reviews: a 2 MB upload whose schema.json inflates to 2 GiB of spaces was parsed
    whole, and the server's memory grew by 2 GB per upload; then a second schema.json, which
    the zip reader takes and the first check did not look at. The archive's declarations are
    checked first: no name twice, a schema of at most 64 MiB, a whole of at most 4 GiB."""
    path = tmp_path / "bomb.skops"
    with zipfile.ZipFile(files[0]) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if kind == "second schema" or info.filename != "schema.json":
                z.writestr(info.filename, src.read(info.filename))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
            with z.open("schema.json", "w", force_zip64=True) as f:
                block = b" " * (1 << 20)
                for _ in range(70):
                    f.write(block)
    assert path.stat().st_size < 2 * 2**20
    home = str(tmp_path / "home")
    capsys.readouterr()
    assert main(["model", "add", "bomb", str(path), "--spec", str(files[1]), "--home", home]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "refused unread" in err, err


def test_a_large_well_compressed_model_is_not_a_bomb(tmp_path: Path) -> None:
    """From a review: a nearest-neighbours model on one-hot features inflates 340 times (0.9
    MiB stored, 308 MiB of arrays) and was refused by a compression-ratio rule; its arrays
    are its weights. Only the schema and the whole are capped."""
    from assay.runtimes.sklearn import check_archive

    path = tmp_path / "knn.skops"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("schema.json", json.dumps({"__class__": "KNeighborsClassifier"}))
        with z.open("fit_X.npy", "w", force_zip64=True) as f:
            for _ in range(300):
                f.write(bytes(1 << 20))
    assert path.stat().st_size < 2**20
    check_archive(path)  # no error
