"""Dead-letter records: an input we could not process, its reason and its original bytes.

The record id is derived from (topic, partition, offset), so redelivering the
same poison message yields the same dead-letter event id and consumers can
de-duplicate. Reasons pass through :func:`scrub_text`: library messages can
echo field values. Original keys and values longer than ``MAX_ORIGINAL_BYTES``
are cut to that prefix (the reason says so; the whole message stays at its source
offset): a dead letter must fit where its producer's default limit (1 MB) allows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from .masking import scrub_text

__all__ = ["DEAD_LETTER_NAMESPACE", "MAX_ORIGINAL_BYTES", "dead_letter_record"]

DEAD_LETTER_NAMESPACE = uuid.UUID("6f1b7c1e-2d7e-4a43-9c55-0d1e8f3a9b21")
_MAX_REASON = 2000
MAX_ORIGINAL_BYTES = 256 * 1024


def dead_letter_record(
    source_topic: str,
    error: BaseException,
    value: bytes | None,
    key: bytes | None = None,
    partition: int | None = None,
    offset: int | None = None,
    tenant_id: str = "unknown",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Build the DeadLetter event (Avro-native dict) for a failed input."""
    identity = f"{source_topic}:{partition}:{offset}"
    if partition is None or offset is None:
        # Without a position, the bytes themselves identify the message.
        identity += ":" + (value or b"").hex()
    error_type = getattr(error, "error_type", None) or type(error).__name__
    reason = scrub_text(str(error) or error_type)[:_MAX_REASON]
    for what, original in (("key", key), ("value", value)):
        if original is not None and len(original) > MAX_ORIGINAL_BYTES:
            reason += (
                f" [original {what} cut to its first {MAX_ORIGINAL_BYTES} of "
                f"{len(original)} bytes; read it whole at the source offset]"
            )
    if key is not None:
        key = key[:MAX_ORIGINAL_BYTES]
    if value is not None:
        value = value[:MAX_ORIGINAL_BYTES]
    return {
        "event_id": str(uuid.uuid5(DEAD_LETTER_NAMESPACE, identity)),
        "tenant_id": tenant_id,
        "occurred_at": now or datetime.now(UTC),
        "schema_version": 1,
        "source_topic": source_topic,
        "source_partition": partition,
        "source_offset": offset,
        "original_key": key,
        "original_value": value,
        "error_type": error_type,
        "reason": reason,
    }
