"""Field-level validation of JSON-form events against their Avro schema, for upstream teams.

The codec's check works on Avro-native values and names fields the way fastavro does
(``LoanApplicant.phone``). People write JSON, so this walks the JSON form itself and
reports every problem with its path in the document (``applicant.phone``,
``reasons[2].code``) and JSON type names. Messages name the field, what the schema
expects and the JSON type that was found, never the value: values may be PII.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

__all__ = ["FieldProblem", "json_form_problems"]

_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


@dataclass(frozen=True)
class FieldProblem:
    """One field that does not fit: its path in the JSON document and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(event)'}: {self.message}"


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (what the user wrote, not Python's name)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def json_form_problems(schema: Mapping[str, Any], event: Any) -> list[FieldProblem]:
    """Every problem of a JSON-form event against the raw (.avsc) schema; [] when valid.

    Besides the schema, the envelope rules every event follows are checked: ``event_id``
    is a UUID string and ``tenant_id`` is not blank.
    """
    walker = _Walker()
    walker.check(schema, event, "")
    if isinstance(event, dict):
        walker.envelope(event)
    return walker.problems


class _Walker:
    """Collects problems while walking schema and value together."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []
        self.named: dict[str, Any] = {}  # named types seen so far (records, enums, fixed)

    def add(self, path: str, message: str) -> None:
        self.problems.append(FieldProblem(path, message))

    def resolve(self, schema: Any, namespace: str) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return self.named.get(schema) or self.named.get(f"{namespace}.{schema}") or schema
        return schema

    def remember(self, schema: Mapping[str, Any], namespace: str) -> str:
        name = str(schema.get("name", ""))
        space = str(schema.get("namespace", namespace))
        full = name if "." in name or not space else f"{space}.{name}"
        self.named[full] = schema
        self.named.setdefault(name.rsplit(".", 1)[-1], schema)
        return full.rpartition(".")[0]

    def check(self, schema: Any, value: Any, path: str, namespace: str = "") -> None:
        schema = self.resolve(schema, namespace)
        if isinstance(schema, list):
            self.union(schema, value, path, namespace)
        elif isinstance(schema, str):
            self.primitive(schema, value, path)
        elif isinstance(schema, dict):
            self.complex(schema, value, path, namespace)
        else:  # pragma: no cover - schemas are parsed by fastavro before we get here
            self.add(path, "the schema is not understood")

    def fits(self, schema: Any, value: Any, path: str, namespace: str) -> bool:
        trial = _Walker()
        trial.named = self.named
        trial.check(schema, value, path, namespace)
        return not trial.problems

    def union(self, branches: list[Any], value: Any, path: str, namespace: str) -> None:
        if value is None and "null" in branches:
            return
        others = [b for b in branches if b != "null"]
        if len(others) == 1:
            # The common `null | T`: report T's own problems, which name nested fields.
            self.check(others[0], value, path, namespace)
            return
        if any(self.fits(b, value, path, namespace) for b in others):
            return
        names = " or ".join(_expected(self.resolve(b, namespace)) for b in branches)
        self.add(path, f"expected {names}, got {json_type(value)}")

    def primitive(self, kind: str, value: Any, path: str) -> None:
        if kind == "null":
            ok = value is None
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind in ("int", "long"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            low, high = _INT_RANGE if kind == "int" else _LONG_RANGE
            if ok and not low <= value <= high:
                self.add(path, f"integer out of range for {kind}")
                return
        elif kind in ("float", "double"):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind == "string":
            ok = isinstance(value, str)
        elif kind == "bytes":
            self.base64(value, path)
            return
        else:
            self.add(path, f"unknown type {kind} in the schema")
            return
        if not ok:
            self.add(path, f"expected {_expected(kind)}, got {json_type(value)}")

    def base64(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.add(path, f"expected bytes (base64 string), got {json_type(value)}")
            return
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.add(path, "expected bytes as base64, got a string that is not base64")

    def complex(self, schema: dict[str, Any], value: Any, path: str, namespace: str) -> None:
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical == "timestamp-millis":
            self.timestamp(value, path)
        elif logical == "date":
            self.date(value, path)
        elif kind == "record":
            self.record(schema, value, path, namespace)
        elif kind == "enum":
            self.remember(schema, namespace)
            if not isinstance(value, str) or value not in schema.get("symbols", []):
                got = "another string" if isinstance(value, str) else json_type(value)
                self.add(path, f"expected {_expected(schema)}, got {got}")
        elif kind in ("array", "map"):
            self.container(schema, value, path, namespace)
        elif kind == "fixed":
            self.remember(schema, namespace)
            self.base64(value, path)
        else:
            self.check(kind, value, path, namespace)

    def container(self, schema: dict[str, Any], value: Any, path: str, namespace: str) -> None:
        if schema["type"] == "array":
            if not isinstance(value, list):
                self.add(path, f"expected array, got {json_type(value)}")
                return
            for index, item in enumerate(value):
                self.check(schema["items"], item, f"{path}[{index}]", namespace)
            return
        if not isinstance(value, dict):
            self.add(path, f"expected object (map), got {json_type(value)}")
            return
        for key, item in value.items():
            self.check(schema["values"], item, _join(path, key), namespace)

    def record(self, schema: dict[str, Any], value: Any, path: str, namespace: str) -> None:
        inner = self.remember(schema, namespace)
        if not isinstance(value, dict):
            self.add(path, f"expected object, got {json_type(value)}")
            return
        fields = {f["name"]: f for f in schema.get("fields", [])}
        for name, field in fields.items():
            if name in value:
                self.check(field["type"], value[name], _join(path, name), inner)
            elif "default" not in field and not _admits_null(self.resolve(field["type"], inner)):
                self.add(_join(path, name), "required field missing")
        for name in value:
            if name not in fields:
                # A typo in an optional field would otherwise vanish silently.
                self.add(_join(path, name), "unknown field (not in the schema)")

    def timestamp(self, value: Any, path: str) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            return  # epoch milliseconds, UTC by definition
        if not isinstance(value, str):
            self.add(path, f"expected an ISO-8601 timestamp string, got {json_type(value)}")
            return
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.add(path, "expected an ISO-8601 timestamp, got a string that is not one")
            return
        if moment.tzinfo is None:
            self.add(path, "timestamp without a UTC offset (add 'Z' or '+08:00')")

    def date(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            self.add(path, f"expected a YYYY-MM-DD date string, got {json_type(value)}")
            return
        try:
            date.fromisoformat(value)
        except ValueError:
            self.add(path, "expected a YYYY-MM-DD date, got a string that is not one")

    def envelope(self, event: dict[str, Any]) -> None:
        event_id = event.get("event_id")
        if isinstance(event_id, str):  # other types are reported by the schema walk
            try:
                uuid.UUID(event_id)
            except ValueError:
                self.add("event_id", "expected a UUID string, got a string that is not one")
        tenant = event.get("tenant_id")
        if isinstance(tenant, str) and not tenant.strip():
            self.add("tenant_id", "must not be blank")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _admits_null(schema: Any) -> bool:
    return schema == "null" or (isinstance(schema, list) and "null" in schema)


def _expected(schema: Any) -> str:
    """How the schema's type reads in an error message."""
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        if logical == "timestamp-millis":
            return "ISO-8601 timestamp"
        if logical == "date":
            return "YYYY-MM-DD date"
        kind = schema.get("type")
        if kind == "enum":
            return "one of " + ", ".join(schema.get("symbols", []))
        if kind in ("record", "map"):
            return "object"
        if kind == "fixed":
            return "bytes"
        return str(kind)
    if schema == "bytes":
        return "bytes (base64 string)"
    if schema in ("float", "double"):
        return "number"
    if schema in ("int", "long"):
        return "integer"
    return str(schema)
