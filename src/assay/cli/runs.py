"""`assay run` and `assay compare`: list, tag and show runs; compare two finished runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, print_summary, print_table, print_verdict
from assay.core.errors import InputError

run_app = typer.Typer(help="List and inspect validation runs.", no_args_is_help=True)


def compare_command(
    candidate: Annotated[str, typer.Argument(help="Run id of the candidate (a prefix is enough).")],
    baseline: Annotated[str, typer.Argument(help="Run id of the baseline, same dataset version.")],
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (YAML) of release checks.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the comparison's report and verdict.")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Let --out replace another run's or comparison's files there."
        ),
    ] = False,
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="Decide as labels trickle in: an anytime-valid confidence sequence of the "
            "accuracy difference, in label order (exit 0 accept, 1 reject or not yet).",
        ),
    ] = False,
    order: Annotated[
        str | None,
        typer.Option(help="With --sequential: the column giving each item's label time."),
    ] = None,
    margin: Annotated[
        float, typer.Option(help="With --sequential: non-inferiority margin (accuracy).")
    ] = 0.01,
    alpha: Annotated[float, typer.Option(help="With --sequential: error level.")] = 0.05,
    home: HomeOption = None,
) -> None:
    """Compare two finished runs item by item and judge the first (exit 1: the policy failed)."""
    from assay.services.compare_runs import compare_runs

    if sequential:
        _sequential(candidate, baseline, policy, order, margin, alpha, out, home)
        return
    if order is not None:
        raise InputError("--order applies with --sequential")
    outcome = compare_runs(
        _workspace(home, create=False), candidate, baseline, policy, out, overwrite
    )
    print_verdict(outcome.result)
    console.print(f"report: {outcome.files['report.html']}")
    if outcome.blocking:
        raise typer.Exit(1)


def _sequential(
    candidate: str,
    baseline: str,
    policy: Path | None,
    order: str | None,
    margin: float,
    alpha: float,
    out: Path | None,
    home: Path | None,
) -> None:
    from assay.services.sequential import sequential_comparison

    if policy is not None:
        raise InputError("--sequential decides by --margin and --alpha, not by a --policy")
    doc = sequential_comparison(
        _workspace(home, create=False), candidate, baseline, order, margin, alpha, out
    )
    f = doc["final"]
    level = f"{100 * (1 - alpha):g}%"
    if f is None:
        console.print("no item judged by both runs yet: nothing to decide")
        raise typer.Exit(1)
    # Only the decision reached is worded: "not yet" has no item count to show.
    if doc["decision"] == "accept":
        verdict = (
            f"[green]accept[/]: {escape(doc['candidate'])} is at most {margin:g} worse than "
            f"{escape(doc['baseline'])} (decided after {doc['decided_after']:,} items)"
        )
    elif doc["decision"] == "reject":
        verdict = (
            f"[red]reject[/]: {escape(doc['candidate'])} is more than {margin:g} worse "
            f"(decided after {doc['decided_after']:,} items)"
        )
    elif doc["decision"] == "inconsistent":
        verdict = (
            f"[red]no decision[/]: the bounds crossed after {doc['decided_after']:,} items, so "
            "the items' order follows their outcomes (defects labelled last, say) and the "
            "sequence's guarantee does not hold; compare in an order unrelated to the outcomes "
            "(--order), or without --sequential"
        )
    else:
        verdict = "[yellow]not yet[/]: the bounds still hold -margin; wait for more labels"
    console.print(
        f"after {doc['n_items']:,} labelled items ({doc['n_waiting']:,} waiting for a label): "
        f"candidate - baseline accuracy {f['mean']:+.4f}, anytime-valid {level} bounds "
        f"[{f['lower']:+.4f}, {f['upper']:+.4f}]",
        highlight=False,
    )
    unjudged = doc["n_unjudged"]
    if unjudged["candidate"] or unjudged["baseline"]:
        console.print(
            f"counted as wrong: {unjudged['candidate']:,} item(s) the candidate could not judge, "
            f"{unjudged['baseline']:,} the baseline could not",
            highlight=False,
        )
    if doc["n_unjudged_by_both"]:
        console.print(
            f"left out: {doc['n_unjudged_by_both']:,} item(s) neither model could judge",
            highlight=False,
        )
    console.print(verdict, highlight=False)
    console.print(f"written: {doc['file']}", highlight=False)
    if doc["decision"] != "accept":
        raise typer.Exit(1)


@run_app.command("list")
def run_list(
    model: Annotated[
        str | None, typer.Option(help="Only runs of this model (NAME or NAME@N).")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Only runs on this dataset.")] = None,
    verdict: Annotated[
        str | None,
        typer.Option(
            help="Only runs with this verdict: pass, fail, inconclusive, or none (no verdict)."
        ),
    ] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
    home: HomeOption = None,
) -> None:
    """List runs, wherever they started (a run whose process is gone shows as interrupted)."""
    from rich.table import Table

    from assay.core.records import RunQuery
    from assay.services.runs import run_page

    ws = _workspace(home, create=False)
    page = run_page(
        ws, RunQuery(model=model, dataset=dataset, verdict=verdict, tag=tag, limit=limit)
    )
    tagged = any(r.tags for r in page.runs)
    table = Table(box=None, pad_edge=False, show_edge=False)
    for name in ("run", "status", "verdict", "model", "dataset", "headline", "items", "started"):
        table.add_column(name, no_wrap=name in ("run", "status", "verdict"))
    if tagged:
        table.add_column("tags")
    for r in page.runs:
        h = r.headline
        headline = ""
        if h is not None and h["value"] is not None:
            headline = f"{h['metric'].replace('_', ' ')} {h['value']:.3f}"
            if h["ci_low"] is not None:
                headline += f" [{h['ci_low']:.3f}, {h['ci_high']:.3f}]"
        items = "" if r.n_items is None else f"{r.n_items:,}"
        if r.n_failed:
            items += f" ({r.n_failed:,} not judged)"
        cells = [
            r.id[:8],
            r.status,
            r.verdict or "",
            r.model,
            r.dataset,
            headline,
            items,
            f"{r.started_at[5:16].replace('T', ' ')} {r.origin}",
        ]
        table.add_row(*cells, *([", ".join(r.tags)] if tagged else []))
    print_table(table)
    if page.total > len(page.runs):
        console.print(f"{len(page.runs)} of {page.total} runs (--limit shows more)")


@run_app.command("tag")
def run_tag(
    run_id: Annotated[str, typer.Argument(help="Run id (a prefix is enough).")],
    tags: Annotated[list[str] | None, typer.Argument(help="Its tags (none: clear them).")] = None,
    home: HomeOption = None,
) -> None:
    """Set a run's tags (they replace the ones it had)."""
    from assay.services.runs import tag_run

    row = tag_run(_workspace(home, create=False), run_id, list(tags or []))
    console.print(f"run {row.id[:12]}: tags {', '.join(row.tags) or '(none)'}")


@run_app.command("note")
def run_note(
    run_id: Annotated[str, typer.Argument(help="Run id (a prefix is enough).")],
    note: Annotated[str, typer.Argument(help="The note (empty: clear it).")],
    home: HomeOption = None,
) -> None:
    """Write a note on a run (what was special about it); the run's results never change."""
    from assay.services.runs import annotate_run

    row = annotate_run(_workspace(home, create=False), run_id, note)
    console.print(f"run {row.id[:12]}: note {'set' if row.note else 'cleared'}")


@run_app.command("show")
def run_show(
    run_id: Annotated[str, typer.Argument(help="Run id (a prefix is enough).")],
    home: HomeOption = None,
) -> None:
    """Show a finished run's summary (or why it did not finish)."""
    from assay.reports.json import parse_result_json
    from assay.services.integrity import checked_run_file
    from assay.services.runs import get_run

    ws = _workspace(home, create=False)
    r = get_run(ws, run_id)
    if r.status != "finished":
        console.print(f"run {r.id}: {r.status}" + (f" ({r.error})" if r.error else ""))
        return
    try:
        # A finished run's result as it wrote it: an edited one is refused, not shown as PASS.
        path = checked_run_file(r, "result.json")
    except FileNotFoundError:
        raise InputError(
            f"run {r.id[:12]} finished but its result.json is missing from {r.run_dir}"
        ) from None
    result = parse_result_json(path.read_bytes(), path)
    print_summary(result)
    print_verdict(result)
    console.print(f"report: {Path(r.run_dir) / 'report.html'}")
