"""Typed errors of the event codec. Each maps to a dead-letter ``error_type``.

Messages never carry field values (they may be PII): only field paths, types
and sizes.
"""

from __future__ import annotations

__all__ = [
    "BadMagicByte",
    "CodecError",
    "CorruptBody",
    "InvalidEvent",
    "SchemaMismatch",
    "TruncatedBody",
    "UnknownSchemaId",
]


class CodecError(ValueError):
    """Base class: the bytes or the record cannot be turned into a valid event."""

    @property
    def error_type(self) -> str:
        """Stable name for dead-letter records and metrics."""
        return type(self).__name__


class BadMagicByte(CodecError):
    """The first byte is not the Confluent wire-format magic byte 0."""


class TruncatedBody(CodecError):
    """The message ends before the 5-byte header or the Avro body is complete."""


class CorruptBody(CodecError):
    """The Avro body does not decode with the writer schema (or has trailing bytes)."""


class UnknownSchemaId(CodecError):
    """The schema id in the header is unknown to the manifest or the registry."""


class SchemaMismatch(CodecError):
    """The record's schema is not the one the topic carries."""


class InvalidEvent(CodecError):
    """The record does not satisfy the schema or the envelope rules."""
