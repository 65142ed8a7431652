"""`assay model`: register model versions, look at them, point aliases at them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, print_table, print_type_review
from assay.core.errors import InputError
from assay.core.spec import parse_model_spec

model_app = typer.Typer(help="Register and inspect models.", no_args_is_help=True)


@model_app.command("add")
def model_add(
    name: Annotated[str, typer.Argument(help="Model name.")],
    file: Annotated[
        str | None,
        typer.Argument(help="Model file (.onnx, or .skops for scikit-learn; a path or a URL)."),
    ] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="Model spec (YAML).")] = None,
    predictions: Annotated[
        str | None,
        typer.Option(
            "--predictions",
            help="Predictions the model made elsewhere, instead of a model file: Parquet or CSV "
            "with item_id and score_<label> columns (or a predicted column), or for detection "
            "a COCO results JSON. Joined with a dataset's items by id when validated.",
        ),
    ] = None,
    show_types: Annotated[
        bool,
        typer.Option(
            "--show-types",
            help="List the types a .skops file would construct and who trusts them; add nothing.",
        ),
    ] = False,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="A skops type you reviewed with --show-types and trust (repeatable); "
            "it joins the spec's trusted_types.",
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="The runtime to load FILE with when not the one its suffix names "
            "(e.g. openvino for an .onnx file).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Register a model version after checking it against its spec.

    A .skops file is loaded only when every type it names is a data type Assay trusts, or one you
    reviewed and trusted: nothing in a model file runs code.
    """
    from assay.services.models import register_model, review_model_types

    if (file is None) == (predictions is None):
        raise InputError("model add takes a model FILE or --predictions FILE (one of the two)")
    if show_types:
        print_type_review(review_model_types(_workspace(home), file or ""))
        return
    if spec is None:
        raise InputError("model add needs --spec SPEC.yaml (or --show-types to review a file)")
    registered = register_model(
        _workspace(home),
        name,
        file or predictions or "",
        spec,
        tuple(trust or ()),
        predictions=predictions is not None,
        runtime=runtime,
    )
    m = registered.model
    verb = "added" if registered.created else "unchanged, already registered as"
    console.print(
        f"{verb} [bold]{m.ref}[/] ({m.runtime}, {len(m.spec['labels'])} labels, version {m.version[:12]})"
    )
    spec_read = parse_model_spec(m.spec)
    pos, neg = spec_read.positive_index, spec_read.negative_index
    if spec_read.task == "classification" and pos is not None and neg is not None:
        # What the rates count: a positive class taken by position has passed models that miss
        # half the defects (false alarms and missed defects swapped).
        named = spec_read.positive is not None or spec_read.negative is not None
        console.print(
            f"  positive (defect) class: {escape(spec_read.labels[pos])}, good class: "
            f"{escape(spec_read.labels[neg])}"
            + ("" if named else " (by position: name positive: in the spec to choose)"),
            highlight=False,
        )
    origin = m.signature.get("mlflow")
    if origin:
        console.print(
            f"  from MLflow {origin['uri']}: registered model {origin.get('name', '-')} version "
            f"{origin.get('version', '-')}, run {origin.get('run_id', '-')}"
        )


@model_app.command("list")
def model_list(home: HomeOption = None) -> None:
    """List every model version."""
    from rich.table import Table

    from assay.services.models import aliases, list_models

    ws = _workspace(home, create=False)
    named: dict[int, list[str]] = {}
    for a in aliases(ws):
        named.setdefault(a.model_id, []).append(a.alias)
    table = Table("model", "aliases", "runtime", "labels", "size", "version", "added")
    for m in list_models(ws):
        table.add_row(
            m.ref,
            ", ".join(named.get(m.id, [])),
            m.runtime,
            ", ".join(m.spec["labels"]),
            f"{m.size_bytes / 1e6:.2f} MB",
            m.version[:12],
            m.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    print_table(table)


@model_app.command("show")
def model_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")], home: HomeOption = None
) -> None:
    """Show one model version: spec and signature."""
    import yaml

    from assay.services.models import get_model

    m = get_model(_workspace(home, create=False), ref)
    console.print(
        f"[bold]{m.ref}[/]  version {m.version}\n  runtime {m.runtime}, file {m.file_name} ({m.size_bytes} bytes)"
    )
    console.print("  inputs: " + ", ".join(m.signature.get("inputs", [])))
    console.print("  outputs: " + ", ".join(m.signature.get("outputs", [])))
    console.print(yaml.safe_dump(m.spec, sort_keys=False).rstrip())


@model_app.command("alias")
def model_alias(
    ref: Annotated[str, typer.Argument(help="The version: NAME@VERSION (scanner@3).")],
    alias: Annotated[str, typer.Argument(help="The alias: production, candidate, line-3, ...")],
    remove: Annotated[bool, typer.Option("--remove", help="Remove the alias instead.")] = False,
    home: HomeOption = None,
) -> None:
    """Point NAME@ALIAS at a version (scanner@production): --baseline and --model accept it."""
    from assay.services.models import remove_alias, set_alias

    ws = _workspace(home, create=False)
    if remove:
        name = ref.split("@", 1)[0]
        remove_alias(ws, name, alias)
        console.print(f"removed {escape(name)}@{escape(alias)}")
        return
    import getpass

    a = set_alias(ws, ref, alias, f"{getpass.getuser()} (cli)")
    console.print(f"{escape(a.name)}@{escape(a.alias)} → {escape(a.name)}@{a.number}")
