"""A stand-in for the part of Faust's stream the agent loop uses: noack_take and ack.

The runtime reads `event.message` (topic, partition, offset, key, value) and acks events
itself; this yields given batches of raw values and records the acks, no broker involved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from greencredit.agents.messages import Incoming


@dataclass
class StreamEvent:
    """What the runtime reads of a Faust event: its message."""

    message: Incoming


class FakeStream:
    """Yields `batches` of (offset, value) like noack_take, then ends; logs every ack."""

    def __init__(
        self,
        topic: str,
        batches: Sequence[Sequence[tuple[int, bytes]]],
        log: list[tuple[str, Any]] | None = None,
    ) -> None:
        self.topic = topic
        self.batches = batches
        self.log = log if log is not None else []

    async def noack_take(self, size: int, within: float) -> AsyncIterator[list[StreamEvent]]:
        for batch in self.batches:
            yield [StreamEvent(Incoming(self.topic, 0, o, None, v)) for o, v in batch]

    async def ack(self, event: StreamEvent) -> bool:
        self.log.append(("ack", event.message.offset))
        return True

    @property
    def acked(self) -> list[int]:
        """Offsets acked, in order."""
        return [offset for kind, offset in self.log if kind == "ack"]
