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

import contextlib
import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)


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
            _ready = _pool.submit(_import, modules)
        except (BrokenProcessPool, OSError, RuntimeError):  # no sidecar here: run in this one
            _pool, _ready = None, None


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
    if _pool is None:
        warm()
    pool = _pool
    future: Future[T] | None = None
    if pool is not None:
        try:
            future = pool.submit(fn, *args)
        except (BrokenProcessPool, RuntimeError, OSError):
            _discard(pool)
            future = None

    def result() -> T:
        if future is not None:
            try:
                return future.result()
            except BrokenProcessPool:  # the sidecar died (killed, out of memory): do it here
                _discard(pool)
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
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
