"""`assay dataset`: register dataset versions and look at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, print_table

dataset_app = typer.Typer(help="Register and inspect datasets.", no_args_is_help=True)


@dataset_app.command("add")
def dataset_add(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    path: Annotated[
        str, typer.Argument(help="Folder, manifest or table to read (a path or an s3:// URL).")
    ],
    label_column: Annotated[
        str | None, typer.Option(help="Column holding the expert label (default: label).")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(help="Column holding the item id (default: row number).")
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help="Reader to use; detected when omitted.")
    ] = None,
    annotations: Annotated[
        Path | None,
        typer.Option(
            help="Several experts' labels: a table with item_id, annotator and label columns."
        ),
    ] = None,
    allow_outside_paths: Annotated[
        bool,
        typer.Option(
            "--allow-outside-paths",
            help="Accept image paths that lead outside the dataset folder (.., absolute, symlinks).",
        ),
    ] = False,
    corrections: Annotated[
        Path | None,
        typer.Option(
            help="Labels corrected by a review (item_id, label[, previous_label]; the web app's "
            "corrections.csv): this version carries them instead of the original labels."
        ),
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            help="validation (models are judged on it), training (a model's training set, for "
            "`assay audit leakage`) or production (an unlabelled sample of what the line makes "
            "now, for `assay audit coverage`); models are validated on validation sets only."
        ),
    ] = "validation",
    home: HomeOption = None,
) -> None:
    """Register a dataset version (re-adding identical content changes nothing).

    Several experts per item: give label_<annotator> columns, or --annotations. Without a label
    column, an item's reference label is the experts' majority; items without one are disputed.
    """
    from rich.markup import escape

    from assay.services.datasets import register_dataset
    from assay.services.remote import is_url

    ws = _workspace(home)
    registered = register_dataset(
        ws,
        name,
        path,
        format,
        label_column,
        id_column,
        annotations,
        allow_outside_paths,
        corrections,
        role,
    )
    d = registered.dataset
    verb = "added" if registered.created else "unchanged, already registered as"
    console.print(
        f"{verb} [bold]{d.ref}[/] ({d.format}, {d.n_items} items, version {d.version[:12]})"
    )
    for note in d.notes if registered.created else []:
        console.print(f"  note: {note}")
    here = str(path) if is_url(str(path)) else str(Path(path).expanduser().resolve())
    if not registered.created and d.source != here:
        # The version keeps the files it was registered from: say where they are (a review
        # moved its folder and read 'unchanged' as pointing at the new one).
        console.print(
            f"  note: {d.ref} reads its files from {escape(d.source)}, where it was registered; "
            "to read them here, register this folder under another name",
            highlight=False,
        )


@dataset_app.command("list")
def dataset_list(home: HomeOption = None) -> None:
    """List every dataset version."""
    from rich.table import Table

    from assay.services.datasets import list_datasets

    table = Table("dataset", "role", "format", "items", "classes", "version", "added")
    for d in list_datasets(_workspace(home, create=False)):
        table.add_row(
            d.ref,
            d.role,
            d.format,
            str(d.n_items),
            str(len(d.label_counts)),
            d.version[:12],
            d.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    print_table(table)


@dataset_app.command("show")
def dataset_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")], home: HomeOption = None
) -> None:
    """Show one dataset version: labels, columns, source."""
    from assay.services.datasets import get_dataset

    d = get_dataset(_workspace(home, create=False), ref)
    console.print(
        f"[bold]{d.ref}[/]  version {d.version}\n  {d.role} set, format {d.format} ({d.kind}), {d.n_items} items\n  source {d.source}"
    )
    console.print("  labels: " + ", ".join(f"{k} ({v})" for k, v in d.label_counts.items()))
    cols = [c["name"] for c in d.columns]
    console.print(
        f"  columns ({len(cols)}): " + ", ".join(cols[:20]) + (" ..." if len(cols) > 20 else "")
    )
    from assay.services.budget import decisions_summary

    served = decisions_summary(_workspace(home, create=False), d)
    console.print(
        f"  decisions served: {served['n_on_version']} on this version, "
        f"{served['n_on_dataset']} on all versions ({served['n_models']} model version(s))"
    )
    for note in d.notes:
        console.print(f"  note: {note}")
