"""What goes in and out of a processor: raw messages, records to produce, dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from greencredit.streams.codec import AvroCodec
from greencredit.streams.deadletter import dead_letter_record
from greencredit.streams.errors import CodecError
from greencredit.streams.topics import DEAD_LETTER

__all__ = ["Decoder", "Incoming", "Outgoing", "dead_letter"]


@dataclass(frozen=True)
class Incoming:
    """One consumed message, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Outgoing:
    """One record to produce; `partition` None lets the key choose."""

    topic: str
    key: str
    record: dict[str, Any]
    partition: int | None = None
    same_as: Outgoing | None = None  # send the record exactly as that output was sealed


def dead_letter(message: Incoming, error: BaseException) -> Outgoing:
    """Dead-letter output for a message we cannot process."""
    record = dead_letter_record(
        message.topic, error, message.value, message.key, message.partition, message.offset
    )
    return Outgoing(DEAD_LETTER.name, message.topic, record)


@dataclass(frozen=True)
class Decoder:
    """Decodes a batch with the worker's codec; bad input becomes dead letters, never errors."""

    codec: AvroCodec

    def decode_all(
        self, messages: Sequence[Incoming], dead_letters: list[Outgoing]
    ) -> list[tuple[Incoming, dict[str, Any]]]:
        """Decoded (message, event) pairs; undecodable messages go to `dead_letters`."""
        decoded = []
        for message in messages:
            try:
                decoded.append((message, self.codec.decode(message.value, message.topic).value))
            except CodecError as exc:
                dead_letters.append(dead_letter(message, exc))
        return decoded
