"""A web app over a temporary store, with tokens of every role and a small image dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from assay.services.datasets import register_dataset
from assay.services.workspace import Workspace
from assay.web.app import create_app
from assay.worker.queue import open_queue
from tests.models import brightness_onnx, write_spec

SIZE = (16, 16)


@dataclass
class Web:
    client: TestClient
    home: Path
    tokens: dict[str, str]
    onnx: Path
    spec: Path

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def work(self) -> int:
        """Run every queued task with Huey's own dequeue/execute: the real queue, in process."""
        queue = self.client.app.state.queue  # type: ignore[attr-defined]
        n = 0
        while (task := queue.huey.dequeue()) is not None:
            queue.huey.execute(task)
            n += 1
        return n


def bright_and_dark(root: Path, n: int = 40) -> Path:
    """Image folders ok/ (bright) and defect/ (dark), a few of each mislabelled."""
    rng = np.random.default_rng(0)
    for i in range(n):
        label = "ok" if i % 2 else "defect"
        level = 200 if label == "ok" else 50
        if i in (3, 8):  # planted: bright images labelled defect, dark labelled ok
            level = 255 - level
        pixels = np.clip(rng.normal(level, 10, SIZE), 0, 255).astype(np.uint8)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@contextmanager
def serving(tmp_path: Path) -> Iterator[Web]:
    """A web app over a fresh store in ``tmp_path``: tokens of every role, the image dataset
    ``scans`` and, beside it, the model file and spec (not registered)."""
    home = tmp_path / "home"
    ws = Workspace.open(home)
    tokens = {
        role: ws.access.create_token(f"t-{role}", role)[1]
        for role in ("viewer", "validator", "admin")
    }
    register_dataset(ws, "scans", bright_and_dark(tmp_path / "scans"))
    ws.close()
    onnx = brightness_onnx(tmp_path / "bright.onnx", SIZE)
    spec = write_spec(
        tmp_path / "bright.yaml",
        labels=["defect", "ok"],
        input={"kind": "image", "size": list(SIZE), "color": "grayscale"},
        output={"name": "probabilities"},
    )
    app = create_app(home, max_upload_mb=1, queue=open_queue(home))
    with TestClient(app) as client:
        yield Web(client, home, tokens, onnx, spec)


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with serving(tmp_path) as web:
        yield web
