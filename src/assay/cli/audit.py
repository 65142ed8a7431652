"""``assay audit``: checks of the data around a validation (leakage from training, coverage of
today's production)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assay.cli.common import HomeOption, workspace
from assay.cli.output import whole_lines as _console

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
    min_correlation: Annotated[
        float,
        typer.Option(help="Near-duplicate images: least correlation of their 64x64 thumbnails."),
    ] = 0.99,
    model: Annotated[
        str | None,
        typer.Option(
            help="Also compare items through this model's embedding output (nearest neighbours)."
        ),
    ] = None,
    max_embedding_distance: Annotated[
        float,
        typer.Option(help="With --model: the largest cosine distance of two items counted as one."),
    ] = 0.01,
    column: Annotated[
        list[str] | None,
        typer.Option(
            "--column",
            help="Tables: a column rows are compared on (repeatable; default: every column both "
            "hold but ids, labels, dates and times; give the model's inputs).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Find validation items that duplicate training items (exactly, or as near-duplicate images)
    and overlapping ids or time ranges. Exit 1 when an item leaked."""
    from rich.markup import escape

    from assay.services.leakage import audit_leakage

    console = _console()

    found = audit_leakage(
        workspace(home, create=False),
        train,
        dataset,
        out,
        max_hamming,
        time_column,
        min_correlation,
        model,
        max_embedding_distance,
        columns=column or None,
    )
    s = found.summary()
    colour = "red" if s["n_leaked_items"] else "green"
    console.print(
        f"[bold]{escape(s['dataset'])}[/] against training set [bold]{escape(s['train'])}[/]: "
        f"[{colour}]{s['n_leaked_items']} leaked item(s)[/] of {s['n_items']:,} "
        f"({s['n_exact_duplicates']} exact, {s['n_near_duplicates']} near duplicate(s)"
        + (
            f", {s['n_embedding_neighbours']} embedding neighbour(s)"
            if s["settings"].get("embedding")
            else ""
        )
        + ")",
        highlight=False,
    )
    ids = s["id_overlap"]
    console.print(
        "shared item ids: " + (escape(ids["note"]) if ids["n"] is None else f"{ids['n']:,}"),
        highlight=False,
    )
    t = s["time_overlap"]
    if t is not None and t.get("note"):
        console.print(f"time: {escape(t['note'])}", highlight=False)
    elif t is not None:
        console.print(
            f"time ({escape(t['column'])}): training {t['train_range'][0]} .. {t['train_range'][1]}, "
            f"this set {t['range'][0]} .. {t['range'][1]}; {t['n_inside_train_range']:,} item(s) "
            "inside the training range",
            highlight=False,
        )
    table = "columns" in s["settings"]  # a table's near pairs are rows equal once rounded
    for pair in s["pairs"][:10]:
        extra = {
            "near": ", equal once rounded" if table else f", {int(pair['distance'])} bit(s)",
            "embedding": f", cosine distance {pair['distance']:.4f}",
        }.get(pair["kind"], "")
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


@audit_app.command("coverage")
def coverage(
    production: Annotated[
        str,
        typer.Option(help="A sample of today's production (registered with --role production)."),
    ],
    dataset: Annotated[str, typer.Option(help="The validation dataset (NAME or NAME@N).")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Re-weight this model's latest finished run on the dataset to production."
        ),
    ] = None,
    run: Annotated[
        str | None, typer.Option(help="Re-weight this finished run (on the dataset) instead.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also write coverage.json and coverage.html here.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Compare a production sample with a validation set: per column (PSI, KS, chi-squared),
    overall (a domain classifier's AUC), the regions barely covered, and a run's accuracy
    re-weighted to the production mix."""
    from rich.markup import escape

    from assay.core.errors import InputError
    from assay.services.coverage import audit_coverage
    from assay.services.datasets import get_dataset
    from assay.services.models import get_model
    from assay.services.runs import get_run

    console = _console()
    ws = workspace(home, create=False)
    if model is not None and run is not None:
        raise InputError("give --model or --run, not both")
    dv = get_dataset(ws, dataset)
    record = None
    if run is not None:
        record = get_run(ws, run)
        if record.dataset_id != dv.id or record.status != "finished":
            raise InputError(f"run {record.id[:12]} is not a finished run on {dv.ref}")
    elif model is not None:
        mv = get_model(ws, model)
        record = ws.catalog.find_finished_run(mv.id, dv.id)
        if record is None:
            raise InputError(f"{mv.ref} has no finished run on {dv.ref}: validate it first")
    found = audit_coverage(ws, production, dv, record, out)
    s = found.summary()
    d = s["domain"]
    console.print(
        f"[bold]{escape(s['dataset'])}[/] against production sample [bold]"
        f"{escape(s['production'])}[/] ({s['n_production']:,} items)",
        highlight=False,
    )
    if d is not None:
        colour = "red" if d["shifted"] else "green"
        console.print(
            f"domain classifier ROC-AUC [{colour}]{d['auc']:.3f}[/] [{d['ci_low']:.3f}, "
            f"{d['ci_high']:.3f}] ({'shifted' if d['shifted'] else 'no shift it can detect'}); "
            f"{d['n_production_uncovered']:,} production item(s) with P(production) > 0.9",
            highlight=False,
        )
    psi = "not given (too few production items)" if s["max_psi"] is None else f"{s['max_psi']:.3f}"
    console.print(f"largest PSI {psi} ({s['psi_reading']})", highlight=False)
    few = s["max_psi"] is None  # too few production items for a PSI to mean anything
    for c in sorted(s["columns"], key=lambda c: -c["psi"])[:8]:
        console.print(
            f"  {escape(c['column'])}: "
            + ("" if few else f"PSI {c['psi']:.3f}, ")
            + f"{c['test']} p "
            + ("–" if c["p_value"] is None else f"{c['p_value']:.3g}"),
            highlight=False,
        )
    for r in s["regions"][:8]:
        console.print(
            f"  barely covered: {escape(r['column'])} {escape(r['bin'])}: "
            f"{100 * r['production_share']:.1f}% of production, "
            f"{100 * r['validation_share']:.1f}% of validation",
            highlight=False,
        )
    for note in s["notes"]:
        console.print(f"note: {escape(note)}", highlight=False)
    rw = s["reweighted"]
    if rw is not None and rw["production_mix"].get("not_covered"):
        console.print(
            f"accuracy of run {rw['run_id'][:8]}: {rw['as_validated']['value']:.4f} as validated; "
            "none on the production mix: " + escape(str(rw["production_mix"].get("why_none"))),
            highlight=False,
        )
    elif rw is not None:
        a, m = rw["as_validated"], rw["production_mix"]
        console.print(
            f"accuracy of run {rw['run_id'][:8]}: {a['value']:.4f} as validated, "
            f"{m['value']:.4f} "
            + (
                "(too few effective items for an interval)"
                if m["too_few"]
                else f"[{m['ci_low']:.4f}, {m['ci_high']:.4f}]"
            )
            + " on the production mix "
            f"(effective n {rw['effective_n']:.0f} of {rw['n_judged']})",
            highlight=False,
        )
    where = out if out is not None else found.folder
    assert where is not None
    console.print(f"report: {where / 'coverage.html'}", highlight=False)
