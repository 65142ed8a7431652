"""``assay audit``: checks of the data around a validation (leakage from training, coverage of
today's production)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.common import HomeOption, workspace
from assay.cli.output import console

audit_app = typer.Typer(
    help="Audit the data: leakage from a training set, coverage of production.",
    no_args_is_help=True,
)


@audit_app.command("leakage")
def leakage(
    train: Annotated[str, typer.Option(help="The training set (registered with --role training).")],
    dataset: Annotated[str, typer.Option(help="The validation dataset (NAME or NAME@N).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Also write leakage.json, leakage_pairs.parquet, leakage.html here."),
    ] = None,
    max_hamming: Annotated[
        int,
        typer.Option(
            help="Near-duplicate images: most bits of 64 two perceptual hashes differ by."
        ),
    ] = 6,
    time_column: Annotated[
        str | None,
        typer.Option(
            help="Column whose ranges are compared (default: a date/time column both hold)."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Find validation items that duplicate training items (exactly, or as near-duplicate images)
    and overlapping ids or time ranges. Exit 1 when an item leaked."""
    from rich.markup import escape

    from assay.services.leakage import audit_leakage

    found = audit_leakage(workspace(home), train, dataset, out, max_hamming, time_column)
    s = found.summary()
    colour = "red" if s["n_leaked_items"] else "green"
    console.print(
        f"[bold]{escape(s['dataset'])}[/] against training set [bold]{escape(s['train'])}[/]: "
        f"[{colour}]{s['n_leaked_items']} leaked item(s)[/] of {s['n_items']:,} "
        f"({s['n_exact_duplicates']} exact, {s['n_near_duplicates']} near duplicate(s))",
        highlight=False,
    )
    ids = s["id_overlap"]
    console.print(
        "shared item ids: " + (escape(ids["note"]) if ids["n"] is None else f"{ids['n']:,}"),
        highlight=False,
    )
    t = s["time_overlap"]
    if t is not None:
        console.print(
            f"time ({escape(t['column'])}): training {t['train_range'][0]} .. {t['train_range'][1]}, "
            f"this set {t['range'][0]} .. {t['range'][1]}; {t['n_inside_train_range']:,} item(s) "
            "inside the training range",
            highlight=False,
        )
    for pair in s["pairs"][:10]:
        extra = f", {int(pair['distance'])} bit(s)" if pair["kind"] == "near" else ""
        console.print(
            f"  {pair['kind']}{extra}: {escape(str(pair['item_id']))} ~ training "
            f"{escape(str(pair['train_item_id']))}",
            highlight=False,
        )
    for note in s["notes"]:
        console.print(f"note: {escape(note)}", highlight=False)
    where = out if out is not None else found.folder
    assert where is not None
    console.print(f"report: {where / 'leakage.html'}", highlight=False)
    if s["n_leaked_items"]:
        raise typer.Exit(1)
