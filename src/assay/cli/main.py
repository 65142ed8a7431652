"""``assay``: validate industrial ML models from the command line.

Exit codes: 0 success, 1 the verdict failed or is inconclusive (a release gate stops), 2 bad input
or usage (one line), 3 an internal error (one line and the path of the traceback's log).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from assay.cli.audit import audit_app
from assay.cli.common import OPENED
from assay.cli.common import close_workspaces as _close_workspaces
from assay.cli.datasets import dataset_app
from assay.cli.demo import demo_command
from assay.cli.history import history as history_command
from assay.cli.models import model_app
from assay.cli.output import console, err_console
from assay.cli.runs import compare_command, run_app
from assay.cli.serve import serve, worker
from assay.cli.store import store_app
from assay.cli.tokens import token_app
from assay.cli.validate import profile_command, validate_command
from assay.core.errors import AssayError, describe_exception, one_line

# Nothing heavy is imported at module level (the store pulls in SQLAlchemy and Alembic, a
# validation numpy, scikit-learn and onnxruntime): `assay --help` and typos answer at once, and
# each command imports what it uses; each command group is a module of its own.

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
app.add_typer(dataset_app, name="dataset")
app.add_typer(model_app, name="model")
app.add_typer(run_app, name="run")
app.add_typer(token_app, name="token")
app.add_typer(store_app, name="store")
app.add_typer(audit_app, name="audit")
app.command("validate")(validate_command)
app.command("profile")(profile_command)
app.command("compare")(compare_command)
app.command("history")(history_command)
app.command("demo")(demo_command)
app.command("serve")(serve)
app.command("worker")(worker)


def _crash_log(home: Path | None = None) -> Path:
    """Write the current exception's traceback to a log file and return its path: the
    ``logs/`` folder of the command's store (``home``, else the default one) when it exists,
    else the system's temporary folder. (The default alone sent a ``--home`` command's log to
    the temporary folder: a review.)"""
    import tempfile
    import traceback
    from datetime import UTC, datetime

    from assay.services.workspace import default_home

    folder = (home if home is not None else default_home()) / "logs"
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
        _quiet_spark()
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _quiet_spark() -> None:
    """Spark's JVM logs each task it aborts and each socket the stopping driver closes, with
    the whole Java stack: a stopped run's CI log ended in pages of them. The process is ending,
    so its session's log goes quiet (nothing when no session runs)."""
    if "pyspark" not in sys.modules:
        return
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.sparkContext.setLogLevel("OFF")
    except Exception:  # a session already gone: nothing to quiet
        pass


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
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Store folder of the command that follows (it may also come after it)."
        ),
    ] = None,
) -> None:
    """Validate industrial machine-learning models before they ship."""
    if home is not None:
        # The commands read their --home from ASSAY_HOME when not given one: set it for this
        # command only (main() restores it), so that a --home after the command still wins.
        _SAVED_HOME.append(os.environ.get("ASSAY_HOME"))
        os.environ["ASSAY_HOME"] = str(home)


_SAVED_HOME: list[str | None] = []


def _restore_home() -> None:
    while _SAVED_HOME:
        previous = _SAVED_HOME.pop()
        if previous is None:
            os.environ.pop("ASSAY_HOME", None)
        else:
            os.environ["ASSAY_HOME"] = previous


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
    homes: list[Path] = []
    try:
        try:
            code = cli_command().main(args=argv, prog_name="assay", standalone_mode=False)
        finally:
            homes = [ws.home for ws in OPENED]  # where a crash log goes: this command's store
            _close_workspaces()
            _restore_home()
    except AssayError as exc:
        message = one_line(str(exc), 1000)  # never a whole expanded value, never two lines
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except typer.TyperException as exc:  # usage errors: typer bundles its own click
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"error: {exc}")
        return int(getattr(exc, "exit_code", 2))
    except Exception as exc:  # a bug, not the user's input: say so, keep the traceback aside
        try:
            where = f"traceback in {_crash_log(homes[-1] if homes else None)}"
        except OSError:
            where = "no log could be written"
        err_console.print(
            f"[red]internal error:[/] {escape(describe_exception(exc))} ({where})",
            highlight=False,
            soft_wrap=True,
        )
        return 3
    if code == INTERRUPTED:  # typer turns a KeyboardInterrupt into this code, silently
        _quiet_spark()  # Ctrl-C: PySpark's own handler raised it
        err_console.print("interrupted (a run in progress is recorded as interrupted)")
    return code if isinstance(code, int) else 0


# The exit code of a command stopped by Ctrl-C or SIGTERM, as shells give 128 + SIGINT.
INTERRUPTED = 130


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
