"""Where Kafka and Redis are: the environment's servers, else the embedded stack's."""

from __future__ import annotations

from dataclasses import dataclass

from greencredit.settings import Settings

from .embedded import EmbeddedStack, StackError

__all__ = ["Endpoints", "resolve_endpoints"]


@dataclass(frozen=True)
class Endpoints:
    """Addresses the engine connects to."""

    kafka: str
    redis: str


def resolve_endpoints(settings: Settings) -> Endpoints:
    """KAFKA_BOOTSTRAP_SERVERS / REDIS_URL when set, else the running embedded stack."""
    kafka = settings.kafka_bootstrap_servers
    redis = settings.redis_url
    if kafka and redis:
        return Endpoints(kafka, redis)
    state = EmbeddedStack(settings.state_dir).running()
    if state is None:
        missing = " and ".join(
            name
            for name, value in (("KAFKA_BOOTSTRAP_SERVERS", kafka), ("REDIS_URL", redis))
            if not value
        )
        raise StackError(
            f"{missing} not set and no embedded stack is running in {settings.state_dir}: "
            "run `greencredit stack up` or set the variables"
        )
    return Endpoints(kafka or str(state.kafka), redis or str(state.redis))
