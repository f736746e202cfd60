"""`greencredit worker` (the Faust worker) and `greencredit health` (probe a worker)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import urllib.error
import urllib.request

import orjson
import typer

from greencredit.infra.broker_wait import broker_problem, wait_for_broker
from greencredit.infra.embedded import StackError
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.infra.worker_process import health_page
from greencredit.infra.worker_supervisor import Supervisor
from greencredit.settings import Settings, get_settings
from greencredit.streams.topics import TOPICS

from ._output import fail, print_json


def worker_command(
    loglevel: str = typer.Option("info", "--loglevel", "-l", help="debug, info, warning, error"),
    processes: int | None = typer.Option(
        None,
        "--processes",
        "-p",
        min=1,
        max=64,
        help="Run N worker processes under a supervisor that restarts any that dies. "
        "Worker i serves /health/ on WORKER_WEB_PORT + i.",
    ),
) -> None:
    """Run the stream-processing worker (same as `faust -A greencredit.agents.app worker`)."""
    faust_level = {"warning": "warn", "critical": "crit"}.get(loglevel.lower(), loglevel.lower())
    if faust_level not in ("crit", "error", "warn", "info", "debug"):
        fail(f"unknown log level {loglevel!r}: use debug, info, warning or error")
    if processes is not None:
        raise typer.Exit(_supervise(processes, loglevel))
    try:
        from greencredit.agents.app import app
    except StackError as exc:
        fail(str(exc))
    settings = get_settings()
    _wait_for_broker(settings)
    sys.argv = [
        "greencredit worker",
        "worker",
        "--loglevel",
        faust_level,
        "--web-port",
        str(settings.worker_web_port),
        "--web-host",
        settings.worker_web_host,
    ]
    app.main()


def _supervise(processes: int, loglevel: str) -> int:
    """Run `processes` single workers, one web port each, under the supervisor."""
    settings = get_settings()
    base = settings.worker_web_port
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )

    def command(slot: int) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "greencredit", "worker", "--loglevel", loglevel]
        return argv, {**os.environ, "WORKER_WEB_PORT": str(base + slot)}

    return Supervisor(
        processes,
        command,
        probe=lambda slot: health_page(base + slot, settings.worker_web_host),
    ).run()


def _wait_for_broker(settings: Settings) -> None:
    """Faust exits when the broker is not up yet: wait (logged, with backoff) instead."""
    config = settings.kafka_client_config(resolve_endpoints(settings).kafka)
    inputs = [t.name for t in TOPICS if t.direction == "input"]
    # Faust has not configured logging yet: give the waiting lines a handler of their own.
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    )
    waiting = logging.getLogger("greencredit.infra.broker_wait")
    waiting.addHandler(handler)
    waiting.propagate = False
    try:
        wait_for_broker(config["bootstrap.servers"], lambda: broker_problem(config, inputs))
    except ValueError as exc:  # a malformed KAFKA_BOOTSTRAP_SERVERS
        fail(str(exc))
    finally:
        waiting.removeHandler(handler)
        waiting.propagate = True


def health_command(
    url: str = typer.Option(None, help="Health page; default: this host's worker port."),
    timeout: float = typer.Option(5.0),
) -> None:
    """Exit 0 when the worker answers its health page and is ready, 1 otherwise.

    Not ready (HTTP 503) means a rebalance has been stuck longer than WORKER_REBALANCE_STUCK_S:
    the page is printed and the exit code is 1, so an orchestrator restarts the worker.
    """
    settings = get_settings()
    target = url or f"http://{settings.worker_web_host}:{settings.worker_web_port}/health/"
    if not target.startswith(("http://", "https://")):
        fail("health URL must be http(s)")
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:  # noqa: S310
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        typer.echo(f"unhealthy: HTTP {exc.code}", err=True)
        with contextlib.suppress(orjson.JSONDecodeError):
            print_json(orjson.loads(exc.read()))
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"unhealthy: {exc}", err=True)
        raise typer.Exit(1) from None
    print_json(body)
