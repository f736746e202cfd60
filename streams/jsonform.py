"""JSON form of events: what humans and the CLI write, converted to Avro-native values.

JSON has no timestamps, dates or bytes, so the JSON form uses ISO-8601 strings
(timestamps must carry an offset; they are converted to UTC), ``YYYY-MM-DD``
dates and base64 bytes. Conversion is driven by the schema, so a field is
converted only where the schema says it is a timestamp, a date or bytes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from typing import Any

from .errors import InvalidEvent

__all__ = ["from_json_form", "to_json_form"]


def from_json_form(schema: Any, value: Any, path: str = "") -> Any:
    """Convert a JSON-form value to the Avro-native value the codec writes."""
    if isinstance(schema, list):  # union: our unions are null | T
        if value is None:
            return None
        branch = next((b for b in schema if b != "null"), "null")
        return from_json_form(branch, value, path)
    if isinstance(schema, dict):
        return _from_json_complex(schema, value, path)
    if schema == "bytes":
        return _parse_bytes(value, path)
    return value


def _from_json_complex(schema: dict[str, Any], value: Any, path: str) -> Any:
    """A logical type, record, array, map or bytes value in JSON form -> Avro-native."""
    logical = schema.get("logicalType")
    kind = schema.get("type")
    if logical == "timestamp-millis" and isinstance(value, str):
        return _parse_timestamp(value, path)
    if logical == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(f"field {path!r}: not a YYYY-MM-DD date") from None
    if kind == "record" and isinstance(value, dict):
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        return {
            k: from_json_form(fields[k], v, f"{path}.{k}".lstrip(".")) if k in fields else v
            for k, v in value.items()
        }
    if kind == "array" and isinstance(value, list):
        return [from_json_form(schema["items"], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "map" and isinstance(value, dict):
        return {k: from_json_form(schema["values"], v, f"{path}.{k}") for k, v in value.items()}
    if kind == "bytes":
        return _parse_bytes(value, path)
    return value


def to_json_form(schema: Any, value: Any) -> Any:
    """Convert an Avro-native value (as decoded) to its JSON form."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: to_json_form(None, v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json_form(None, v) for v in value]
    return value


def _parse_timestamp(text: str, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEvent(f"field {path!r}: not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidEvent(f"field {path!r}: timestamp without a UTC offset (add 'Z')")
    return moment.astimezone(UTC)


def _parse_bytes(value: Any, path: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEvent(f"field {path!r}: bytes must be base64") from None
