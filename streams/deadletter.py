"""Dead-letter records: an input we could not process, its reason and its original bytes.

The record id is derived from (topic, partition, offset), so redelivering the
same poison message yields the same dead-letter event id and consumers can
de-duplicate. Reasons pass through :func:`scrub_text`: library messages can
echo field values.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from .masking import scrub_text

__all__ = ["DEAD_LETTER_NAMESPACE", "dead_letter_record"]

DEAD_LETTER_NAMESPACE = uuid.UUID("6f1b7c1e-2d7e-4a43-9c55-0d1e8f3a9b21")
_MAX_REASON = 2000


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
