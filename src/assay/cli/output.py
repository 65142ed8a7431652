"""Terminal rendering shared by the commands: tables, summaries, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from assay.core.results import ValidationResult

# soft_wrap: a line is printed whole (a terminal folds it where it must); Rich's own wrapping
# cut notes, reasons and verdicts at 80 columns in a pipe or a CI log, mid-sentence.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

# A pipe or a log has no width: tables printed there keep every cell whole (rows as long as they
# need) instead of Rich's 80 columns, which cut names and ids that a script then greps for.
PIPED_WIDTH = 10_000


def whole_lines() -> Console:
    """The terminal, or, piped, a console whose lines and cells stay whole (made per call: the
    output stream may have been replaced, as a test's capture does)."""
    if console.is_terminal:
        return console
    return Console(file=console.file, width=PIPED_WIDTH, no_color=console.no_color)


def print_table(table: Table) -> None:
    """Print ``table`` on the terminal's width, or with whole cells when stdout is not one."""
    whole_lines().print(table)


SUMMARY_METRICS = [
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "mcc",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "ece",
]
# The vision tasks' own headline numbers, after the item-level decision's.
TASK_SUMMARY = {
    "detection": ["map", "map_50", "map_75", "mar_100"],
    "segmentation": ["mean_iou", "pixel_accuracy", "boundary_f1"],
    "anomaly": [
        "image_auroc",
        "f1_max",
        "false_alarm_rate",
        "missed_defect_rate",
        "pixel_auroc",
        "aupro",
    ],
}


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def print_summary(result: ValidationResult) -> None:
    """The short verdict-free summary printed after a validation."""
    out = console  # soft-wrapped: its lines stay whole in a CI log (tests capture it)
    out.print(
        f"[bold]{result.model.name}@{result.model.number}[/] on [bold]{result.dataset.name}@{result.dataset.number}[/]: "
        f"{result.n_items} items, {result.n_judged} judged, "
        + (f"[red]{result.n_failed} not judged[/]" if result.n_failed else "0 not judged")
    )
    answered = [sum(col) for col in zip(*result.confusion_matrix, strict=False)]
    item_level = (result.task or {}).get("name") in (None, "classification", "anomaly")
    if item_level and len(answered) > 1 and sum(answered) >= 10 and sum(map(bool, answered)) == 1:
        # A model that ignores its input can pass a policy without a kappa or an AUC check
        # on an unbalanced set (a review's constant 0.8/0.2 passed accuracy >= 0.75).
        only = result.labels[next(k for k, n in enumerate(answered) if n)]
        out.print(
            f"[yellow]warning[/]: the model answered {escape(str(only))} for every judged item",
            highlight=False,
        )
    pixels = ((result.task or {}).get("segmentation") or {}).get("pixel_confusion") or {}
    if pixels.get("matrix"):
        # A segmenter painting background everywhere passed pixel_accuracy >= 0.95 (0.989) and
        # mean_iou >= 0.45 (background's IoU carries the mean) without a word (a review).
        labels, matrix = pixels["labels"], pixels["matrix"]
        called = [sum(row[k] for row in matrix) for k in range(len(labels))]
        if sum(called) and sum(map(bool, called)) == 1:
            only = labels[next(k for k, n in enumerate(called) if n)]
            out.print(
                f"[yellow]warning[/]: the model's masks are {escape(str(only))} in every pixel "
                "of every judged image",
                highlight=False,
            )
    scored = (result.task or {}).get("box_scores") or {}
    if scored.get("outside_0_1"):  # the report said so; a CI log shows only this
        out.print(
            f"[yellow]warning[/]: {scored['outside_0_1']} of the model's {scored['n_boxes']} boxes "
            "scored outside [0, 1]: logits, perhaps? The score threshold and each image's score "
            "read them as probabilities (AP, a ranking, does not mind)",
            highlight=False,
        )
    same = (result.comparison or {}).get("score_differences") or {}
    if (
        same.get("n_items")
        and same.get("n_decision_flips") == 0
        and ((same.get("any_class") or {}).get("max") == 0)
    ):  # a spec that only reorders a map's labels, a re-export bit for bit: nothing to compare
        base = (result.comparison or {}).get("baseline") or {}
        out.print(
            f"[yellow]warning[/]: the candidate's scores equal the baseline's "
            f"({escape(str(base.get('model')))}@{base.get('number')}) on every item both "
            "judged: this comparison measures no change",
            highlight=False,
        )
    if result.n_split_batches:
        out.print(
            f"[yellow]warning[/]: {result.n_split_batches} batch(es) ({result.n_split_items} "
            "items) failed whole and were run item by item: the model may not take batches of "
            "this size (see --batch-size)",
            highlight=False,
        )
    if result.n_reused:
        source = (result.reuse or {}).get("from_run") or "an earlier run"
        out.print(
            f"{result.n_reused} item(s) reused the model's recorded outputs (run "
            f"{str(source)[:12]}), {result.n_inferred} went through the model",
            highlight=False,
        )
    leak = result.leakage
    if leak is not None:
        clean = leak["metrics_without_leaked"].get("accuracy")
        out.print(
            f"leakage from {escape(leak['train'])}: {leak['n_leaked_items']} item(s) duplicate "
            "training items"
            + (
                f"; without them, accuracy {clean['value']:.4f} [{clean['ci_low']:.4f}, "
                f"{clean['ci_high']:.4f}] on {leak['n_judged_without_leaked']} item(s)"
                if leak["n_leaked_items"] and clean and clean["value"] is not None
                else ""
            ),
            highlight=False,
        )
    cov = result.coverage
    if cov is not None and cov.get("domain"):
        d, rw = cov["domain"], cov.get("reweighted")
        out.print(
            f"coverage of {escape(cov['production'])}: domain classifier ROC-AUC {d['auc']:.3f} "
            f"[{d['ci_low']:.3f}, {d['ci_high']:.3f}]"
            + ("" if cov["max_psi"] is None else f", largest PSI {cov['max_psi']:.3f}")
            + (
                f"; accuracy on the production mix {rw['production_mix']['value']:.4f} "
                + (
                    "(too few effective items for an interval)"
                    if rw["production_mix"].get("too_few")
                    else f"[{rw['production_mix']['ci_low']:.4f}, "
                    f"{rw['production_mix']['ci_high']:.4f}]"
                )
                if rw and rw["production_mix"]["value"] is not None
                else "; no accuracy on the production mix: "
                + escape(str(rw["production_mix"].get("why_none")))
                if rw and rw["production_mix"].get("not_covered")
                else ""
            ),
            highlight=False,
        )
    for note in (cov or {}).get("notes") or []:  # what the audit could not compare
        out.print(f"  coverage note: {escape(note)}", highlight=False)
    fixed = result.label_corrections
    if fixed:
        out.print(
            f"labels corrected by review: {fixed['n_changed']} item(s) relabelled "
            f"({escape(str(fixed['file']))}"
            + (f", from {escape(str(fixed['parent']))}" if fixed.get("parent") else "")
            + ")",
            highlight=False,
        )
    table = Table(show_edge=False, box=None, pad_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(
        f"{int(result.config.get('confidence', 0.95) * 100)}% interval", justify="right"
    )
    task = str((result.task or {}).get("name") or "")
    for key in SUMMARY_METRICS + TASK_SUMMARY.get(task, []):
        m = result.metrics.get(key)
        if m is None:
            continue
        interval = (
            "" if m.ci_low is None or m.ci_high is None else f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"
        )
        table.add_row(key, _fmt(m.value), interval)
    out.print(table)
    if result.threshold is not None and result.threshold.get("value") is not None:
        target = result.threshold.get("target_false_alarm_rate")
        left = [
            f"{result.threshold[key]:,} {what} left out"
            for key, what in (
                ("n_left_out_not_good", "not good"),
                ("n_left_out_not_scored", "unscored"),
            )
            if result.threshold.get(key)
        ]  # the calibration set's items it did not use: said here, not only in result.json
        out.print(
            f"threshold {result.threshold['value']:.6g}"
            + (
                f" (calibrated for a {target:.2%} false-alarm rate on "
                f"{result.threshold.get('n_calibration', '?')} good items"
                + "".join(f"; {part}" for part in left)
                + ")"
                if target
                else " (the spec's)"
            )
        )
    if result.n_failed:
        for reason, n in list(result.failures.get("by_reason", {}).items())[:5]:
            out.print(f"  [red]{n}[/] not judged: {escape(reason)}")
    summary = (result.profile or {}).get("summary")
    if result.profile and "error" in result.profile:
        out.print(f"[yellow]profile not taken:[/] {escape(result.profile['error'])}")
    if summary:
        reused = (result.profile or {}).get("reused_from")
        source = (
            f" (measured by run {reused['run_id'][:12]} on this machine; --no-reuse measures anew)"
            if reused
            else ""
        )
        out.print(
            f"profile: p99 {summary['latency_p99_ms']:.3f} ms per item (1 thread), "
            f"{summary['throughput_items_per_s']:,.0f} items/s (all cores), "
            f"peak memory {summary['peak_memory_mb']:.0f} MiB{source}"
        )
    comparison = (result.expert_agreement or {}).get("comparison")
    if comparison:
        out.print(
            f"experts: {escape(comparison['statement'])} (model κ {_fmt(comparison['model_mean_kappa'])}, "
            f"experts κ {_fmt(comparison['expert_mean_kappa'])})"
        )


STATUS_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "too_few": "magenta"}


def print_verdict(result: ValidationResult) -> None:
    """The paired ledger, every check that did not simply pass, and the verdict line."""
    out = console  # soft-wrapped: its lines stay whole in a CI log (tests capture it)
    # Here, not at the top: the view reads the verdict module (numpy), which `assay --help` and
    # the commands that print no verdict do not need to load.
    from assay.reports.views.verdict import VerdictView

    view = VerdictView.of(result)
    paired = view.paired
    if paired:
        p_value = "—" if paired.mcnemar_p is None else f"{paired.mcnemar_p:.3g}"
        out.print(
            f"vs baseline {escape(paired.baseline)}"
            f"{' (predictions reused from its run)' if paired.reused else ''}: "
            f"[green]{paired.n_fixed} fixed[/], [red]{paired.n_broken} broken[/], "
            f"{paired.n_both_right} both right, {paired.n_both_wrong} both wrong; "
            f"McNemar p = {p_value}"
        )
    if not result.verdict:
        return
    for check in view.checks:
        if check.status == "pass":
            continue
        style = "bold red" if check.blocks else STATUS_STYLE.get(check.status, "")
        out.print(f"  [{style}]{check.status:>7}[/] {escape(check.reason)}")
    status = view.status
    colour = "bold green" if status == "pass" else "bold red" if view.blocking else "yellow"
    note = f" ({view.note})" if view.note else ""
    out.print(
        f"verdict: [{colour}]{status.upper()}[/]: {escape(view.summary)}{note}",
        soft_wrap=True,
    )


@contextmanager
def progress_bar(description: str) -> Iterator[tuple[Any, Any, Any]]:
    """(on_start, on_progress, on_stage) callbacks driving a Rich bar with items/s and ETA.

    The bar appears only once the work starts, so input errors found before that print alone.
    ``on_stage`` names what runs after the pass (statistics, the report): a spinner line under
    the finished bar says so (a plain line in a log), instead of a silent wait at 100%.
    """
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    progress = Progress(*columns, console=err_console, transient=False)
    task = progress.add_task(description, total=None, rate="")

    started = False

    def on_start(total: int) -> None:
        nonlocal started
        progress.update(task, total=total)
        progress.start()
        started = True

    def on_progress(n: int) -> None:
        progress.advance(task, n)
        speed = progress.tasks[0].speed
        progress.update(task, rate=f"{speed:,.0f} items/s" if speed else "")

    status: list[Any] = []  # the spinner of the stage after the pass, once there is one

    def on_stage(stage: str) -> None:
        nonlocal started
        if started:
            progress.stop()  # the bar stays printed at 100%; the stage shows below it
            started = False
        if not err_console.is_terminal:  # a CI log: one line per stage, no animation
            err_console.print(stage, highlight=False)
            return
        if status:
            status[0].update(stage)
            return
        status.append(err_console.status(stage, spinner="dots"))
        status[0].start()

    try:
        yield on_start, on_progress, on_stage
    finally:
        if started:
            progress.stop()
        if status:
            status[0].stop()


def print_profile(ref: str, profile: dict[str, Any]) -> None:
    """The profile's settings as a table, then the summary a policy checks."""
    table = Table(show_edge=False, box=None, pad_edge=False)
    for name in ("threads", "batch", "p50 ms", "p95 ms", "p99 ms", "items/s", "calls"):
        table.add_column(name, justify="right")
    for s in profile["settings"]:
        table.add_row(
            str(s["threads"]),
            str(s["batch_size"]),
            f"{s['p50_ms']:.3f}",
            f"{s['p95_ms']:.3f}",
            f"{s['p99_ms']:.3f}",
            f"{s['items_per_s']:,.0f}",
            str(s["n_calls"]),
        )
    m = profile["machine"]
    console.print(f"[bold]{escape(ref)}[/] on {escape(str(m['cpu']))} ({m['cpu_count']} CPUs)")
    console.print(table)
    summary = profile["summary"]
    console.print(
        f"peak memory {summary['peak_memory_mb']:.0f} MiB (process alone: "
        f"{profile['process_baseline_mb']:.0f} MiB), load {summary['load_time_s']:.3f} s, "
        f"file {summary['model_size_mb']:.2f} MiB"
    )


def print_type_review(review: Any) -> None:
    """The types of a skops file, grouped by who trusts them (a ``TypeReview``)."""
    groups = (
        ("trusted by skops", review.by_skops, "green"),
        ("data types Assay trusts", review.data_types, "green"),
        ("trusted by you (spec trusted_types)", review.by_user, "yellow"),
        ("refused unless you trust them (--trust TYPE)", review.refused, "magenta"),
        ("never loaded: they can run code", review.forbidden, "bold red"),
    )
    for title, names, style in groups:
        if not names:
            continue
        console.print(f"[{style}]{title}[/] ({len(names)})")
        for name in names:
            console.print(f"  {escape(name)}", highlight=False)
