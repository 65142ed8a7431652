"""The sidecar runs an analysis in a process of its own and changes only when, never what: the
same result as in-process, in-process when it cannot start or dies, and no orphan after a kill."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
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


def _raise_with_a_lock() -> None:
    raise ValueError("cannot travel", threading.Lock())


def _pid_through_the_sidecar() -> tuple[int, int]:
    return os.getpid(), sidecar.submit(os.getpid)()


def test_every_pending_call_survives_a_killed_sidecar() -> None:
    """Found by a hostile review: the second pending call of a dead sidecar raised
    AttributeError (the pool was already shut down) instead of running here."""
    pid = sidecar_pid()
    first = sidecar.submit(time.sleep, 3.0)
    second = sidecar.submit(os.getpid)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    assert first() is None
    assert second() == os.getpid()


def test_calls_pending_when_the_sidecar_is_stopped_still_give_their_results() -> None:
    sidecar_pid()
    pending = [sidecar.submit(os.getpid) for _ in range(2)] + [sidecar.submit(time.sleep, 0.01)]
    sidecar.stop()
    # Each gives its result, from the sidecar if it finished in time, else from this process;
    # before the fix they raised CancelledError or AttributeError.
    results = [p() for p in pending]
    assert all(isinstance(r, int) and r > 0 for r in results[:2]) and results[2] is None
    assert sidecar.submit(os.getpid)() != os.getpid()  # a new sidecar


def test_an_exception_that_cannot_travel_is_raised_here_as_it_is() -> None:
    with pytest.raises(ValueError, match="cannot travel"):
        sidecar.submit(_raise_with_a_lock)()


def test_relative_paths_mean_what_they_mean_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    sidecar_pid()  # started in a/
    monkeypatch.chdir(tmp_path / "b")
    (tmp_path / "b" / "marker").write_text("here")
    assert sidecar.submit(Path.read_text, Path("marker"))() == "here"


def test_a_forked_child_gets_its_own_sidecar_and_does_not_hang() -> None:
    """Found by a hostile review: a forked worker (gunicorn --preload, celery prefork) inherited
    the parent's pool and waited forever."""
    parent_sidecar = sidecar_pid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: one call, its answer down the pipe, and out
        try:
            os.write(write, str(sidecar.submit(os.getpid)()).encode())
        finally:
            sidecar.stop()
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 60)
    answer = os.read(read, 64).decode() if ready else ""
    os.close(read)
    os.waitpid(child, 0)
    assert answer, "the forked child hung on the parent's sidecar"
    assert int(answer) not in (child, parent_sidecar)


def test_a_daemonic_worker_runs_the_analysis_itself() -> None:
    """multiprocessing's pool workers may not start processes: the call runs in the worker."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        worker, ran_in = pool.apply_async(_pid_through_the_sidecar).get(timeout=60)
    assert ran_in == worker


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    """Found by a hostile review: spawn ran the parent's unguarded script again in the sidecar,
    so a notebook-style script validated twice."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import os\n"
        "from assay.services import sidecar\n"
        "print('body', flush=True)\n"
        "print('elsewhere', sidecar.submit(os.getpid)() != os.getpid(), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("body") == 1 and "elsewhere True" in done.stdout


def test_an_interpreter_exits_without_sitting_out_the_sidecar_imports() -> None:
    """concurrent.futures would wait at exit for the sidecar to finish importing (a minute
    here); the sidecar is stopped first."""
    script = "from assay.services import sidecar\nsidecar.warm(('tests.services.slow_import',))\n"
    root = Path(__file__).parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, cwd=root)
    assert done.returncode == 0, done.stderr
