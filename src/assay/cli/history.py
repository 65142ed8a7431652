"""``assay history DATASET``: how each item fared under every model version validated on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from assay.cli.common import HomeOption, workspace
from assay.cli.output import console, print_table

LISTS = (
    ("broken", "every earlier version right, the candidate wrong or not judging it"),
    ("never_right", "judged by two versions or more, right in none (doubtful labels?)"),
    ("flip_flop", "right and wrong in turn, two changes or more"),
)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def history(
    dataset: Annotated[str, typer.Argument(help="Dataset name (every version of it).")],
    model: Annotated[
        str | None, typer.Option(help="Only versions of this model (NAME); default: all.")
    ] = None,
    candidate: Annotated[
        str | None,
        typer.Option(help="The version whose broken items are listed (default: the newest)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Items shown per list.")] = 10,
    out: Annotated[
        Path | None,
        typer.Option(help="Write history.json and history.parquet (the whole matrix) here."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    home: HomeOption = None,
) -> None:
    """Item history: items the candidate breaks that every earlier version got right, items no
    version got right, items that flip, and the churn between consecutive versions."""
    from assay.core.errors import InputError
    from assay.services.history import item_history, write_history

    if limit < 0:
        raise InputError("--limit must be 0 or more")
    ws = workspace(home, create=False)
    found = item_history(ws, dataset, model, candidate)
    summary = found.summary(limit)
    if out is not None:
        write_history(found, out, max(limit, 50), ws.home)
    if json_out:
        import json

        typer.echo(json.dumps(summary, indent=2))
        return
    _print(summary, out)


def _print(s: dict[str, Any], out: Path | None) -> None:
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"[bold]{escape(s['dataset'])}[/]: {s['n_items']:,} items, {len(s['versions'])} model "
        f"version(s); candidate [bold]{escape(s['candidate'])}[/]",
        highlight=False,
    )
    for left in s.get("left_out", []):
        console.print(f"{escape(left['model'])} left out: {left['reason']}", highlight=False)
    table = Table(box=None, pad_edge=False, show_edge=False)
    confidence = round(100 * s["confidence"])
    for name in ("version", "run", "dataset", "judged", "accuracy", "churn vs previous",
                 f"{confidence}% interval", "broken", "fixed", "McNemar p"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("version", "run", "dataset") else "right")
    for i, v in enumerate(s["versions"]):
        churn = ["", "", "", "", ""]
        c = s["churn"][i - 1] if i else None
        if c is not None and c["rate"] is not None:
            churn = [
                _pct(c["rate"]),
                f"[{_pct(c['ci_low'])}, {_pct(c['ci_high'])}]",
                f"{c['n_broken']:,}",
                f"{c['n_fixed']:,}",
                f"{c['mcnemar_p']:.3g}",
            ]
        table.add_row(
            escape(v["model"]),
            v["run_id"][:8],
            escape(v["dataset"]),
            f"{v['n_judged']:,}",
            _pct(v["accuracy"]),
            *churn,
        )
    print_table(table)
    console.print(
        "churn: the share of items both versions judged whose outcome changed (Wilson interval)"
    )
    for key, meaning in LISTS:
        block = s[key]
        if key == "never_right" and len(s["versions"]) < 2:
            meaning = "needs two model versions or more; this dataset has runs of one"
        console.print(f"\n[bold]{key.replace('_', ' ')}[/]: {block['n']:,} item(s) ({meaning})")
        for item in block["items"]:
            marks = " ".join(
                {"right": "✓", "wrong": "✗", "not judged": "·", None: " "}[o]
                for o in item["outcomes"]
            )
            console.print(
                f"  {escape(str(item['item_id']))}  label {escape(str(item['label']))}  "
                f"[{marks}]  run {item['run_id'][:8]}",
                highlight=False,
            )
        if block["n"] > len(block["items"]):
            console.print(f"  ... {block['n'] - len(block['items']):,} more")
    if out is not None:
        console.print(f"\nwritten: {out / 'history.json'}, {out / 'history.parquet'}")
