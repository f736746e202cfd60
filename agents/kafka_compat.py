"""Adjustments to the Kafka clients Faust builds, where Faust offers no setting."""

from __future__ import annotations

import aiokafka

__all__ = ["bound_fetch_wait"]


def bound_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's consumer wait at most `max_wait_ms` per fetch.

    Faust creates its aiokafka consumer with fetch_max_wait_ms=1500 and no setting to
    change it. Kafka returns a fetch as soon as data arrives, but the embedded Tansu
    broker holds it until the deadline, which put ~0.5 s on every decision. Faust looks
    the class up on the aiokafka module at call time, so a subclass there takes effect.
    """
    base = aiokafka.AIOKafkaConsumer
    if getattr(base, "_greencredit_bounded", False):
        return

    class BoundedFetchConsumer(base):  # type: ignore[misc, valid-type]
        _greencredit_bounded = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs["fetch_max_wait_ms"] = max_wait_ms
            super().__init__(*args, **kwargs)

    aiokafka.AIOKafkaConsumer = BoundedFetchConsumer
