"""Progress of a validation in a Jupyter notebook: one HTML output, updated in place (no
ipywidgets needed), with items done, items per second, time left, and then the stage after the
pass. Outside a notebook nothing is shown unless asked for, so scripts and pipelines stay quiet.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html import escape
from typing import Any

UPDATE_EVERY_S = 0.25
Hooks = tuple[Callable[[int], None], Callable[[int], None], Callable[[str], None]]


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _bar(done: int, total: int | None, started: float, stage: str | None) -> str:
    elapsed = time.monotonic() - started
    share = 0.0 if not total else min(1.0, done / total)
    rate = done / elapsed if elapsed > 0 else 0.0
    left = (total - done) / rate if rate > 0 and total else None
    if stage:
        text = escape(stage)
    elif total:
        text = f"{done:,} of {total:,} items · {rate:,.0f} items/s"
        text += f" · {left:,.0f} s left" if left is not None else ""
    else:
        text = "starting"
    return (
        '<div style="font:13px system-ui,sans-serif;max-width:640px">'
        '<div style="height:8px;background:#e5e7eb;border-radius:4px;overflow:hidden">'
        f'<div style="height:100%;width:{100 * share:.1f}%;background:#2563eb"></div></div>'
        f'<div style="color:#6b7280;margin-top:3px">{text} · {elapsed:,.0f} s</div></div>'
    )


@contextmanager
def progress_display(enabled: bool | None) -> Iterator[Hooks]:
    """(on_start, on_progress, on_stage) for ``validate``: a live bar in a notebook when
    ``enabled`` is None (auto) or True there; no-ops elsewhere."""
    show = in_notebook() if enabled is None else enabled and in_notebook()
    if not show:
        yield (lambda total: None), (lambda n: None), (lambda stage: None)
        return
    # IPython is there (this is a kernel), but not a dependency of Assay: imported untyped.
    ipython_display: Any = importlib.import_module("IPython.display")
    HTML, display = ipython_display.HTML, ipython_display.display  # noqa: N806

    started = time.monotonic()
    state: dict[str, Any] = {"done": 0, "total": None, "stage": None, "shown": 0.0}
    handle = display(HTML(_bar(0, None, started, None)), display_id=True)

    def draw(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - state["shown"] >= UPDATE_EVERY_S:
            state["shown"] = now
            handle.update(HTML(_bar(state["done"], state["total"], started, state["stage"])))

    def on_start(total: int) -> None:
        state["total"] = total
        draw(True)

    def on_progress(n: int) -> None:
        state["done"] += n
        draw()

    def on_stage(stage: str) -> None:
        state["stage"] = stage
        draw(True)

    try:
        yield on_start, on_progress, on_stage
    finally:
        state["stage"] = f"done: {state['done']:,} items"
        draw(True)
