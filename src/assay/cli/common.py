"""What every command group of the CLI shares: the store option and the store it opens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from assay.services.workspace import Workspace

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="ASSAY_HOME", help="Store folder (default ./.assay)."),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the model runs: cpu, cuda or cuda:N (onnxruntime-gpu, torch), or an "
        "OpenVINO device name (GPU, NPU).",
    ),
]


OPENED: list[Workspace] = []


def workspace(home: Path | None, create: bool = True) -> Workspace:
    """The store of this command; closed when the command ends (``main``), so that no
    connection outlives it (an unclosed SQLite connection checkpoints its WAL into the file
    whenever it is collected). ``create`` False: a command that only reads one (a validation)
    names a missing store instead of making an empty one."""
    from assay.services.workspace import Workspace

    ws = Workspace.open(home, create=create)
    OPENED.append(ws)
    return ws


def close_workspaces() -> None:
    while OPENED:
        try:
            OPENED.pop().close()
        except Exception:  # closing must never mask the command's own outcome
            continue
