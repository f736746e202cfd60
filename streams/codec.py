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

from .catalog import ManifestSchemaIds, RegistrySchemaIds, SchemaCatalog, SchemaIds
from .errors import (
    BadMagicByte,
    CorruptBody,
    InvalidEvent,
    SchemaMismatch,
    TruncatedBody,
)
from .topics import topic

__all__ = ["AvroCodec", "DecodedEvent", "codec_from_settings"]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")


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
        self.catalog = catalog or SchemaCatalog()
        self.ids: SchemaIds = ids or ManifestSchemaIds(self.catalog)

    # -- encoding ------------------------------------------------------------------
    def encode(self, topic_name: str, record: Mapping[str, Any], *, validate: bool = True) -> bytes:
        """Validate `record` against the topic's schema and return wire-format bytes.

        Raises InvalidEvent naming the field (never its value) when the record
        does not fit. ``validate=False`` is for records the engine built itself (their
        builders are tested with validation on): the Avro writer still refuses wrong
        types, but the full schema walk, about two thirds of the cost, is skipped.
        """
        spec = topic(topic_name)
        schema = self.catalog.reader(spec.schema)
        if validate:
            check_record(schema.parsed, record)
        schema_id = self.ids.id_for(f"{spec.name}-value", schema)
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(MAGIC_BYTE, schema_id))
        try:
            fastavro.schemaless_writer(buffer, schema.parsed, dict(record))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            # The writer's messages can quote field values: keep only the error type.
            raise InvalidEvent(f"record does not fit {spec.schema}: {type(exc).__name__}") from None
        return buffer.getvalue()

    # -- decoding ------------------------------------------------------------------
    def decode(self, data: bytes | None, expect_topic: str | None = None) -> DecodedEvent:
        """Decode wire-format bytes; with `expect_topic`, also check the schema fits it.

        Raises a CodecError subclass for every kind of bad input.
        """
        if data is None:
            raise TruncatedBody("message has no value (tombstone or empty record)")
        if len(data) < _HEADER.size:
            raise TruncatedBody(f"message is {len(data)} bytes, shorter than the 5-byte header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise BadMagicByte(
                f"first byte is {data[0]:#04x}, expected 0x00 (Confluent wire format)"
            )
        writer = self.ids.writer_schema(schema_id)
        reader = self.catalog.reader(writer.name)
        if expect_topic is not None and topic(expect_topic).schema != writer.name:
            raise SchemaMismatch(
                f"topic {expect_topic} carries {topic(expect_topic).schema}, "
                f"message was written with {writer.name} (schema id {schema_id})"
            )
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        try:
            value = fastavro.schemaless_reader(body, writer.parsed, reader.parsed)
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
