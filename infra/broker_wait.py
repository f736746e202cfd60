"""Wait for the Kafka broker (and the engine's input topics) before a worker starts.

Faust exits at once when it cannot bootstrap, so a worker started before its broker (a
container that comes up first, an embedded stack still starting) died with a traceback.
This waits instead: a TCP probe, then a metadata request that must list the input
topics, retried with capped exponential backoff and one clear log line per attempt.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

__all__ = ["BrokerProbe", "broker_problem", "wait_for_broker"]

log = logging.getLogger(__name__)

BrokerProbe = Callable[[], str | None]  # None when ready, else what is missing


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    hosts = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"bootstrap server {server.strip()!r} is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def broker_problem(
    client_config: Mapping[str, Any], topics: Iterable[str], timeout: float = 3.0
) -> str | None:
    """None when a broker answers metadata listing every topic in `topics`, else why not."""
    bootstrap = str(client_config["bootstrap.servers"])
    for host, port in _hosts(bootstrap):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            break
        except OSError:
            continue
    else:
        # Nothing listens: say so without letting librdkafka log its own connect errors.
        return "not reachable"
    admin = AdminClient({**client_config, "log_level": 0})
    try:
        listed = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        return f"not answering ({exc.args[0].name() if exc.args else 'metadata'})"
    missing = sorted(set(topics) - set(listed))
    if missing:
        return f"up but missing {len(missing)} topics (e.g. {missing[0]})"
    return None


def wait_for_broker(
    bootstrap: str,
    probe: BrokerProbe,
    first_delay_s: float = 0.5,
    max_delay_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Block until `probe` reports the broker ready; return the number of failed attempts.

    The delay doubles from `first_delay_s` up to `max_delay_s`; there is no deadline (an
    orchestrator restarts or stops a worker that waits too long; the log says why).
    """
    delay, failures = first_delay_s, 0
    while True:
        problem = probe()
        if problem is None:
            if failures:
                log.warning("kafka broker at %s ready after %d attempts", bootstrap, failures + 1)
            return failures
        failures += 1
        log.warning(
            "kafka broker %s at %s; retrying in %.1f s (attempt %d)",
            problem,
            bootstrap,
            delay,
            failures,
        )
        sleep(delay)
        delay = min(delay * 2, max_delay_s)
