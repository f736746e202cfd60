"""Avro binary writers compiled from a schema, for the records the engine writes most.

fastavro's writer spends about a microsecond per map entry or array item (its per-datum
type dispatch), and a decision carries ~70 map entries and a disbursement up to 36
instalments: encoding was the largest single cost of an application after the Faust hop.
A writer compiled here resolves the schema once into a tree of small functions, and
writes the engine's usual map of doubles (the same keys, batch after batch) with one
precompiled struct.

It is strict on purpose: any value that is not exactly the type the schema names (an int
for a double, a naive datetime, an unknown union branch) raises Unsupported, and the codec
then encodes that record with fastavro, which decides whether it fits. So where a compiled
writer succeeds its bytes are fastavro's (tests hold them to that, byte for byte), and
everything else behaves as before. Schemas with a type it does not know compile to None.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

__all__ = ["Unsupported", "Writer", "compile_writer"]

# Writes one datum of its schema to the end of the buffer.
Writer = Callable[[Any, bytearray], None]

_DOUBLE = struct.Struct("<d")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
_LAYOUT_CACHE_MAX = 64  # distinct key sets remembered per map-of-doubles field


class Unsupported(Exception):
    """The datum is left to fastavro (it may still fit the schema, or not)."""


def _varint(n: int) -> bytes:
    """Zig-zag variable-length encoding of a long (Avro's int and long)."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_OFFSET = 1 << 13
_SMALL = [_varint(i - _SMALL_OFFSET) for i in range(2 * _SMALL_OFFSET)]
# Larger numbers repeat too (an annuity's instalment amount, the due dates' day numbers):
# remembered up to a bound, so a worker's memory for them stays small.
_SEEN: dict[int, bytes] = {}
_SEEN_MAX = 1 << 16


def _long_bytes(n: int) -> bytes:
    if -_SMALL_OFFSET <= n < _SMALL_OFFSET:
        return _SMALL[n + _SMALL_OFFSET]
    encoded = _SEEN.get(n)
    if encoded is None:
        encoded = _varint(n)
        if len(_SEEN) < _SEEN_MAX:
            _SEEN[n] = encoded
    return encoded


def _integer(bounds: tuple[int, int]) -> Writer:
    low, high = bounds

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not int or not low <= value <= high:
            raise Unsupported
        out += _long_bytes(value)

    return write


def _double(value: Any, out: bytearray) -> None:
    if type(value) is not float:
        raise Unsupported
    out += _DOUBLE.pack(value)


def _string(value: Any, out: bytearray) -> None:
    if type(value) is not str:
        raise Unsupported
    data = value.encode()
    out += _long_bytes(len(data))
    out += data


def _bytes(value: Any, out: bytearray) -> None:
    if type(value) is not bytes:
        raise Unsupported
    out += _long_bytes(len(value))
    out += value


def _boolean(value: Any, out: bytearray) -> None:
    if type(value) is not bool:
        raise Unsupported
    out.append(1 if value else 0)


def _null(value: Any, out: bytearray) -> None:
    if value is not None:
        raise Unsupported


def _timestamp_millis(value: Any, out: bytearray) -> None:
    if type(value) is int:
        if not _LONG_RANGE[0] <= value <= _LONG_RANGE[1]:
            raise Unsupported
        out += _long_bytes(value)
        return
    if type(value) is not datetime or value.tzinfo is None:
        raise Unsupported
    delta = value - _EPOCH
    # As fastavro computes it (a truncating division of the microseconds).
    millis = (delta.days * 86400 + delta.seconds) * 1000 + int(delta.microseconds / 1000)
    out += _long_bytes(millis)


def _date(value: Any, out: bytearray) -> None:
    if type(value) is int:
        if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise Unsupported
        out += _long_bytes(value)
        return
    if type(value) is not date:
        raise Unsupported
    out += _long_bytes(value.toordinal() - _EPOCH_ORDINAL)


_PRIMITIVES: dict[str, Writer] = {
    "null": _null,
    "boolean": _boolean,
    "int": _integer(_INT_RANGE),
    "long": _integer(_LONG_RANGE),
    "double": _double,
    "string": _string,
    "bytes": _bytes,
}
_LOGICAL: dict[tuple[str, str], Writer] = {
    ("long", "timestamp-millis"): _timestamp_millis,
    ("int", "date"): _date,
}


def _enum(symbols: list[str]) -> Writer:
    index = {symbol: _long_bytes(i) for i, symbol in enumerate(symbols)}

    def write(value: Any, out: bytearray) -> None:
        encoded = index.get(value) if type(value) is str else None
        if encoded is None:
            raise Unsupported
        out += encoded

    return write


def _array(items: Writer) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if type(value) is not list:
            raise Unsupported
        if value:
            out += _long_bytes(len(value))
            for item in value:
                items(item, out)
        out.append(0)

    return write


def _map(values: Writer) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict:
            raise Unsupported
        if value:
            out += _long_bytes(len(value))
            for key, item in value.items():
                _string(key, out)
                values(item, out)
        out.append(0)

    return write


def _map_of_doubles() -> Writer:
    """A map of doubles: one struct per distinct key sequence packs keys and values at once."""
    layouts: dict[tuple[str, ...], tuple[struct.Struct, list[Any]]] = {}

    def layout(keys: tuple[str, ...]) -> tuple[struct.Struct, list[Any]]:
        encoded = [k.encode() for k in keys]
        # Each entry: the key's length and bytes (one "s" field), then its double.
        fmt = "<" + "".join(f"{len(_long_bytes(len(k)) + k)}sd" for k in encoded)
        template: list[Any] = []
        for k in encoded:
            template += [_long_bytes(len(k)) + k, 0.0]
        found = (struct.Struct(fmt), template)
        if len(layouts) < _LAYOUT_CACHE_MAX:
            layouts[keys] = found
        return found

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict:
            raise Unsupported
        if value:
            keys = tuple(value)
            packer, template = layouts.get(keys) or layout(keys)
            numbers = list(value.values())
            if not all(type(n) is float for n in numbers):
                raise Unsupported
            args = template.copy()
            args[1::2] = numbers
            out += _long_bytes(len(value))
            out += packer.pack(*args)
        out.append(0)

    return write


def _record(fields: list[tuple[str, Writer]]) -> Writer:
    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict:
            raise Unsupported
        try:
            for name, field in fields:
                field(value[name], out)
        except KeyError:
            raise Unsupported from None

    return write


def _optional(branch: Writer) -> Writer:
    """["null", T]: index 0 for None, else index 1 and the value."""

    def write(value: Any, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(2)  # zig-zag of 1
            branch(value, out)

    return write


def _compile(schema: Any, named: dict[str, Writer]) -> Writer | None:
    if isinstance(schema, str):
        return _PRIMITIVES.get(schema) or named.get(schema)
    if isinstance(schema, list):
        return _compile_union(schema, named)
    if not isinstance(schema, Mapping):
        return None
    kind, logical = schema.get("type"), schema.get("logicalType")
    if logical is not None:
        return _LOGICAL.get((str(kind), str(logical)))
    if kind == "record":
        return _compile_record(schema, named)
    if kind == "enum":
        writer = _enum(list(schema["symbols"]))
        named[schema["name"]] = writer
        return writer
    if kind in ("array", "map"):
        return _compile_container(schema, named)
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    return None


def _compile_union(schema: list[Any], named: dict[str, Writer]) -> Writer | None:
    # Only ["null", T]: other unions need fastavro's branch matching.
    if len(schema) == 2 and schema[0] == "null" and schema[1] != "null":
        branch = _compile(schema[1], named)
        return None if branch is None else _optional(branch)
    return None


def _compile_container(schema: Mapping[str, Any], named: dict[str, Writer]) -> Writer | None:
    if schema["type"] == "array":
        items = _compile(schema["items"], named)
        return None if items is None else _array(items)
    if schema["values"] == "double":
        return _map_of_doubles()
    values = _compile(schema["values"], named)
    return None if values is None else _map(values)


def _compile_record(schema: Mapping[str, Any], named: dict[str, Writer]) -> Writer | None:
    fields: list[tuple[str, Writer]] = []
    for field in schema["fields"]:
        writer = _compile(field["type"], named)
        if writer is None:
            return None
        fields.append((field["name"], writer))
    kinds = [_INTEGER_KINDS.get(id(w)) for _, w in fields]
    if all(kind is not None for kind in kinds):
        writer = _integer_record([name for name, _ in fields], kinds)
    else:
        writer = _record(fields)
    named[schema["name"]] = writer
    return writer


_INT, _LONG, _DATE = 0, 1, 2
_INTEGER_KINDS = {id(_PRIMITIVES["int"]): _INT, id(_PRIMITIVES["long"]): _LONG, id(_date): _DATE}


def _integer_record(names: list[str], kinds: list[int | None]) -> Writer:
    """A record of ints, longs and dates (an instalment): one loop, no call per field."""
    fields = list(zip(names, kinds, strict=True))
    int_low, int_high = _INT_RANGE
    long_low, long_high = _LONG_RANGE

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict:
            raise Unsupported
        for name, kind in fields:
            number = value.get(name, value)  # the record itself stands for "missing"
            if type(number) is int:
                if kind == _LONG:
                    if not long_low <= number <= long_high:
                        raise Unsupported
                elif not int_low <= number <= int_high:
                    raise Unsupported
            elif kind == _DATE and type(number) is date:
                number = number.toordinal() - _EPOCH_ORDINAL
            else:
                raise Unsupported
            if -_SMALL_OFFSET <= number < _SMALL_OFFSET:
                out += _SMALL[number + _SMALL_OFFSET]
            else:
                out += _SEEN.get(number) or _long_bytes(number)

    return write


def compile_writer(parsed_schema: Mapping[str, Any]) -> Writer | None:
    """A writer for this (fastavro-parsed) schema, or None if it uses a type not handled here."""
    return _compile(parsed_schema, {})
