"""The sidecar runs an analysis in a process of its own and changes only when, never what: the
same result as in-process, in-process when it cannot start or dies, and no orphan after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from assay.core.spec import parse_model_spec
from assay.services import sidecar
from assay.services.datasets import get_dataset
from assay.services.doubtful_labels import find_doubtful_labels
from assay.services.models import get_model
from assay.services.validation import validate
from tests.services.test_validation import table_setup  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def own_sidecar() -> Any:
    sidecar.stop()
    yield
    sidecar.stop()


def sidecar_pid() -> int:
    sidecar.warm()
    sidecar.wait_until_warm()
    return sidecar.submit(os.getpid)()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def test_work_runs_in_another_process_which_is_reused() -> None:
    first = sidecar_pid()
    assert first != os.getpid()
    assert sidecar.submit(os.getpid)() == first  # one sidecar, its imports paid once


def test_a_killed_sidecar_is_replaced_and_nothing_is_lost() -> None:
    pid = sidecar_pid()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    # The next call runs in this process (the broken pool is noticed) or in a new sidecar.
    assert sidecar.submit(os.getpid)() != pid
    assert sidecar_pid() not in (pid, os.getpid())


def test_a_sidecar_killed_during_a_call_gives_the_result_from_this_process() -> None:
    pid = sidecar_pid()
    result = sidecar.submit(time.sleep, 5.0)
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)
    t0 = time.perf_counter()
    assert result() is None  # the call ran again here, whole
    assert time.perf_counter() - t0 >= 4.0


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise OSError(11, "Resource temporarily unavailable")


def test_without_processes_the_work_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sidecar, "ProcessPoolExecutor", refuse)
    assert sidecar.submit(os.getpid)() == os.getpid()


def test_an_error_of_the_analysis_is_raised_as_in_process() -> None:
    with pytest.raises(FileNotFoundError):
        sidecar.submit(Path("/nonexistent/assay").read_text)()


def test_the_sidecar_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import os, sys, time\n"
        "from assay.services import sidecar\n"
        "sidecar.warm(); sidecar.wait_until_warm()\n"
        "print(sidecar.submit(os.getpid)(), flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert alive(child)
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(child), "the sidecar outlived its killed parent"


def test_doubtful_labels_from_the_sidecar_equal_in_process(
    table_setup: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = table_setup["ws"]
    outcome = validate(ws, "press-model", "press", table_setup["tmp"] / "a")
    beside = outcome.result.doubtful_labels
    assert beside is not None and beside["n_judged"] == 498
    monkeypatch.setattr(sidecar, "ProcessPoolExecutor", refuse)  # cannot start: in-process
    sidecar.stop()
    again = validate(ws, "press-model", "press", table_setup["tmp"] / "b").result.doubtful_labels
    assert json.dumps(beside, sort_keys=True) == json.dumps(again, sort_keys=True)
    run_dir = outcome.run_dir
    assert (run_dir / "doubtful_labels.parquet").exists()
    direct = find_doubtful_labels(
        run_dir / "predictions.parquet",
        Path(get_dataset(ws, "press").manifest_path),
        parse_model_spec(get_model(ws, "press-model").spec),
        table_setup["tmp"] / "direct.parquet",
    )
    assert json.dumps(direct, sort_keys=True) == json.dumps(beside, sort_keys=True)


def test_the_pool_type_is_a_process_pool() -> None:
    assert sidecar.ProcessPoolExecutor is ProcessPoolExecutor


def test_error_groups_from_the_sidecar_equal_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assay import api
    from tests.services.test_error_groups import planted, rule_model

    csv, _ = planted(tmp_path)
    onnx, spec = rule_model(tmp_path)
    home = tmp_path / "home"
    api.add_dataset("parts", csv, home=home)
    api.add_model("m", onnx, spec=spec, home=home)
    beside = api.validate(model="m", dataset="parts", out=tmp_path / "a", home=home)
    monkeypatch.setattr(sidecar, "ProcessPoolExecutor", refuse)
    sidecar.stop()
    here = api.validate(model="m", dataset="parts", out=tmp_path / "b", home=home)
    assert beside.result.error_groups is not None and beside.result.error_groups["groups"]
    assert json.dumps(beside.result.error_groups, sort_keys=True) == json.dumps(
        here.result.error_groups, sort_keys=True
    )
    first = pq.read_table(tmp_path / "a" / "error_groups.parquet")
    assert first.equals(pq.read_table(tmp_path / "b" / "error_groups.parquet"))
