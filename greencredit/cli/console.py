"""``greencredit console``: the fraud-ops web console (cases, labels, lenders' AHP judgements)."""

from __future__ import annotations

import logging
import socket

import typer

from greencredit.infra.embedded import StackError
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.settings import get_settings
from greencredit.streams.codec import codec_from_settings

from ._output import fail

__all__ = ["console_command"]


def console_command(
    host: str = typer.Option(None, "--host", help="Address to bind; default CONSOLE_HOST."),
    port: int = typer.Option(
        None, "--port", min=1, max=65535, help="Port to serve on; default CONSOLE_PORT."
    ),
) -> None:
    """Serve the fraud-ops web console (cases, labels, lenders' AHP judgements) until Ctrl-C."""
    from aiohttp import web

    from greencredit.console.service import ConsoleService
    from greencredit.console.web import build_app

    settings = get_settings()
    try:
        # Only Kafka is needed: KAFKA_BOOTSTRAP_SERVERS, else the running embedded stack's.
        kafka = settings.kafka_bootstrap_servers or resolve_endpoints(settings).kafka
    except StackError as exc:
        fail(str(exc))
    bind_host = host or settings.console_host
    bind_port = port or settings.console_port
    _check_bindable(bind_host, bind_port)
    service = ConsoleService(
        settings.kafka_client_config(kafka),
        codec_from_settings(settings),
        max_cases=settings.console_max_cases,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    typer.echo(f"greencredit console on http://{bind_host}:{bind_port}/ (Kafka {kafka})")
    try:
        web.run_app(build_app(service), host=bind_host, port=bind_port, print=None)
    except OSError as exc:
        fail(f"cannot serve on {bind_host}:{bind_port}: {exc.strerror or exc}")


def _check_bindable(host: str, port: int) -> None:
    """Fail fast, before connecting to Kafka, when the address is taken or not local."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")
