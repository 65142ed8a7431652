"""`assay demo`: synthetic cable scans, models and the whole lifecycle on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, print_summary, print_verdict, progress_bar
from assay.core.errors import InputError

MIN_ITEMS, MAX_ITEMS = 100, 1_000_000  # fewer: no interval to show; more: hours of PNGs


def demo_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the demo's data, models and report.")
    ] = Path("demo-output"),
    n_items: Annotated[int, typer.Option(help="Synthetic scans to generate.")] = 1800,
    task: Annotated[
        str,
        typer.Option(help="classification, detection, segmentation or anomaly."),
    ] = "classification",
    lifecycle: Annotated[
        bool,
        typer.Option(
            help="Classification: then a second dataset version (incremental validation), a "
            "third model, a leaked scan, a faster production line and the item history."
        ),
    ] = True,
    home: HomeOption = None,
) -> None:
    """Generate synthetic cable scans and two models, register them, validate the candidate."""
    if not MIN_ITEMS <= n_items <= MAX_ITEMS:
        raise InputError(f"--n-items must lie in [{MIN_ITEMS}, {MAX_ITEMS:,}], got {n_items}")
    if task == "classification":
        from assay.demo.run import run_demo

        outcome = run_demo(
            _workspace(home), out, n_items=n_items, echo=console.print, progress=progress_bar
        )
    else:
        from assay.demo.tasks import TASKS, run_task_demo

        if task not in TASKS:
            raise InputError(f"--task must be classification, {', '.join(TASKS)}; got {task!r}")
        outcome = run_task_demo(
            _workspace(home), out, task, n_items, echo=console.print, progress=progress_bar
        )
    print_summary(outcome.result)
    print_verdict(outcome.result)
    console.print(f"\nreport: {outcome.files['report.html'].resolve()}")
    if task == "classification":
        console.print(
            "(two scans were truncated on purpose: they are listed as not judged, never dropped)"
        )
    if task == "classification" and lifecycle:
        from assay.demo.lifecycle import run_lifecycle

        final = run_lifecycle(_workspace(home), out, outcome, echo=console.print)
        print_verdict(final.result)
        console.print(f"report: {final.files['report.html'].resolve()}")
