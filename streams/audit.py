"""The tamper-evident audit chain over decision and disbursement records.

Each record carries ``prev_hash`` (the ``record_hash`` of the record written before it
to the same partition of the same topic, 64 zeros for the first) and ``record_hash``:

    record_hash = SHA-256 hex of canonical_bytes(record without record_hash)

``prev_hash`` is part of the canonical content, so the hash covers the link as well as
the content. An institution or lender can re-implement the check from this rule alone:
JSON with keys sorted at every level and no whitespace; timestamps as ISO-8601 UTC with
milliseconds and ``Z``; dates as ``YYYY-MM-DD``; bytes as base64; doubles with an
integral value below 2**53 written as integers; non-finite doubles as the strings ``NaN``,
``Infinity``, ``-Infinity``.

Editing a record breaks its own hash; deleting, inserting or reordering records breaks
the next ``prev_hash`` link; rewriting every later hash as well needs write access to
the whole partition and is visible to anyone who kept an earlier head hash.

One writer per output partition is assumed: two writers sealing against the same head
would fork the chain. Pure: no I/O (head recovery from Kafka is infra/audit_head.py).
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

__all__ = [
    "GENESIS_HASH",
    "BrokenLink",
    "ChainHead",
    "ChainReport",
    "UnknownChainHead",
    "canonical_bytes",
    "record_hash",
    "seal",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
_EXACT_INTS = 2.0**53


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes hashed for `record`: its Avro-native content without ``record_hash``.

    Stable across an Avro round trip, so the hash computed before encoding equals the
    one recomputed after decoding: doubles round-trip exactly and orjson prints the
    shortest string that reads back as the same double; Avro timestamps keep only
    milliseconds, so datetimes are truncated to milliseconds here too (as fastavro
    truncates them on write). Integral doubles print as integers because a producer
    may hand an int to a double field (24 vs 24.0) and the decoded value is a float.
    One pass over the record: this runs for every audited record on the hot path.
    """
    content = {k: _canonical_value(v) for k, v in record.items() if k != "record_hash"}
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def _canonical_value(value: Any) -> Any:
    # Most values are floats and strings (feature maps): test for them first.
    if isinstance(value, float):
        if not math.isfinite(value):
            # orjson writes every non-finite double as null: keep NaN and ±inf apart.
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        # Below 2**53 every integer is an exact double; above it doubles stay doubles.
        return int(value) if value.is_integer() and abs(value) < _EXACT_INTS else value
    if isinstance(value, str | int) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    if isinstance(value, datetime):
        moment = value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 hex of the record's canonical bytes (its own ``record_hash`` is ignored)."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def seal(record: Mapping[str, Any], prev_hash: str) -> dict[str, Any]:
    """A copy of `record` linked to `prev_hash`, with its ``record_hash`` set.

    Seal the complete record as it will be encoded (every schema field, nothing
    extra): a field the codec adds or drops would change the hash after decoding.
    """
    sealed = {k: v for k, v in record.items() if k != "record_hash"}
    sealed["prev_hash"] = prev_hash
    sealed["record_hash"] = record_hash(sealed)
    return sealed


class UnknownChainHead(LookupError):
    """A partition whose head was never set: recover it before writing."""


class ChainHead:
    """The in-memory head hash per (topic, partition) of one writer.

    A head is never assumed to be genesis: after a restart the partition already
    holds a chain, and sealing against 64 zeros would break it. The writer sets each
    head once (``last_record_hash`` from infra/audit_head.py, which returns genesis
    for an empty partition) before its first write to that partition.
    """

    def __init__(self) -> None:
        self._heads: dict[tuple[str, int], str] = {}

    def knows(self, topic: str, partition: int) -> bool:
        """Whether the head of this partition is set (False: recover it first)."""
        return (topic, partition) in self._heads

    def head(self, topic: str, partition: int) -> str:
        """The current head hash; raises UnknownChainHead if it was never set."""
        try:
            return self._heads[(topic, partition)]
        except KeyError:
            raise UnknownChainHead(
                f"no chain head for {topic}[{partition}]: set it from the partition's "
                "last record (last_record_hash) before writing"
            ) from None

    def set_head(self, topic: str, partition: int, head_hash: str) -> None:
        """Set the head, e.g. to the last record_hash read back from Kafka."""
        self._heads[(topic, partition)] = head_hash

    def next(self, record: Mapping[str, Any], topic: str, partition: int) -> dict[str, Any]:
        """Seal `record` onto this partition's chain and advance the head to it."""
        sealed = seal(record, self.head(topic, partition))
        self._heads[(topic, partition)] = sealed["record_hash"]
        return sealed


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain first breaks, and how (offsets and ids only, never content)."""

    offset: int
    event_id: str | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """The verdict on one partition's chain."""

    count: int
    first_broken: BrokenLink | None
    head: str  # record_hash of the last record (the start hash when there is none)

    @property
    def ok(self) -> bool:
        """True when every record's hash and link checked out."""
        return self.first_broken is None


def verify_chain(
    records: Iterable[tuple[int, Mapping[str, Any] | None]],
    start_hash: str = GENESIS_HASH,
) -> ChainReport:
    """Check one partition's records, given as (offset, record) in offset order.

    Each record_hash is recomputed and each prev_hash must equal the record_hash
    stored in the record before it; the first record must link to `start_hash`
    (genesis, or the last hash before the offsets that retention deleted). A record
    of None stands for a message that did not decode. Only the first break is
    reported; the rest of the partition is still counted.
    """
    count = 0
    first_broken: BrokenLink | None = None
    expected_prev, prev_offset = start_hash, None
    for offset, record in records:
        count += 1
        problems = _link_problems(record, expected_prev, prev_offset)
        if problems and first_broken is None:
            event_id = record.get("event_id") if record is not None else None
            first_broken = BrokenLink(
                offset, str(event_id) if event_id is not None else None, "; ".join(problems)
            )
        stored = record.get("record_hash") if record is not None else None
        # Later links are checked against what was stored, so one edited record is
        # reported once, at its own offset, not again at every record after it.
        expected_prev = stored if isinstance(stored, str) else ""
        prev_offset = offset
    return ChainReport(count, first_broken, expected_prev)


def _link_problems(
    record: Mapping[str, Any] | None, expected_prev: str, prev_offset: int | None
) -> list[str]:
    if record is None:
        return ["message does not decode as a record"]
    stored, prev = record.get("record_hash"), record.get("prev_hash")
    if not isinstance(stored, str) or not isinstance(prev, str):
        return ["record has no prev_hash/record_hash (not a chained record)"]
    problems = []
    if record_hash(record) != stored:
        problems.append("record_hash mismatch (content changed)")
    if prev != expected_prev:
        target = "the chain start" if prev_offset is None else f"offset {prev_offset}"
        problems.append(f"prev_hash does not link to {target}")
    return problems
