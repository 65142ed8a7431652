"""``assay``: validate industrial ML models from the command line.

Exit codes: 0 success, 1 the verdict failed or is inconclusive (a release gate stops), 2 bad input
or usage (one line), 3 an internal error (one line and the path of the traceback's log).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from assay.cli.audit import audit_app
from assay.cli.common import DeviceOption, HomeOption
from assay.cli.common import close_workspaces as _close_workspaces
from assay.cli.common import workspace as _workspace
from assay.cli.history import history as history_command
from assay.cli.output import (
    console,
    err_console,
    print_profile,
    print_summary,
    print_type_review,
    print_verdict,
    progress_bar,
)
from assay.core.errors import AssayError, InputError, describe_exception, one_line

if TYPE_CHECKING:
    from assay.services.validation import ValidationOutcome

# Nothing heavy is imported at module level (the store pulls in SQLAlchemy and Alembic, a
# validation numpy, scikit-learn and onnxruntime): `assay --help` and typos answer at once, and
# each command imports what it uses.

app = typer.Typer(
    name="assay",
    help="Validate industrial machine-learning models before they ship.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: Rich's help panels import Markdown and table code worth ~0.15 s on every
    # `assay --help`, which a command-line tool in CI pays on each call.
    rich_markup_mode=None,
)
dataset_app = typer.Typer(help="Register and inspect datasets.", no_args_is_help=True)
model_app = typer.Typer(help="Register and inspect models.", no_args_is_help=True)
run_app = typer.Typer(help="List and inspect validation runs.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
app.add_typer(model_app, name="model")
app.add_typer(run_app, name="run")
token_app = typer.Typer(help="API tokens for the web app and its API.", no_args_is_help=True)
app.add_typer(token_app, name="token")
store_app = typer.Typer(help="Check the store.", no_args_is_help=True)
app.add_typer(store_app, name="store")
app.add_typer(audit_app, name="audit")

# How often `assay serve` checks its workers and the jobs they hold.
SUPERVISE_EVERY_S = 5.0


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
    from assay.services.datasets import register_dataset

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


@dataset_app.command("list")
def dataset_list(home: HomeOption = None) -> None:
    """List every dataset version."""
    from rich.table import Table

    from assay.services.datasets import list_datasets

    table = Table("dataset", "role", "format", "items", "classes", "version", "added")
    for d in list_datasets(_workspace(home)):
        table.add_row(
            d.ref,
            d.role,
            d.format,
            str(d.n_items),
            str(len(d.label_counts)),
            d.version[:12],
            d.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@dataset_app.command("show")
def dataset_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")], home: HomeOption = None
) -> None:
    """Show one dataset version: labels, columns, source."""
    from assay.services.datasets import get_dataset

    d = get_dataset(_workspace(home), ref)
    console.print(
        f"[bold]{d.ref}[/]  version {d.version}\n  {d.role} set, format {d.format} ({d.kind}), {d.n_items} items\n  source {d.source}"
    )
    console.print("  labels: " + ", ".join(f"{k} ({v})" for k, v in d.label_counts.items()))
    cols = [c["name"] for c in d.columns]
    console.print(
        f"  columns ({len(cols)}): " + ", ".join(cols[:20]) + (" ..." if len(cols) > 20 else "")
    )
    from assay.services.budget import decisions_summary

    served = decisions_summary(_workspace(home), d)
    console.print(
        f"  decisions served: {served['n_on_version']} on this version, "
        f"{served['n_on_dataset']} on all versions ({served['n_models']} model version(s))"
    )
    for note in d.notes:
        console.print(f"  note: {note}")


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

    ws = _workspace(home)
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
    console.print(table)


@model_app.command("show")
def model_show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")], home: HomeOption = None
) -> None:
    """Show one model version: spec and signature."""
    import yaml

    from assay.services.models import get_model

    m = get_model(_workspace(home), ref)
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

    ws = _workspace(home)
    if remove:
        name = ref.split("@", 1)[0]
        remove_alias(ws, name, alias)
        console.print(f"removed {escape(name)}@{escape(alias)}")
        return
    import getpass

    a = set_alias(ws, ref, alias, f"{getpass.getuser()} (cli)")
    console.print(f"{escape(a.name)}@{escape(a.alias)} → {escape(a.name)}@{a.number}")


def _key_values(items: list[str], option: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} takes KEY=VALUE, got {item!r}")
        out.append((key.strip(), value.strip()))
    return tuple(out)


@store_app.command("verify")
def store_verify(home: HomeOption = None) -> None:
    """Check every stored model file and manifest against its digest (exit 2 on any mismatch)."""
    from assay.services.integrity import verify_store

    checks = verify_store(_workspace(home))
    style = {"ok": "green", "recorded": "yellow", "changed": "bold red", "missing": "bold red"}
    for c in checks:
        console.print(
            f"[{style[c.status]}]{c.status:>8}[/] {escape(c.what)}  {escape(str(c.path))}",
            highlight=False,
        )
    bad = [c for c in checks if c.status in ("changed", "missing")]
    if bad:
        raise InputError(
            f"{len(bad)} of {len(checks)} stored files do not match their digests: "
            + ", ".join(c.what for c in bad[:3])
        )
    console.print(f"{len(checks)} stored files checked, all match their digests")


@store_app.command("backup")
def store_backup(
    folder: Annotated[Path, typer.Argument(help="Folder for the backup (created if needed).")],
    home: HomeOption = None,
) -> None:
    """Copy the SQLite catalog consistently, even while other commands run (SQLite's backup API)."""
    from assay.services.backup import backup_catalog
    from assay.services.workspace import default_home

    root = (home or default_home()).expanduser()
    path = backup_catalog(root, folder.expanduser())
    console.print(f"catalog backed up to {escape(str(path))}")
    console.print(
        f"  the stored files are immutable: copy {escape(str(root))}/datasets, models and runs "
        "beside it (e.g. rsync) for a complete backup"
    )


@store_app.command("restore")
def store_restore(
    backup: Annotated[Path, typer.Argument(help="A catalog file written by `assay store backup`.")],
    home: HomeOption = None,
) -> None:
    """Put a catalog backup in place; the catalog it replaces is kept beside it."""
    from assay.services.backup import restore_catalog
    from assay.services.workspace import default_home

    root = (home or default_home()).expanduser()
    kept = restore_catalog(root, backup.expanduser())
    console.print(f"catalog restored from {escape(str(backup))}")
    if kept is not None:
        console.print(f"  the catalog it replaced is kept as {escape(str(kept))}")


@app.command("validate")
def validate_command(
    model: Annotated[
        str | None, typer.Option("--model", help="Model NAME or NAME@VERSION.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Dataset NAME or NAME@VERSION.")
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", help="Folder (or s3:// URL) for report.html, result.json, predictions.parquet."
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Model in production (NAME@VERSION) to compare with."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (YAML) of release checks.")
    ] = None,
    slice_: Annotated[
        list[str] | None,
        typer.Option(
            "--slice", help="Slice to report: COLUMN, COLUMN*COLUMN or COLUMN>=VALUE (repeatable)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Items per batch (default 64 images; 8,192-65,536 table rows, 8 MiB of input)."
        ),
    ] = None,
    confidence: Annotated[float, typer.Option(help="Confidence level of intervals.")] = 0.95,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    auc_mode: Annotated[
        str, typer.Option(help="ROC/PR histograms: auto (exact up to 250k items), exact, binned.")
    ] = "auto",
    threads: Annotated[
        int | None, typer.Option(help="Inference threads (default: all cores).")
    ] = None,
    explore: Annotated[
        bool, typer.Option(help="Search error slices and doubtful labels (--no-explore: skip).")
    ] = True,
    profile: Annotated[
        bool, typer.Option(help="Measure the model's latency, throughput and memory.")
    ] = True,
    profile_seconds: Annotated[
        float, typer.Option(help="Measuring time per model for the profile.")
    ] = 2.0,
    train: Annotated[
        str | None,
        typer.Option(
            help="The model's training set (role training): audit the dataset for items leaked "
            "from it, and report the metrics without them (policy: leaked_items == 0)."
        ),
    ] = None,
    production: Annotated[
        str | None,
        typer.Option(
            help="A sample of today's production (role production): audit how the dataset "
            "covers it and re-weight the accuracy to its mix (policy: domain_auc, max_psi)."
        ),
    ] = None,
    reuse: Annotated[
        bool,
        typer.Option(
            help="Reuse this model version's recorded outputs for items an earlier run of it "
            "already answered with the same content, and its profile on this machine "
            "(--no-reuse: run the model on every item and measure it again)."
        ),
    ] = True,
    engine: Annotated[
        str, typer.Option(help="Where the pass runs: local (this process) or spark.")
    ] = "local",
    spark_master: Annotated[
        str | None, typer.Option(help="Spark master URL (default local[*]).")
    ] = None,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option(help="Spark setting KEY=VALUE (repeatable), e.g. spark.executor.memory=8g."),
    ] = None,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            help="Seconds between checkpoints of the pass, which --resume continues from "
            "(0: after every batch)."
        ),
    ] = 60.0,
    calibration: Annotated[
        str | None,
        typer.Option(
            "--calibration",
            help="Anomaly models: dataset of good items (NAME@VERSION) to calibrate the threshold "
            "on, at --false-alarm-rate.",
        ),
    ] = None,
    false_alarm_rate: Annotated[
        float,
        typer.Option(help="Anomaly models: the false-alarm rate the calibrated threshold aims at."),
    ] = 0.01,
    device: DeviceOption = "cpu",
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Let --out replace the files of a run it already holds."),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Continue an interrupted run from its last checkpoint, with the model, dataset, "
            "baseline, policy and settings it was started with.",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run a model over a dataset, compare with a baseline, judge by a policy (exit 1: it failed)."""
    if explore and resume is None:
        from assay.services import sidecar

        sidecar.warm()  # its imports start now, beside this process's own (about 1 s)
    from assay.core.config import ValidationConfig
    from assay.services.validation import resume_validation, validate

    if resume is not None:
        given = [
            flag
            for flag, value in (
                ("--model", model),
                ("--dataset", dataset),
                ("--baseline", baseline),
                ("--policy", policy),
                ("--slice", slice_),
                ("--calibration", calibration),
            )
            if value
        ]
        if given:
            raise InputError(f"--resume continues a run as it was started: drop {given[0]}")
        ws = _workspace(home)
        with progress_bar(f"resuming run {resume}") as (on_start, on_progress, on_stage):
            outcome = resume_validation(
                ws,
                resume,
                out,
                on_start,
                on_progress,
                overwrite=overwrite,
                on_stage=on_stage,
            )
        _report_outcome(outcome)
        return
    if model is None or dataset is None:
        raise InputError("validate needs --model and --dataset (or --resume RUN_ID)")
    config = ValidationConfig(
        batch_size,
        confidence,
        resamples,
        seed,
        auc_mode,  # type: ignore[arg-type]  # checked in ValidationConfig.__post_init__
        threads=threads,
        explore=explore,
        profile=profile,
        profile_seconds=profile_seconds,
        engine=engine,  # type: ignore[arg-type]  # checked in ValidationConfig.__post_init__
        spark_master=spark_master,
        spark_conf=_key_values(spark_conf or [], "--spark-conf"),
        checkpoint_every_s=checkpoint_every,
        false_alarm_rate=false_alarm_rate,
        device=device,
        reuse=reuse,
    )
    ws = _workspace(home)
    with progress_bar(f"validating {model} on {dataset}") as (on_start, on_progress, on_stage):
        outcome = validate(
            ws,
            model,
            dataset,
            out,
            config,
            on_start=on_start,
            on_progress=on_progress,
            on_stage=on_stage,
            overwrite=overwrite,
            origin="cli",
            baseline=baseline,
            policy=policy,
            slices=tuple(slice_ or ()),
            calibration=calibration,
            train=train,
            production=production,
        )
    _report_outcome(outcome)


def _report_outcome(outcome: ValidationOutcome) -> None:
    """The summary, the verdict and where the report is; exit 1 when the verdict blocks."""
    print_summary(outcome.result)
    print_verdict(outcome.result)
    where = outcome.out_dir or outcome.run_dir
    console.print(f"report: {where / 'report.html'}")
    if outcome.blocking:
        raise typer.Exit(1)


@app.command("profile")
def profile_command(
    model: Annotated[str, typer.Argument(help="Model NAME or NAME@VERSION.")],
    batch_size: Annotated[int, typer.Option(help="Batch size of the throughput setting.")] = 64,
    seconds: Annotated[float, typer.Option(help="Measuring time (about 1.5x in wall time).")] = 4.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the profile as JSON.")] = False,
    device: DeviceOption = "cpu",
    home: HomeOption = None,
) -> None:
    """Measure a model's load time, latency percentiles, throughput and peak memory."""
    import json

    from assay.services.models import get_model
    from assay.services.profile import profile_model

    if not 0.2 <= seconds <= 600:
        raise InputError(f"--seconds must lie in [0.2, 600], got {seconds}")
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    from assay.services.integrity import verify_model_file

    mv = get_model(_workspace(home), model)
    verify_model_file(mv)
    if mv.runtime == "recorded":
        raise InputError(f"{mv.ref} is recorded predictions: there is no model here to measure")
    result = profile_model(mv, batch_size, seconds, device)
    if json_out:
        print(json.dumps(result, indent=2))
        return
    print_profile(mv.ref, result)


@app.command("compare")
def compare_command(
    candidate: Annotated[str, typer.Argument(help="Run id of the candidate (a prefix is enough).")],
    baseline: Annotated[str, typer.Argument(help="Run id of the baseline, same dataset version.")],
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (YAML) of release checks.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the comparison's report and verdict.")
    ] = None,
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
    outcome = compare_runs(_workspace(home), candidate, baseline, policy, out)
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
    doc = sequential_comparison(_workspace(home), candidate, baseline, order, margin, alpha, out)
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
    else:
        verdict = "[yellow]not yet[/]: the bounds still hold -margin; wait for more labels"
    console.print(
        f"after {doc['n_items']:,} labelled items ({doc['n_waiting']:,} waiting for a label): "
        f"candidate - baseline accuracy {f['mean']:+.4f}, anytime-valid {level} bounds "
        f"[{f['lower']:+.4f}, {f['upper']:+.4f}]",
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

    ws = _workspace(home)
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
    # Piped into a log or a script, the rows stay whole rather than wrapped at 80 columns.
    from rich.console import Console

    (console if console.is_terminal else Console(file=console.file, width=240)).print(table)
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

    row = tag_run(_workspace(home), run_id, list(tags or []))
    console.print(f"run {row.id[:12]}: tags {', '.join(row.tags) or '(none)'}")


@run_app.command("note")
def run_note(
    run_id: Annotated[str, typer.Argument(help="Run id (a prefix is enough).")],
    note: Annotated[str, typer.Argument(help="The note (empty: clear it).")],
    home: HomeOption = None,
) -> None:
    """Write a note on a run (what was special about it); the run's results never change."""
    from assay.services.runs import annotate_run

    row = annotate_run(_workspace(home), run_id, note)
    console.print(f"run {row.id[:12]}: note {'set' if row.note else 'cleared'}")


@run_app.command("show")
def run_show(
    run_id: Annotated[str, typer.Argument(help="Run id (a prefix is enough).")],
    home: HomeOption = None,
) -> None:
    """Show a finished run's summary (or why it did not finish)."""
    from assay.reports.json import read_result_json
    from assay.services.runs import get_run

    ws = _workspace(home)
    r = get_run(ws, run_id)
    path = Path(r.run_dir) / "result.json"
    if r.status != "finished" or not path.exists():
        console.print(f"run {r.id}: {r.status}" + (f" ({r.error})" if r.error else ""))
        return
    result = read_result_json(path)
    print_summary(result)
    print_verdict(result)
    console.print(f"report: {Path(r.run_dir) / 'report.html'}")


app.command("history")(history_command)


@app.command("demo")
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


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what the token is for.")],
    role: Annotated[
        str,
        typer.Option(help="viewer (read), validator (also upload and run), admin (also tokens)."),
    ] = "viewer",
    home: HomeOption = None,
) -> None:
    """Create an API token and print it (it is shown once; only its hash is stored)."""
    token, secret = _workspace(home).access.create_token(name, role)
    console.print(
        f"token {escape(token.name)} ({token.role}); keep it secret, it is not shown again:"
    )
    print(secret)


@token_app.command("list")
def token_list(home: HomeOption = None) -> None:
    """List tokens (names and roles, never secrets)."""
    from rich.table import Table

    table = Table("name", "role", "created", "revoked")
    for t in _workspace(home).access.list_tokens():
        table.add_row(
            escape(t.name),
            t.role,
            t.created_at.strftime("%Y-%m-%d %H:%M"),
            t.revoked_at.strftime("%Y-%m-%d %H:%M") if t.revoked_at else "",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(help="Token name.")], home: HomeOption = None
) -> None:
    """Revoke a token: it and its browser sessions stop working at once."""
    _workspace(home).access.revoke_token(name)
    console.print(f"revoked {escape(name)}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Background worker processes started with the server (0: none).")
    ] = 1,
    max_upload_mb: Annotated[int, typer.Option(help="Largest model upload accepted.")] = 512,
    certfile: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve HTTPS instead of plain HTTP.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="Private key (PEM) of --certfile.")] = None,
    home: HomeOption = None,
) -> None:
    """Run the web app (UI at /, API at /api, OpenAPI at /openapi.json) and a worker."""
    if (certfile is None) != (keyfile is None):
        raise InputError("--certfile and --keyfile go together")
    for tls in (certfile, keyfile):
        if tls is not None and not tls.is_file():
            raise InputError(f"TLS file does not exist: {tls}")
    import subprocess
    import threading

    import uvicorn

    from assay.services.jobs import recover_jobs
    from assay.web.app import create_app
    from assay.worker.queue import open_queue

    ws = _workspace(home)
    command = [sys.executable, "-m", "assay", "worker", "--home", str(ws.home)]
    command += ["--exit-with", str(os.getpid())]
    procs = [subprocess.Popen(command) for _ in range(max(0, workers))]
    stopping = threading.Event()

    def supervise() -> None:
        """Restart a worker that died, and requeue (once) or fail the job it held, within
        SUPERVISE_EVERY_S: a killed worker never leaves a job running for good."""
        queue = open_queue(ws.home)
        while not stopping.wait(SUPERVISE_EVERY_S):
            for i, proc in enumerate(procs):
                if proc.poll() is not None and not stopping.is_set():
                    err_console.print(f"worker {proc.pid} stopped ({proc.returncode}): restarted")
                    procs[i] = subprocess.Popen(command)
            try:
                recover_jobs(ws, queue.enqueue)
            except Exception as exc:  # a busy catalog: the next round retries
                err_console.print(f"job recovery postponed: {describe_exception(exc)}")

    threading.Thread(target=supervise, name="assay-supervisor", daemon=True).start()
    console.print(
        f"Assay for {escape(str(ws.home))} at {_serve_url(host, port, certfile is not None)} "
        f"({len(procs)} worker{'s' if len(procs) != 1 else ''}; Ctrl-C stops)",
        highlight=False,
        soft_wrap=True,
    )
    try:
        uvicorn.run(
            create_app(ws.home, max_upload_mb),
            host=host,
            port=port,
            log_level="warning",
            ssl_certfile=None if certfile is None else str(certfile),
            ssl_keyfile=None if keyfile is None else str(keyfile),
        )
    finally:
        stopping.set()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def _serve_url(host: str, port: int, tls: bool) -> str:
    """The address to open: a wildcard host is reached through this machine's own name."""
    import socket

    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:  # an IPv6 literal
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


@app.command("worker")
def worker(
    workers: Annotated[int, typer.Option(help="Runs executed at the same time.")] = 1,
    exit_with: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this process (the server) is gone.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run queued validations (the web app queues them; see ASSAY_QUEUE_URL for Redis)."""
    from assay.worker.queue import open_queue, stop_with_parent

    ws = _workspace(home)
    from assay.services.jobs import recover_jobs

    console.print(f"worker for {ws.home}: waiting for runs")
    if exit_with is not None:
        stop_with_parent(exit_with)
    queue = open_queue(ws.home)
    requeued, failed = recover_jobs(ws, queue.enqueue)  # jobs of a worker that died
    for job in requeued + failed:
        console.print(f"  job {job.id[:12]}: {escape(job.error or '')}")
    queue.consumer(workers).run()


def _crash_log() -> Path:
    """Write the current exception's traceback to a log file and return its path: the store's
    ``logs/`` folder when it exists, else the system's temporary folder."""
    import tempfile
    import traceback
    from datetime import UTC, datetime

    from assay.services.workspace import default_home

    folder = default_home() / "logs"
    if not folder.is_dir():
        folder = Path(tempfile.gettempdir()) / "assay-logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"crash-{stamp}-{os.getpid()}.log"
    path.write_text(f"assay {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}", encoding="utf-8")
    return path


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager, a CI timeout, ``kill``) stops a command like Ctrl-C: the run
    in progress is recorded as interrupted, and its half-written files removed."""
    import signal
    import threading

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"assay {version('assay')}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Validate industrial machine-learning models before they ship."""


# What a value of each type looks like in --help (typer's default prints <str>, <path>, <int>).
_METAVARS = {"int": "N", "float": "NUMBER", "path": "PATH"}


def _plain_metavars(command: Any) -> Any:
    """Give every option and argument a metavar that reads as what to type: NAME, PATH, N."""
    for param in command.params:
        described = getattr(param, "type_descriptor", None)
        if getattr(param, "param_type_name", "") == "argument":
            param.display_type_rich = lambda ctx: None  # its NAME says it; no <str> after it
        elif param.metavar is None and described is not None and not getattr(param, "is_flag", 0):
            kind = "path" if described.is_path else param.bare_type()
            param.metavar = _METAVARS.get(kind, (param.name or "value").rstrip("_").upper())
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)
    return command


def cli_command() -> Any:
    """The click command behind ``assay`` (built once per process)."""
    return _plain_metavars(typer.main.get_command(app))


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 pass, 1 the verdict failed or is inconclusive, 2 bad input (one line),
    3 an internal error (one line and the path of a log holding the traceback)."""
    _stop_on_sigterm()
    try:
        try:
            code = cli_command().main(args=argv, prog_name="assay", standalone_mode=False)
        finally:
            _close_workspaces()
    except AssayError as exc:
        message = one_line(str(exc), 1000)  # never a whole expanded value, never two lines
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted (a run in progress is recorded as interrupted)")
        return 130
    except typer.TyperException as exc:  # usage errors: typer bundles its own click
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {exc}")
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # a bug, not the user's input: say so, keep the traceback aside
        try:
            where = f"traceback in {_crash_log()}"
        except OSError:
            where = "no log could be written"
        err_console.print(
            f"[red]internal error:[/] {escape(describe_exception(exc))} ({where})",
            highlight=False,
            soft_wrap=True,
        )
        return 3
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point. The process ends here: its sidecar (if a validation started
    one) is stopped rather than waited for, so that a command failing on bad input exits at once
    instead of after the sidecar's imports."""
    try:
        code = main()
    finally:
        from assay.services import sidecar

        sidecar.stop()
    sys.exit(code)


if __name__ == "__main__":
    run()
