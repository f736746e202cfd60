"""The tamper-evident audit chain over decision and disbursement records.

Each record carries ``prev_hash`` (the ``record_hash`` of the record written before it
to the same partition of the same topic, 64 zeros for the first) and ``record_hash``.
The hash is taken over the Avro bytes stored in Kafka, so an institution checks exactly
what was written, with any Avro library and no second serialisation to agree on.

The rule (``avro-bytes``)
-------------------------
A message value is the Confluent wire format: magic byte 0, a 4-byte schema id, then
``body``, the Avro binary encoding of the record under its writer schema ``S``.

1. The last two fields of ``S`` are ``prev_hash`` and ``record_hash``, both of type
   ``"string"``, and both hold 64 lowercase hexadecimal characters. Avro writes a string
   as its zig-zag varint length (64 -> the two bytes ``0x80 0x01``) and its UTF-8 bytes,
   so ``body`` ends with these 132 bytes::

       80 01 <prev_hash, 64 ASCII bytes> 80 01 <record_hash, 64 ASCII bytes>

2. ``F`` = the 32-byte SHA-256 fingerprint of the Parsing Canonical Form of ``S`` (Avro
   specification, "Schema Fingerprints"; Java ``SchemaNormalization.parsingFingerprint
   ("SHA-256", S)``, fastavro ``fingerprint(to_parsing_canonical_form(S), "SHA-256")``).

3. ``record_hash = hex(SHA-256(F || body[: len(body) - 66]))``: everything in the body
   up to and including the ``prev_hash`` field, without the ``record_hash`` field.

A verifier decodes the message with its writer schema (every byte consumed), checks the
132-byte tail as in 1. and the hash as in 3., and checks that ``prev_hash`` equals the
``record_hash`` stored in the message before it.

Why these choices: the hash covers the link (``prev_hash``) as well as the content. The
5-byte header is left out, so the same record keeps its hash when it is re-sent under
another schema id (a second registry, or the reviews topic's subject). The schema itself
is bound through ``F`` instead, because bytes mean nothing without the schema that reads
them: relabelling a message with another schema's id changes its hash. The Parsing
Canonical Form ignores docs, defaults and whitespace, which do not change how bytes read.
The writer seals in one pass: it encodes with a placeholder ``record_hash`` of 64 zeros,
hashes the body before that field and writes the digest over the placeholder.

Records sealed before this rule (``canonical-json``, legacy)
-------------------------------------------------------------
Earlier writers hashed a canonical JSON form: ``record_hash = hex(SHA-256(J))`` where J
is the record decoded in its writer schema's shape, without ``record_hash``, as JSON with
keys sorted at every level and no whitespace; timestamps as ISO-8601 UTC with
milliseconds and ``Z``; dates as ``YYYY-MM-DD``; bytes as base64; doubles with an
integral value below 2**53 written as integers; non-finite doubles as the strings
``NaN``, ``Infinity``, ``-Infinity``. Such records may be in a production topic (Kafka
does not rewrite them), so the verifier still accepts them and reports how many it
found. Accepting both does not weaken the chain: both rules are public and unkeyed, so
anyone able to forge under one could forge under the other, and either way a forged
record breaks the next ``prev_hash`` link unless every later record is rewritten too.
New records are only ever sealed with ``avro-bytes``.

What the chain shows: editing a record breaks its own hash; deleting, inserting or
reordering records breaks the next ``prev_hash`` link; rewriting every later hash as well
needs write access to the whole partition and is visible to anyone who kept an earlier
head hash. One writer per output partition is assumed: two writers sealing against the
same head would fork the chain. Pure: no I/O (reading chains from Kafka is
infra/audit_head.py, encoding is streams/codec.py).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import orjson
from fastavro.schema import to_parsing_canonical_form

__all__ = [
    "AVRO_BYTES",
    "CANONICAL_JSON",
    "CHAIN_TAIL_SIZE",
    "GENESIS_HASH",
    "RECORD_HASH_FIELD_SIZE",
    "BrokenLink",
    "ChainEntry",
    "ChainHead",
    "ChainLayoutError",
    "ChainReport",
    "NotChained",
    "SealRule",
    "UnknownChainHead",
    "canonical_bytes",
    "chain_entry",
    "chain_tail",
    "check_chain_layout",
    "legacy_record_hash",
    "schema_fingerprint",
    "seal_body",
    "sealed_hash",
    "verify_chain",
]

GENESIS_HASH = "0" * 64
HASH_LENGTH = 64
# Avro's zig-zag varint of a string length of 64: (64 << 1) = 128 -> 0x80 0x01.
_LENGTH_64 = b"\x80\x01"
RECORD_HASH_FIELD_SIZE = len(_LENGTH_64) + HASH_LENGTH  # 66
CHAIN_TAIL_SIZE = 2 * RECORD_HASH_FIELD_SIZE  # 132: the prev_hash and record_hash fields
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_HEX64_TEXT = re.compile(r"[0-9a-f]{64}")
_EXACT_INTS = 2.0**53

SealRule = Literal["avro-bytes", "canonical-json"]
AVRO_BYTES: SealRule = "avro-bytes"
CANONICAL_JSON: SealRule = "canonical-json"


class ChainLayoutError(ValueError):
    """A schema of an audited topic does not end with the two chain string fields."""


class NotChained(ValueError):
    """A message whose bytes do not end with the chain fields as the rule requires."""


# -- the schema side ---------------------------------------------------------------------
def check_chain_layout(raw_schema: Mapping[str, Any]) -> None:
    """Raise ChainLayoutError unless the schema ends with prev_hash, record_hash strings.

    The byte rule finds the chain fields at the end of the body, so a schema that moved
    them, added a field after them or changed their type would make every hash wrong.
    """
    name = f"{raw_schema.get('namespace', '')}.{raw_schema.get('name', '?')}".lstrip(".")
    fields = raw_schema.get("fields") or []
    last_two = [(f.get("name"), f.get("type")) for f in fields[-2:]]
    wanted = [("prev_hash", "string"), ("record_hash", "string")]
    if last_two != wanted:
        found = ", ".join(f"{n}: {t!r}" for n, t in last_two) or "no fields"
        raise ChainLayoutError(
            f"{name}: an audited schema must end with the fields prev_hash and record_hash, "
            f'both of type "string" (the audit hash is taken over the bytes before '
            f"record_hash); its last fields are {found}"
        )


def schema_fingerprint(raw_schema: Mapping[str, Any]) -> bytes:
    """SHA-256 of the schema's Parsing Canonical Form (the ``F`` of the rule)."""
    return hashlib.sha256(to_parsing_canonical_form(dict(raw_schema)).encode()).digest()


# -- the byte rule ----------------------------------------------------------------------
def sealed_hash(fingerprint: bytes, body: bytes | bytearray | memoryview) -> str:
    """The record_hash of an Avro body that ends with the record_hash field (rule step 3)."""
    digest = hashlib.sha256(fingerprint)
    digest.update(memoryview(body)[: len(body) - RECORD_HASH_FIELD_SIZE])
    return digest.hexdigest()


def seal_body(body: memoryview, fingerprint: bytes, prev_hash: str) -> str:
    """Write the record_hash over the placeholder at the end of `body` and return it.

    `body` must end with the prev_hash field holding `prev_hash` and the record_hash
    field holding the placeholder GENESIS_HASH; anything else means the encoding does
    not follow the layout the rule assumes, and nothing is sealed.
    """
    if _HEX64_TEXT.fullmatch(prev_hash) is None:
        raise NotChained("prev_hash must be 64 lowercase hex characters")
    expected = _LENGTH_64 + prev_hash.encode("ascii") + _LENGTH_64 + GENESIS_HASH.encode()
    if body[-CHAIN_TAIL_SIZE:] != expected:
        raise NotChained(
            "the encoded record does not end with the prev_hash field and the "
            "record_hash placeholder"
        )
    record_hash = sealed_hash(fingerprint, body)
    body[-HASH_LENGTH:] = record_hash.encode("ascii")
    return record_hash


def chain_tail(body: bytes | memoryview) -> tuple[str, str]:
    """(prev_hash, record_hash) as stored at the end of an Avro body (rule step 1)."""
    tail = bytes(body[-CHAIN_TAIL_SIZE:])
    prev, stored = tail[2 : 2 + HASH_LENGTH], tail[-HASH_LENGTH:]
    if (
        len(tail) != CHAIN_TAIL_SIZE
        or tail[:2] != _LENGTH_64
        or tail[RECORD_HASH_FIELD_SIZE : RECORD_HASH_FIELD_SIZE + 2] != _LENGTH_64
        or _HEX64.fullmatch(prev) is None
        or _HEX64.fullmatch(stored) is None
    ):
        raise NotChained(
            "the body does not end with two 64-character lowercase hex strings "
            "(prev_hash, record_hash)"
        )
    return prev.decode("ascii"), stored.decode("ascii")


@dataclass(frozen=True)
class ChainEntry:
    """What verification needs from one stored message (ids and hashes, never content)."""

    event_id: str | None
    prev_hash: str
    record_hash: str  # as stored
    rule: SealRule | None  # the rule the stored hash satisfies; None: neither


def chain_entry(
    body: bytes | memoryview, fingerprint: bytes, record: Mapping[str, Any]
) -> ChainEntry:
    """Check one message: `body` its Avro body, `record` the same body decoded as written.

    `fingerprint` is the writer schema's (schema_fingerprint). The decoded chain fields
    must be the ones at the end of the bytes: that ties the tail read here to the fields
    a decoder shows. The legacy rule is only tried when the byte rule does not match.
    """
    prev, stored = chain_tail(body)
    if record.get("prev_hash") != prev or record.get("record_hash") != stored:
        raise NotChained("the decoded chain fields are not the last bytes of the message")
    event_id = record.get("event_id")
    rule: SealRule | None = None
    if sealed_hash(fingerprint, body) == stored:
        rule = AVRO_BYTES
    elif legacy_record_hash(record) == stored:
        rule = CANONICAL_JSON
    return ChainEntry(str(event_id) if event_id is not None else None, prev, stored, rule)


# -- the legacy rule --------------------------------------------------------------------
def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes the legacy rule hashes: the record's content without ``record_hash``.

    Stable across an Avro round trip: doubles round-trip exactly and orjson prints the
    shortest string that reads back as the same double; Avro timestamps keep only
    milliseconds, so datetimes are truncated to milliseconds here too. Integral doubles
    print as integers because a producer may hand an int to a double field (24 vs 24.0)
    and the decoded value is a float.
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


def legacy_record_hash(record: Mapping[str, Any]) -> str:
    """The legacy (canonical-json) hash of a decoded record; its record_hash is ignored."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


# -- the writer's heads -----------------------------------------------------------------
class UnknownChainHead(LookupError):
    """A partition whose head was never set: recover it before writing."""


class ChainHead:
    """The in-memory head hash per (topic, partition) of one writer.

    A head is never assumed to be genesis: after a restart the partition already
    holds a chain, and sealing against 64 zeros would break it. The writer sets each
    head once (``last_record_hash`` from infra/audit_head.py, which returns genesis
    for an empty partition) before its first write to that partition, and moves it to
    each record_hash it seals (``AvroCodec.encode_sealed`` returns it).
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
        """Set the head: the last record_hash read back from Kafka, or the one just sealed."""
        self._heads[(topic, partition)] = head_hash


# -- verification -----------------------------------------------------------------------
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
    legacy: int = 0  # records whose hash follows the legacy canonical-json rule

    @property
    def ok(self) -> bool:
        """True when every record's hash and link checked out."""
        return self.first_broken is None


def verify_chain(
    entries: Iterable[tuple[int, ChainEntry | str]],
    start_hash: str = GENESIS_HASH,
) -> ChainReport:
    """Check one partition's messages, given as (offset, entry) in offset order.

    An entry is what chain_entry found, or a string saying why the message could not
    be read as a chained record. Each stored record_hash must satisfy a rule, and each
    prev_hash must equal the record_hash stored in the message before it; the first
    must link to `start_hash` (genesis, or the last hash before the offsets retention
    deleted). Only the first break is reported; the rest of the partition is counted.
    """
    count = legacy = 0
    first_broken: BrokenLink | None = None
    expected_prev, prev_offset = start_hash, None
    for offset, entry in entries:
        count += 1
        if isinstance(entry, ChainEntry) and entry.rule == CANONICAL_JSON:
            legacy += 1
        problems = _link_problems(entry, expected_prev, prev_offset)
        if problems and first_broken is None:
            event_id = entry.event_id if isinstance(entry, ChainEntry) else None
            first_broken = BrokenLink(offset, event_id, "; ".join(problems))
        # Later links are checked against what was stored, so one edited record is
        # reported once, at its own offset, not again at every record after it.
        expected_prev = entry.record_hash if isinstance(entry, ChainEntry) else ""
        prev_offset = offset
    return ChainReport(count, first_broken, expected_prev, legacy)


def _link_problems(
    entry: ChainEntry | str, expected_prev: str, prev_offset: int | None
) -> list[str]:
    if not isinstance(entry, ChainEntry):
        return [entry]
    problems = []
    if entry.rule is None:
        problems.append("record_hash mismatch (content changed)")
    if entry.prev_hash != expected_prev:
        target = "the chain start" if prev_offset is None else f"offset {prev_offset}"
        problems.append(f"prev_hash does not link to {target}")
    return problems
