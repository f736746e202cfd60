"""`greencredit portfolio`: per-lender totals of (green) loans from the disbursement topic."""

from __future__ import annotations

from typing import Any

import typer

from greencredit.infra.endpoints import resolve_endpoints
from greencredit.models.green import portfolio_totals
from greencredit.settings import get_settings
from greencredit.streams.codec import codec_from_settings
from greencredit.streams.publish import read_topic

from ._output import fail, print_json


def read_portfolio(client_config: dict[str, Any], codec: Any) -> dict[str, dict[str, Any]]:
    """Totals per tenant over every disbursement (de-duplicated by event id)."""
    seen: dict[str, dict[str, Any]] = {}
    for result in read_topic(client_config, "greencredit.disbursements", codec, idle_timeout=2.0):
        if result.event is not None:
            seen[result.event.value["event_id"]] = result.event.value
    return portfolio_totals(seen.values())


def portfolio_command(
    tenant: str = typer.Option(None, help="Only this lender."),
) -> None:
    """Green portfolio view: loans, principal, green share, CO2e avoided, by purpose."""
    settings = get_settings()
    try:
        endpoints = resolve_endpoints(settings)
        totals = read_portfolio(
            settings.kafka_client_config(endpoints.kafka), codec_from_settings(settings)
        )
    except Exception as exc:
        fail(str(exc))
    if tenant is not None:
        totals = {tenant: totals.get(tenant, {})}
    print_json(totals)
