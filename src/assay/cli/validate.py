"""`assay validate` and `assay profile`: run a model over a dataset and judge it; measure it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assay.cli.common import DeviceOption, HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, print_profile, print_summary, print_verdict, progress_bar
from assay.core.errors import InputError

if TYPE_CHECKING:
    from assay.services.validation import ValidationOutcome


def _key_values(items: list[str], option: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} takes KEY=VALUE, got {item!r}")
        out.append((key.strip(), value.strip()))
    return tuple(out)


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
        ws = _workspace(home, create=False)
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
    ws = _workspace(home, create=False)
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

    mv = get_model(_workspace(home, create=False), model)
    verify_model_file(mv)
    if mv.runtime == "recorded":
        raise InputError(f"{mv.ref} is recorded predictions: there is no model here to measure")
    result = profile_model(mv, batch_size, seconds, device)
    if json_out:
        print(json.dumps(result, indent=2))
        return
    print_profile(mv.ref, result)
