"""`greencredit validate|produce|tail`: publish and read events as JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import typer

from greencredit.infra.endpoints import resolve_endpoints
from greencredit.settings import get_settings
from greencredit.streams.codec import codec_from_settings
from greencredit.streams.errors import CodecError
from greencredit.streams.jsonform import from_json_form, to_json_form
from greencredit.streams.masking import mask_record
from greencredit.streams.publish import EventPublisher, read_topic
from greencredit.streams.topics import UnknownTopic, topic

from ._output import fail, print_json


def _events_from(source: Path) -> Iterator[tuple[str, Any]]:
    """Yield (where, event) from a JSON file (object or array) or JSON Lines; '-' is stdin."""
    text = sys.stdin.read() if str(source) == "-" else _read(source)
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and "\n{" not in stripped):
        try:
            loaded = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            fail(f"{source}: not valid JSON ({exc})")
        items = loaded if isinstance(loaded, list) else [loaded]
        for index, item in enumerate(items):
            yield f"{source}[{index}]", item
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield f"{source}:{number}", orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                fail(f"{source}:{number}: not valid JSON ({exc})")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _prepare(topic_name: str, source: Path) -> list[dict[str, Any]]:
    try:
        spec = topic(topic_name)
    except UnknownTopic as exc:
        fail(str(exc.args[0]))
    codec = codec_from_settings(get_settings())
    schema = codec.catalog.reader(spec.schema)
    records = []
    for where, item in _events_from(source):
        if not isinstance(item, dict):
            fail(f"{where}: expected a JSON object")
        try:
            native = from_json_form(schema.raw, item)
            codec.encode(topic_name, native)  # validates
        except CodecError as exc:
            fail(f"{where}: invalid {spec.schema.rsplit('.', 1)[-1]}: {exc}")
        records.append(native)
    return records


def validate_command(
    topic_name: str = typer.Argument(..., metavar="TOPIC"),
    source: Path = typer.Argument(
        ..., metavar="FILE", help="JSON, JSON array or JSON Lines; - for stdin."
    ),
) -> None:
    """Check events against the topic's schema without sending them."""
    records = _prepare(topic_name, source)
    print_json({"topic": topic_name, "valid": len(records)})


def produce_command(
    topic_name: str = typer.Argument(..., metavar="TOPIC"),
    source: Path = typer.Argument(
        ..., metavar="FILE", help="JSON, JSON array or JSON Lines; - for stdin."
    ),
) -> None:
    """Validate events and publish them (all or nothing: one invalid event sends none)."""
    records = _prepare(topic_name, source)
    settings = get_settings()
    try:
        endpoints = resolve_endpoints(settings)
        publisher = EventPublisher(
            settings.kafka_client_config(endpoints.kafka), codec_from_settings(settings)
        )
        for record in records:
            publisher.publish(topic_name, record)
        publisher.flush()
    except Exception as exc:
        fail(f"publishing failed: {exc}")
    print_json({"topic": topic_name, "published": len(records)})


def tail_command(
    topic_name: str = typer.Argument(..., metavar="TOPIC"),
    limit: int = typer.Option(0, "--limit", "-n", help="Stop after N messages (0: no limit)."),
    idle: float = typer.Option(
        3.0, "--idle", help="Stop after this many seconds without a message."
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="Only new messages, keep waiting."),
) -> None:
    """Print a topic's events as JSON Lines (decode errors are printed, not fatal)."""
    settings = get_settings()
    try:
        topic(topic_name)
        endpoints = resolve_endpoints(settings)
    except (UnknownTopic, Exception) as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))
    codec = codec_from_settings(settings)
    results = read_topic(
        settings.kafka_client_config(endpoints.kafka),
        topic_name,
        codec,
        max_messages=limit or None,
        idle_timeout=(10**9 if follow else idle),
        from_beginning=not follow,
    )
    for result in results:
        line: dict[str, Any] = {"partition": result.partition, "offset": result.offset}
        if result.event is not None:
            # Input topics carry raw PII: the console only ever shows it masked.
            line["event"] = to_json_form(None, mask_record(result.event.value))
        else:
            line["error"] = {
                "type": result.error.error_type if result.error else "unknown",
                "reason": str(result.error),
            }
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
