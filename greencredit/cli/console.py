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
    from datetime import timedelta

    from aiohttp import web

    from greencredit.console.auth import Users
    from greencredit.console.db import connect, database_url
    from greencredit.console.service import ConsoleService
    from greencredit.console.web import WebSettings, build_app

    settings = get_settings()
    try:
        # Kafka (KAFKA_BOOTSTRAP_SERVERS, else the running embedded stack's) and PostgreSQL
        # (DATABASE_URL, else the embedded stack's); Redis is not needed.
        kafka = settings.kafka_bootstrap_servers or resolve_endpoints(settings).kafka
        url = database_url(settings)
    except StackError as exc:
        fail(str(exc))
    bind_host = host or settings.console_host
    bind_port = port or settings.console_port
    _check_bindable(bind_host, bind_port)
    engine = connect(url)
    users = Users(
        engine,
        session_idle=timedelta(seconds=settings.console_session_idle_s),
        session_max=timedelta(seconds=settings.console_session_max_s),
        window=timedelta(seconds=settings.console_login_window_s),
        max_failures_user=settings.console_login_max_failures_user,
        max_failures_address=settings.console_login_max_failures_address,
    )
    service = ConsoleService(
        settings.kafka_client_config(kafka), codec_from_settings(settings), engine, users=users
    )
    web_settings = WebSettings(
        trusted_proxy=settings.console_trusted_proxy,
        proxy_user_header=settings.console_proxy_user_header,
        cookie_secure=settings.console_cookie_secure,
        session_max_s=settings.console_session_max_s,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    typer.echo(f"greencredit console on http://{bind_host}:{bind_port}/ (Kafka {kafka})")
    try:
        web.run_app(build_app(service, web_settings), host=bind_host, port=bind_port, print=None)
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
