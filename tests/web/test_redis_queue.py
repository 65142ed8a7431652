"""The Redis queue works end to end: a job submitted through Redis is run by a real worker.

The test starts a throwaway ``redis-server`` (Debian's package, installed by .ci/run) on a free
loopback port and an ``assay worker`` process with ``ASSAY_QUEUE_URL`` pointing at it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.services.datasets import register_dataset
from assay.services.jobs import submit
from assay.services.models import register_model
from assay.services.workspace import Workspace
from assay.worker.queue import open_queue
from tests.models import brightness_onnx, write_spec
from tests.web.conftest import SIZE, bright_and_dark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but redis-server is missing: .ci/run installs it")
        pytest.skip("redis-server is not installed (apt-get install redis-server); CI installs it")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


def test_a_job_queued_on_redis_is_run_by_a_worker_process(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    ws = Workspace.open(home)
    register_dataset(ws, "scans", bright_and_dark(tmp_path / "scans"))
    onnx = brightness_onnx(tmp_path / "bright.onnx", SIZE)
    spec = write_spec(
        tmp_path / "bright.yaml",
        labels=["defect", "ok"],
        input={"kind": "image", "size": list(SIZE), "color": "grayscale"},
        output={"name": "probabilities"},
    )
    register_model(ws, "bright", onnx, spec)
    monkeypatch.setenv("ASSAY_QUEUE_URL", redis_url)
    queue = open_queue(home)
    assert type(queue.huey).__name__ == "RedisHuey"
    (job,) = submit(ws, {"model": "bright", "datasets": ["scans"]}, "t", queue.enqueue)
    assert len(queue.huey) == 1  # waiting in Redis, not in a SQLite file
    assert not (home / "queue.db").exists()
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "assay.cli.main", "worker", "--home", str(home)],
            env={**os.environ, "ASSAY_QUEUE_URL": redis_url},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while (done := ws.jobs.get(job.id)).status in ("queued", "running"):
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the worker did not finish the job in 120 s"
                time.sleep(0.5)
        finally:
            worker.terminate()
            worker.wait(30)
    assert done.status == "finished" and done.run_id is not None
    assert done.progress_done == 40 and done.verdict in ("pass", "fail", "inconclusive")
    assert ws.catalog.get_run(done.run_id).status == "finished"
    assert len(queue.huey) == 0
    ws.close()


def test_a_redis_url_without_the_extra_names_the_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from assay.core.errors import InputError

    monkeypatch.setenv("ASSAY_QUEUE_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(sys.modules, "redis", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r"pip install 'assay\[redis\]'"):
        open_queue(tmp_path)
