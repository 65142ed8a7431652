"""`assay serve` and `assay worker`: the web app, its workers, and the queue they drain."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assay.cli.common import HomeOption
from assay.cli.common import workspace as _workspace
from assay.cli.output import console, err_console
from assay.core.errors import InputError, describe_exception

# How often `assay serve` checks its workers and the jobs they hold.
SUPERVISE_EVERY_S = 5.0


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
    if certfile is not None and keyfile is not None:
        _check_tls(certfile, keyfile)
    if not 0 < port < 65536:
        raise InputError(f"--port {port}: a port is a number from 1 to 65535")
    _check_port(host, port)  # before the workers start and the address is printed
    import subprocess
    import threading

    import uvicorn

    from assay.services.jobs import recover_jobs
    from assay.web.app import create_app
    from assay.worker.queue import open_queue

    ws = _workspace(home)
    queue = open_queue(ws.home)  # a damaged queue is named here, not in a thread's traceback
    command = [sys.executable, "-m", "assay", "worker", "--home", str(ws.home)]
    command += ["--exit-with", str(os.getpid())]
    procs = [subprocess.Popen(command) for _ in range(max(0, workers))]
    stopping = threading.Event()

    def supervise() -> None:
        """Restart a worker that died, and requeue (once) or fail the job it held, within
        SUPERVISE_EVERY_S: a killed worker never leaves a job running for good."""
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


def _check_port(host: str, port: int) -> None:
    """InputError unless ``host:port`` can be listened on (in use, or not an address here)."""
    import socket

    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise InputError(
            f"--host {host}: not an address of this machine ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program has "
                "it, or the address is not this machine's; choose another --port or --host"
            ) from None


def _check_tls(certfile: Path, keyfile: Path) -> None:
    """InputError unless the certificate and key load together."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise InputError(
            f"--certfile {certfile} and --keyfile {keyfile} are not a PEM certificate and its "
            f"key ({getattr(exc, 'reason', None) or exc})"
        ) from None


def _serve_url(host: str, port: int, tls: bool) -> str:
    """The address to open: a wildcard host is reached through this machine's own name."""
    import socket

    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:  # an IPv6 literal
        shown = f"[{shown}]"
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def worker(
    workers: Annotated[int, typer.Option(help="Runs executed at the same time.")] = 1,
    exit_with: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this process (the server) is gone.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Run queued validations (the web app queues them; see ASSAY_QUEUE_URL for Redis)."""
    from assay.worker.queue import open_queue, stop_with_parent

    ws = _workspace(home, create=False)
    from assay.services.jobs import recover_jobs

    queue = open_queue(ws.home)
    console.print(f"worker for {ws.home}: waiting for runs")
    if exit_with is not None:
        stop_with_parent(exit_with)
    requeued, failed = recover_jobs(ws, queue.enqueue)  # jobs of a worker that died
    for job in requeued + failed:
        console.print(f"  job {job.id[:12]}: {escape(job.error or '')}")
    queue.consumer(workers).run()
