"""The sidecar: one spawned Python process that runs analyses beside the main process.

Confident learning (cleanlab) and the grouping of misclassified items (k-means) cost about 2 s
of imports (scikit-learn, scipy) before they start, and confident learning as long as the
error-slice search on a large table. In a process of their own, the imports happen while the
model runs, and the analyses run on the second core while the main process searches slices. One sidecar per process is started on first use and reused (a test
session, a web worker, a notebook), so the imports are paid once.

What runs there is an ordinary function of the services, called with plain arguments (paths and
specs): the result is the same as in the main process, which is where it runs when the sidecar
cannot (no process could start, or it died): the sidecar only ever changes when, never what.
The sidecar runs at lower priority (``nice``), so it only takes CPU the pass leaves idle, and it
exits when its parent dies, even by ``kill -9``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Imported by the sidecar as soon as it starts: what confident learning needs (every run that
# explores); the grouping of errors (images, embeddings) asks for GROUPING_MODULES as well.
WARM_MODULES = ("assay.services.doubtful_labels", "cleanlab.filter")
GROUPING_MODULES = (
    "assay.services.error_groups",
    "sklearn.cluster",
    "sklearn.decomposition",
    "sklearn.metrics",
)
NICENESS = 10

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_ready: Future[None] | None = None


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone: an orphaned sidecar would wait forever for work."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _start(parent: int) -> None:
    # Ctrl-C (or a Jupyter kernel's interrupt and shutdown) reaches the whole process group: the
    # parent handles it and stops this process, which would otherwise print a traceback of its
    # own from the middle of a queue read.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)


class _NotPicklableError(Exception):
    """The analysis raised an exception that cannot travel back between processes."""


def _call(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """Run in the sidecar: ``fn(*args)``; an exception that would not survive the trip back
    (say, one holding a lock) is replaced by _NotPicklableError, and the caller runs ``fn`` itself."""
    try:
        return fn(*args)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            raise _NotPicklableError(f"{type(exc).__name__}: {exc}") from None
        raise


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """spawn runs the parent's main script again in the child (as ``__mp_main__``) so that its
    functions can be unpickled there; a script without an ``if __name__ == "__main__"`` guard
    would then validate twice. The sidecar only runs Assay's own functions: it starts without
    the main script."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def warm(modules: tuple[str, ...] = WARM_MODULES) -> None:
    """Start the sidecar (if none runs) and have it import ``modules``, without waiting."""
    global _pool, _ready
    with _lock:
        try:
            if _pool is None:
                _pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(os.getpid(),),
                )
                with _main_script_hidden():  # the process starts with its first task
                    _ready = _pool.submit(_import, modules)
                _stop_at_exit()
            else:
                _ready = _pool.submit(_import, modules)
        except (BrokenProcessPool, OSError, RuntimeError, AssertionError):
            # No sidecar here (no process can start; a daemonic process, where multiprocessing
            # asserts that it has no children): everything runs in this process.
            _pool, _ready = None, None


_exit_hook_set = False


def _stop_at_exit() -> None:
    """Stop the sidecar when the interpreter exits, before concurrent.futures waits for its
    process (which would sit out the sidecar's imports). Its exit hooks run at thread shutdown,
    before ``atexit``, and in reverse order of registration."""
    global _exit_hook_set
    if not _exit_hook_set:
        getattr(threading, "_register_atexit", atexit.register)(stop)
        _exit_hook_set = True


def _forget() -> None:
    """In a forked child: the parent's sidecar and its manager thread are not ours."""
    global _pool, _ready, _lock
    _pool, _ready, _lock = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)


def wait_until_warm(timeout_s: float = 60.0) -> None:
    """Block until the sidecar's imports are done, so that they do not run beside a measurement
    (the model profile) and skew it. Returns at once when no sidecar runs."""
    ready = _ready
    if ready is None:
        return
    with contextlib.suppress(Exception):
        ready.result(timeout=timeout_s)


def submit(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    """Start ``fn(*args)`` in the sidecar; returns what gives its result. When the sidecar cannot
    run it (none started, or it died), the result is computed in this process instead; an
    exception raised by ``fn`` itself is raised here as it would be in-process."""
    # The sidecar keeps the directory it started in: relative paths would point elsewhere.
    args = tuple(a.absolute() if isinstance(a, Path) else a for a in args)
    if _pool is None:
        warm()
    pool = _pool
    future: Future[T] | None = None
    if pool is not None:
        try:
            future = pool.submit(_call, fn, args)
        except (BrokenProcessPool, RuntimeError, OSError):
            _discard(pool)
            future = None

    def result() -> T:
        if future is not None:
            try:
                return future.result()
            except (BrokenProcessPool, CancelledError):  # it died, or was stopped: do it here
                _discard(pool)
            except _NotPicklableError:
                pass  # run here, where the exception is raised as it is
        return fn(*args)

    return result


def stop() -> None:
    """Stop the sidecar at once, abandoning whatever it runs (a cancelled or failed validation)."""
    if _pool is not None:
        _discard(_pool)


def _discard(pool: ProcessPoolExecutor | None) -> None:
    global _pool, _ready
    if pool is None:
        return
    with _lock:
        if _pool is pool:
            _pool, _ready = None, None
    # ProcessPoolExecutor has no public way to end a running call; its processes are ours.
    # (After a shutdown, _processes is None.)
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
