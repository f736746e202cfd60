"""Avro codec in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, body.

Standard Kafka tooling (kafka-avro-console-consumer, Kafka UI, ksqlDB) reads our
topics because of that header. Decoding resolves the writer's schema (by id)
against the current reader schema, so events written by an older version of a
schema still decode.
"""

from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fastavro
from fastavro._validate_common import ValidationError
from fastavro.validation import validate

from greencredit.settings import Settings

from .audit import GENESIS_HASH, NotChained, check_chain_layout, schema_fingerprint, seal_body
from .avro_writer import Unsupported, Writer, compile_writer
from .catalog import (
    ManifestSchemaIds,
    RegistrySchemaIds,
    SchemaCatalog,
    SchemaIds,
    SchemaVersion,
)
from .errors import (
    BadMagicByte,
    CorruptBody,
    InvalidEvent,
    SchemaMismatch,
    TruncatedBody,
)
from .topics import AUDITED_TOPICS, topic

__all__ = ["HEADER_SIZE", "AvroCodec", "DecodedEvent", "codec_from_settings"]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size  # the Avro body starts here
_NO_VALUE = "message has no value (tombstone or empty record)"


@dataclass(frozen=True)
class DecodedEvent:
    """A decoded message: the record (reader schema shape) and where it came from."""

    schema_name: str
    schema_id: int
    writer_version: int
    value: dict[str, Any]


class AvroCodec:
    """Encode records for a topic and decode any message written with a known schema."""

    def __init__(self, catalog: SchemaCatalog | None = None, ids: SchemaIds | None = None) -> None:
        """Raises ChainLayoutError if an audited topic's schema breaks the chain layout."""
        self.catalog = catalog or SchemaCatalog()
        self.ids: SchemaIds = ids or ManifestSchemaIds(self.catalog)
        self._fingerprints: dict[int, bytes] = {}
        self._writers: dict[tuple[str, int], Writer | None] = {}
        # The audit rule reads the chain fields from the end of the bytes: refuse to start
        # with a schema, current or historical, that would make every hash meaningless.
        audited = {spec.schema for spec in AUDITED_TOPICS}
        for version in self.catalog.by_id.values():
            if version.name in audited:
                check_chain_layout(version.raw)

    # -- encoding ------------------------------------------------------------------
    def encode(self, topic_name: str, record: Mapping[str, Any], *, validate: bool = True) -> bytes:
        """Validate `record` against the topic's schema and return wire-format bytes.

        Raises InvalidEvent naming the field (never its value) when the record
        does not fit. ``validate=False`` is for records the engine built itself (their
        builders are tested with validation on): the Avro writer still refuses wrong
        types, but the full schema walk, about two thirds of the cost, is skipped.
        """
        return bytes(self._write(topic_name, dict(record), validate)[0])

    def encode_sealed(
        self,
        topic_name: str,
        record: Mapping[str, Any],
        prev_hash: str,
        *,
        validate: bool = True,
    ) -> tuple[bytes, str]:
        """Encode `record` linked to `prev_hash` and sealed: (wire bytes, its record_hash).

        The audit rule of streams/audit.py, in one pass: the record is encoded with
        `prev_hash` and a placeholder record_hash, the body before the record_hash field
        is hashed with the schema's fingerprint, and the digest replaces the placeholder.
        Any record_hash or prev_hash in `record` is ignored.
        """
        buffer, schema_id = self._write(
            topic_name,
            {**record, "prev_hash": prev_hash, "record_hash": GENESIS_HASH},
            validate,
        )
        fingerprint = self.fingerprint(schema_id)
        with memoryview(buffer) as view:
            try:
                record_hash = seal_body(view[_HEADER.size :], fingerprint, prev_hash)
            except NotChained as exc:
                raise InvalidEvent(f"cannot seal a {topic_name} record: {exc}") from None
        return bytes(buffer), record_hash

    def _write(
        self, topic_name: str, record: dict[str, Any], validate: bool
    ) -> tuple[bytearray, int]:
        spec = topic(topic_name)
        schema = self.catalog.reader(spec.schema)
        if validate:
            check_record(schema.parsed, record)
        schema_id = self.ids.id_for(f"{spec.name}-value", schema)
        header = _HEADER.pack(MAGIC_BYTE, schema_id)
        writer = self._writer(schema)
        if writer is not None:
            buffer = bytearray(header)
            try:
                writer(record, buffer)
                return buffer, schema_id
            except Unsupported:
                pass  # not exactly the types the schema names: fastavro decides
        stream = io.BytesIO()
        stream.write(header)
        try:
            fastavro.schemaless_writer(stream, schema.parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # The writer's messages can quote field values: keep only the error type.
            raise InvalidEvent(f"record does not fit {spec.schema}: {type(exc).__name__}") from None
        return bytearray(stream.getbuffer()), schema_id

    def _writer(self, schema: SchemaVersion) -> Writer | None:
        """The compiled writer of this schema version (None: fastavro writes it)."""
        key = (schema.name, schema.version)
        if key not in self._writers:
            self._writers[key] = compile_writer(schema.parsed)
        return self._writers[key]

    def reheader(self, topic_name: str, data: bytes) -> bytes:
        """The same Avro body under the schema id `topic_name` is written with.

        For re-sending a sealed record unchanged to a second topic: the audit hash
        excludes the header, so a different id (a registry's per-subject id) keeps it
        valid. Raises SchemaMismatch if the topic carries another schema.
        """
        spec = topic(topic_name)
        schema_id, writer = self.writer_of(data)
        target = self.ids.id_for(f"{spec.name}-value", self.catalog.reader(spec.schema))
        if target == schema_id:
            return data
        if self.fingerprint(target) != self.fingerprint(schema_id):
            raise SchemaMismatch(
                f"topic {spec.name} is written with {spec.schema} (schema id {target}), "
                f"the message with {writer.name} v{writer.version} (schema id {schema_id})"
            )
        return _HEADER.pack(MAGIC_BYTE, target) + data[_HEADER.size :]

    def fingerprint(self, schema_id: int) -> bytes:
        """SHA-256 of the Parsing Canonical Form of the schema with this id (cached)."""
        cached = self._fingerprints.get(schema_id)
        if cached is None:
            cached = schema_fingerprint(self.ids.writer_schema(schema_id).raw)
            self._fingerprints[schema_id] = cached
        return cached

    def writer_of(self, data: bytes | None) -> tuple[int, SchemaVersion]:
        """(schema id, writer schema) from a message's header; CodecError if it has none."""
        if data is None:
            raise TruncatedBody(_NO_VALUE)
        if len(data) < _HEADER.size:
            raise TruncatedBody(f"message is {len(data)} bytes, shorter than the 5-byte header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise BadMagicByte(
                f"first byte is {data[0]:#04x}, expected 0x00 (Confluent wire format)"
            )
        return schema_id, self.ids.writer_schema(schema_id)

    # -- decoding ------------------------------------------------------------------
    def decode(self, data: bytes | None, expect_topic: str | None = None) -> DecodedEvent:
        """Decode wire-format bytes; with `expect_topic`, also check the schema fits it.

        Raises a CodecError subclass for every kind of bad input.
        """
        if data is None:
            raise TruncatedBody(_NO_VALUE)
        schema_id, writer = self.writer_of(data)
        reader = self.catalog.reader(writer.name)
        if expect_topic is not None and topic(expect_topic).schema != writer.name:
            raise SchemaMismatch(
                f"topic {expect_topic} carries {topic(expect_topic).schema}, "
                f"message was written with {writer.name} (schema id {schema_id})"
            )
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        try:
            # The same version needs no schema resolution (it gives the same record).
            resolve = None if reader is writer else reader.parsed
            value = fastavro.schemaless_reader(body, writer.parsed, resolve)
        except (EOFError, StopIteration, struct.error) as exc:
            raise TruncatedBody(
                f"Avro body ends early for {writer.name} v{writer.version} "
                f"({len(data) - _HEADER.size} body bytes): {type(exc).__name__}"
            ) from None
        except Exception as exc:  # fastavro raises assorted errors on garbage
            raise CorruptBody(
                f"Avro body does not decode as {writer.name} v{writer.version}: "
                f"{type(exc).__name__}"
            ) from None
        if body.tell() != len(data):
            raise CorruptBody(
                f"{len(data) - body.tell()} trailing bytes after a {writer.name} record"
            )
        if not isinstance(value, dict):
            raise CorruptBody(f"decoded value is not a record for {writer.name}")
        return DecodedEvent(writer.name, schema_id, writer.version, value)


def check_record(parsed_schema: Any, record: Mapping[str, Any]) -> None:
    """Schema validation plus the envelope rules, with messages free of field values."""
    try:
        validate(dict(record), parsed_schema, raise_errors=True)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None
    try:
        uuid.UUID(str(record["event_id"]))
    except ValueError:
        raise InvalidEvent("field 'event_id': not a UUID string") from None
    if not str(record["tenant_id"]).strip():
        raise InvalidEvent("field 'tenant_id': empty")
    _reject_naive_datetimes(record, "")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors:
        # fastavro names the field as "<namespace>.<Record>.<field>"; keep "<Record>.<field>".
        field = ".".join(str(error.field).split(".")[-2:])
        expected = error.schema if isinstance(error.schema, str) else _type_name(error.schema)
        got = "missing" if error.datum is None else type(error.datum).__name__
        problems.append(f"field {field!r}: expected {expected}, got {got}")
    return "; ".join(problems) or "record does not match the schema"


def _type_name(schema: Any) -> str:
    if isinstance(schema, list):
        return " or ".join(_type_name(branch) for branch in schema)
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        if logical:
            return str(logical)
        if schema.get("type") == "enum":
            return "one of " + ", ".join(schema.get("symbols", []))
        return str(schema.get("type"))
    return str(schema)


def _reject_naive_datetimes(value: Any, path: str) -> None:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidEvent(
                f"field {path.lstrip('.')!r}: naive datetime; use timezone-aware UTC"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _reject_naive_datetimes(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_naive_datetimes(item, f"{path}[{index}]")


def codec_from_settings(settings: Settings) -> AvroCodec:
    """Manifest ids by default; registry ids when SCHEMA_REGISTRY_URL is set."""
    catalog = SchemaCatalog()
    if settings.schema_registry_url:
        return AvroCodec(catalog, RegistrySchemaIds(settings.schema_registry_url, catalog))
    return AvroCodec(catalog)
