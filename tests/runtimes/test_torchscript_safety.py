"""TorchScript archives that reach for files are refused before any of their code runs.

``torch.from_file`` maps a file into a tensor: through a shared mapping a model's forward pass
overwrote a file the server could write, and read another into its scores (a hostile review's
exploit, reproduced here live first). The archive's code is read before ``torch.jit.load`` (which
runs ``__setstate__``) and the loaded graph is walked; either refuses the model, exit 2 / 422,
and the files are as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assay.cli.main import main
from assay.core.errors import InputError
from tests.models import write_spec

torch = pytest.importorskip("torch")
# torch 2.10+ deprecates TorchScript for torch.export; edge boxes still ship it.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*")


def _spec(tmp_path: Path) -> Path:
    return write_spec(
        tmp_path / "spec.yaml", labels=["ok", "defect"], input={"kind": "tabular", "columns": ["a"]}
    )


class _Writer(torch.nn.Module):  # type: ignore[misc]
    """Overwrites a file through a shared mapping in every forward pass."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.from_file(self.path, True, 8, dtype=torch.uint8)
        t.fill_(88)
        logits = torch.zeros(x.shape[0], 2) + 0.0 * t.float().sum()
        return torch.softmax(logits, 1)


def _scripted_writer(victim: Path) -> Any:
    return torch.jit.script(_Writer(str(victim)))


class _OnLoad(torch.nn.Module):  # type: ignore[misc]
    """Writes when loaded: TorchScript runs ``__setstate__`` inside ``torch.jit.load``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.mapped = torch.zeros(8, dtype=torch.uint8)

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.path = state[0]
        self.training = state[1]
        # Kept in an attribute: a write whose tensor goes nowhere is optimised away.
        self.mapped = torch.from_file(self.path, True, 8, dtype=torch.uint8).fill_(88)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(torch.zeros(x.shape[0], 2), 1)


def test_the_payload_is_live_then_refused_at_registration(tmp_path: Path, capsys: Any) -> None:
    live = tmp_path / "live.txt"
    live.write_bytes(b"original content")
    model = _scripted_writer(live)
    model(torch.zeros(2, 1))
    assert live.read_bytes().startswith(b"XXXXXXXX")  # the exploit works when run

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"original content")
    writer = _scripted_writer(victim)
    torch.jit.save(writer, str(tmp_path / "writer.pt"))
    code = main(["model", "add", "evil", str(tmp_path / "writer.pt"), "--spec",
                 str(_spec(tmp_path)), "--home", str(tmp_path / "home")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "from_file" in err and len(err.strip().splitlines()) == 1
    assert victim.read_bytes() == b"original content"


def test_code_that_runs_when_loaded_is_refused_before_loading(tmp_path: Path, capsys: Any) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"original content")
    torch.jit.save(torch.jit.script(_OnLoad(str(victim))), str(tmp_path / "onload.pt"))
    victim.write_bytes(b"original content")  # saving ran nothing, but be sure
    code = main(["model", "add", "evil", str(tmp_path / "onload.pt"), "--spec",
                 str(_spec(tmp_path)), "--home", str(tmp_path / "home")])  # fmt: skip
    assert code == 2 and "from_file" in capsys.readouterr().err
    assert victim.read_bytes() == b"original content"
    # Loaded by torch itself, it does write: the refusal came before torch.jit.load.
    torch.jit.load(str(tmp_path / "onload.pt"))
    assert victim.read_bytes().startswith(b"XXXXXXXX")


def test_the_graph_is_walked_too(tmp_path: Path) -> None:
    """The second line: an operator found in the loaded graph (here a module never saved, so no
    archive to read) refuses the model by its name."""
    from assay.runtimes.torchscript_ops import check_module

    with pytest.raises(InputError, match="aten::from_file"):
        check_module(_scripted_writer(tmp_path / "never.txt"), "writer")
    plain = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(1)))
    check_module(plain, "plain")  # an ordinary model passes


def test_the_upload_api_refuses_it_too(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from assay.services.workspace import Workspace
    from assay.web.app import create_app

    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"original content")
    torch.jit.save(_scripted_writer(victim), str(tmp_path / "writer.pt"))
    home = tmp_path / "home"
    ws = Workspace.open(home)
    token = ws.access.create_token("v", "validator")[1]
    ws.close()
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(home, max_upload_mb=5)) as client:
        r = client.post(
            "/api/models",
            data={"name": "evil", "spec_text": _spec(tmp_path).read_text()},
            files={"file": ("writer.pt", (tmp_path / "writer.pt").read_bytes())},
            headers=auth,
        )
        assert r.status_code == 422 and "from_file" in r.json()["detail"], r.text
        assert client.get("/api/models", headers=auth).json() == []
    assert victim.read_bytes() == b"original content"


def test_an_archive_python_cannot_read_is_refused_before_torch_loads_it(
    tmp_path: Path, capsys: Any
) -> None:
    """torch's zip reader takes an archive whose extra field Python's rejects: the code check
    returned quietly, and torch.jit.load ran the module's __setstate__ (a hostile review's
    second payload). An archive whose code cannot be read here is refused, fail closed."""
    import struct
    import zipfile

    victim = tmp_path / "victim.txt"
    torch.jit.save(torch.jit.script(_OnLoad(str(victim))), str(tmp_path / "plain.pt"))
    source = zipfile.ZipFile(tmp_path / "plain.pt")
    with zipfile.ZipFile(tmp_path / "bent.pt", "w", zipfile.ZIP_STORED) as out:
        infos = source.infolist()
        for i, info in enumerate(infos):
            entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            if i == len(infos) - 1:
                entry.extra = struct.pack("<HH", 0x9999, 200)  # corrupt: longer than it is
            out.writestr(entry, source.read(info))
    victim.write_bytes(b"original content")
    code = main(["model", "add", "evil", str(tmp_path / "bent.pt"), "--spec",
                 str(_spec(tmp_path)), "--home", str(tmp_path / "home")])  # fmt: skip
    assert code == 2 and "refused" in capsys.readouterr().err
    assert victim.read_bytes() == b"original content"
