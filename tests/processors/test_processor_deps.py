"""Each agent's processor, wired as the worker wires it, runs on in-memory stores alone.

The runtime builds every processor's dependency object from the worker's resources with the
builder the agent registers; here those builders get resources on in-memory stores, and any
call into a Redis client fails the test, so a processor (or builder) that reached past the
stores it is given, to Redis, would be caught.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import fields
from typing import Any

import pytest
import redis.asyncio.client as redis_client

from greencredit.agents import applications, devices, feedback, lender_configs, loans, transactions
from greencredit.agents.resources import Resources
from greencredit.settings import Settings
from greencredit.streams.topics import DEAD_LETTER, TOPICS, topic
from tests.factories import application, example, native, transaction
from tests.processors.support import TENANT, lender_event, memory_resources, messages

# One valid event per input topic (the schemas' shipped examples).
_EVENTS = {
    "greencredit.repayments": "repayment",
    "greencredit.device-signals": "device_signal",
    "greencredit.analyst-feedback": "analyst_feedback",
    "greencredit.loan-servicing": "loan_servicing",
    "greencredit.loan-clock": "loan_clock",
    "greencredit.customer-updates": "customer_contact_update",
    "greencredit.loan-openings": "disbursement",
}


class _Wiring:
    """Stands in for the runtime and the Faust app: keeps what the agents register."""

    def __init__(self) -> None:
        self.settings = Settings(DAILY_CHECK_ENABLED=False)
        self.attached: dict[str, tuple[Any, Any, Any]] = {}
        self.options: dict[str, dict[str, Any]] = {}

    def attach(
        self, app: Any, channel: str, name: str, process: Any, deps_of: Any, **options: Any
    ) -> None:
        self.attached[name] = (channel, process, deps_of)
        self.options[name] = options


def _wiring() -> _Wiring:
    wiring = _Wiring()
    by_name = {spec.name: spec.name for spec in TOPICS}
    for module in (applications, transactions, devices, feedback, lender_configs, loans):
        module.register(None, by_name, wiring)
    return wiring


def _wired() -> dict[str, tuple[Any, Any, Any]]:
    """name -> (topic, processor, deps builder), as the agents register them."""
    return _wiring().attached


def test_the_high_volume_streams_are_pipelined_and_the_others_quiet() -> None:
    # Pipelined: their next batch reads nothing the last one writes after its acks but
    # the done markers the loop guards. Quiet: low volume, so an idle agent wakes rarely.
    options = _wiring().options
    hot = {"applications", "transactions", "device_signals"}
    assert {name for name, o in options.items() if o.get("pipelined")} == hot
    assert {name for name, o in options.items() if o.get("quiet")} == set(options) - hot


def _event(channel: str) -> dict[str, Any]:
    if channel == "greencredit.loan-applications":
        return application(1, tenant_id=TENANT)
    if channel == "greencredit.transactions":
        return transaction(1, tenant_id=TENANT)
    if channel == "greencredit.lender-config":
        return lender_event()
    event = example(_EVENTS[channel])
    event["event_id"] = str(uuid.uuid4())
    if "schedule" in event:  # the example lists its first instalments only
        event["amount_minor"] = sum(i["amount_due_minor"] for i in event["schedule"])
    return native(topic(channel).schema, event)


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any command sent through a Redis client fails."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a processor reached a Redis client")

    monkeypatch.setattr(redis_client.Redis, "execute_command", refuse)
    monkeypatch.setattr(redis_client.Pipeline, "execute", refuse)


WIRED = _wired()


def test_every_wired_processor_has_an_event_here() -> None:
    """A new agent fails this until the test below can feed it."""
    assert {channel for channel, _, _ in WIRED.values()} == set(_EVENTS) | {
        "greencredit.loan-applications",
        "greencredit.transactions",
        "greencredit.lender-config",
    }


@pytest.mark.parametrize("name", sorted(WIRED))
def test_a_wired_processor_runs_on_in_memory_stores_alone(name: str, no_redis: None) -> None:
    channel, process, deps_of = WIRED[name]
    resources, *_ = memory_resources()
    deps = deps_of(resources)
    # Its own part, not the worker's whole set of resources.
    assert {f.name for f in fields(deps)} < {f.name for f in fields(Resources)} | {"local_timezone"}

    async def main():
        return await process(deps, messages(channel, [_event(channel)]))

    result = asyncio.run(main())
    assert [o.record for o in result.outputs if o.topic == DEAD_LETTER.name] == []
