"""Waiting for the broker: capped exponential backoff, one clear line per attempt."""

from __future__ import annotations

import logging

import pytest

from greencredit.infra.broker_wait import broker_problem, wait_for_broker
from greencredit.infra.embedded import free_port


def test_backs_off_exponentially_up_to_the_cap_and_logs_each_attempt(caplog):
    answers = iter(["not reachable"] * 6 + [None])
    slept: list[float] = []
    with caplog.at_level(logging.WARNING, logger="greencredit.infra.broker_wait"):
        failures = wait_for_broker(
            "127.0.0.1:1", lambda: next(answers), 0.5, 3.0, sleep=slept.append
        )
    assert failures == 6
    assert slept == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "kafka broker not reachable at 127.0.0.1:1; retrying in 0.5 s (attempt 1)"
    assert len(lines) == 7 and "ready after 7 attempts" in lines[-1]


def test_a_ready_broker_costs_no_wait_and_no_log(caplog):
    slept: list[float] = []
    with caplog.at_level(logging.WARNING, logger="greencredit.infra.broker_wait"):
        assert wait_for_broker("b:9092", lambda: None, sleep=slept.append) == 0
    assert slept == [] and caplog.records == []


def test_nothing_listening_is_reported_as_not_reachable():
    config = {"bootstrap.servers": f"127.0.0.1:{free_port()}"}
    assert broker_problem(config, ["greencredit.loan-applications"], timeout=0.5) == (
        "not reachable"
    )


@pytest.mark.parametrize("bootstrap", ["127.0.0.1:notaport", ""])
def test_a_malformed_bootstrap_is_a_clear_error(bootstrap):
    with pytest.raises(ValueError, match="not host:port"):
        broker_problem({"bootstrap.servers": bootstrap}, [])
