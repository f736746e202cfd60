"""Find raw PII of known inputs in output bytes and logs (a test helper for any tier).

The scan looks for the exact values that went in — ID-card, bank-card and phone numbers,
e-mail addresses — rather than for patterns: outputs are full of hashes and UUIDs whose
digit runs look like card numbers. Findings name the kind and the masked value, so a
failing test does not print the PII it caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from greencredit.streams.masking import mask_card, mask_email, mask_id_card, mask_phone

__all__ = ["Finding", "PiiSecrets", "RawMessage", "raw_messages"]

# Input fields holding PII, by kind (transactions call the bank card `card_number`).
_KINDS = {
    "id_card_number": "id_card",
    "bank_card_number": "bank_card",
    "card_number": "bank_card",
    "phone": "phone",
    "email": "email",
}
_MASKS = {"id_card": mask_id_card, "bank_card": mask_card, "phone": mask_phone, "email": mask_email}
# Shorter values match by accident (in counters, offsets, hashes): they are not searched.
MIN_SECRET_CHARS = 7


@dataclass(frozen=True)
class Finding:
    """Where one raw value was found; `masked` is safe to print."""

    kind: str
    masked: str
    where: str


@dataclass(frozen=True)
class RawMessage:
    """One message's bytes and where it came from."""

    topic: str
    partition: int
    offset: int
    value: bytes


class PiiSecrets:
    """The raw PII values of a set of input events, and the scan for them."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}  # raw value -> kind

    def __len__(self) -> int:
        return len(self._values)

    def add(self, kind: str, value: str) -> None:
        """Remember one raw value (and its form without separators, as scoring sees it)."""
        for form in {value.strip(), re.sub(r"[\s()-]", "", value)}:
            if len(form) >= MIN_SECRET_CHARS:
                self._values[form] = kind

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> PiiSecrets:
        """Collect every PII field (at any depth) of decoded input events."""
        for event in events:
            self._walk(event)
        return self

    def _walk(self, value: object) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in _KINDS and isinstance(item, str):
                    self.add(_KINDS[key], item)
                else:
                    self._walk(item)
        elif isinstance(value, list):
            for item in value:
                self._walk(item)

    def scan(self, blob: bytes | str, where: str) -> list[Finding]:
        """Every known raw value that occurs in `blob` (UTF-8 for text)."""
        data = blob.encode() if isinstance(blob, str) else blob
        return [
            Finding(kind, _MASKS[kind](value), where)
            for value, kind in self._values.items()
            if value.encode() in data
        ]


def raw_messages(
    bootstrap: str, topics: Iterable[str], idle_timeout: float = 1.0
) -> Iterator[RawMessage]:
    """Every message now in `topics` (one group-less consumer for all of them)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "greencredit-pii-scan",  # required by librdkafka, never joined
            "enable.auto.commit": False,
        }
    )
    try:
        wanted = list(topics)
        metadata = consumer.list_topics(timeout=10).topics
        consumer.assign(
            [
                TopicPartition(name, partition, -2)  # from the beginning
                for name in wanted
                for partition in metadata[name].partitions
            ]
        )
        while True:
            message = consumer.poll(idle_timeout)
            if message is None:
                return
            if message.error():
                continue
            yield RawMessage(
                message.topic() or "",
                message.partition() or 0,
                message.offset() or 0,
                message.value() or b"",
            )
    finally:
        consumer.close()
