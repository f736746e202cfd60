"""`greencredit validate|publish|tail`: publish events written as JSON, read topics masked."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import typer

from greencredit.infra.embedded import StackError
from greencredit.infra.endpoints import resolve_endpoints
from greencredit.settings import get_settings
from greencredit.streams.codec import AvroCodec, codec_from_settings
from greencredit.streams.errors import CodecError
from greencredit.streams.json_validation import json_form_problems, json_type
from greencredit.streams.jsonform import from_json_form, to_json_form
from greencredit.streams.masking import mask_record, scrub_text
from greencredit.streams.publish import EventPublisher, ReadResult
from greencredit.streams.tail import tail_topic
from greencredit.streams.topics import TopicSpec, UnknownTopic, topic

from ._output import fail, print_json

__all__ = ["publish_command", "tail_command", "validate_command"]

# Enough lines to fix a file in one pass without flooding the terminal.
_MAX_REPORTED = 50
_SOURCE_HELP = "JSON object, JSON array or JSON Lines; - reads stdin."


@dataclass
class _Batch:
    """What a file held: events ready to encode, and every problem found on the way."""

    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    count: int = 0


def _spec(topic_name: str) -> TopicSpec:
    try:
        return topic(topic_name)
    except UnknownTopic as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))


def _documents(source: Path) -> Iterator[tuple[str, Any]]:
    """(where, parsed value or JSONDecodeError) for each event of the file.

    A file that parses as one JSON document is an object or an array of objects; otherwise
    it is JSON Lines when its first line is a JSON document on its own.
    """
    name = "<stdin>" if str(source) == "-" else str(source)
    text = sys.stdin.read() if str(source) == "-" else _read(source)
    if not text.strip():
        return
    try:
        whole = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        lines = text.splitlines()
        first = next((line for line in lines if line.strip()), "")
        if text.lstrip().startswith("[") or not _parses(first):
            fail(f"{name}: not valid JSON ({_json_error(exc)})")
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield f"{name}:{number}", orjson.loads(line)
                except orjson.JSONDecodeError as line_exc:
                    yield f"{name}:{number}", line_exc
        return
    if isinstance(whole, list):
        for index, item in enumerate(whole):
            yield f"{name}[{index}]", item
    else:
        yield name, whole


def _parses(line: str) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _json_error(exc: orjson.JSONDecodeError) -> str:
    # Keep orjson's position, drop anything that could quote the document.
    return f"line {exc.lineno} column {exc.colno}: {exc.msg.split(':', 1)[0]}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _check(topic_name: str, source: Path, codec: AvroCodec) -> _Batch:
    """Parse and validate every event of `source`; nothing is sent here."""
    spec = _spec(topic_name)
    schema = codec.catalog.reader(spec.schema)
    batch = _Batch()
    for where, item in _documents(source):
        batch.count += 1
        if isinstance(item, orjson.JSONDecodeError):
            batch.problems.append(f"{where}: not valid JSON ({_json_error(item)})")
            continue
        if not isinstance(item, dict):
            batch.problems.append(f"{where}: expected a JSON object, got {json_type(item)}")
            continue
        problems = json_form_problems(schema.raw, item)
        if problems:
            batch.problems.extend(f"{where}: {problem}" for problem in problems)
            continue
        try:
            native = from_json_form(schema.raw, item)
            codec.encode(topic_name, native)  # the codec's own rules have the last word
        except CodecError as exc:
            batch.problems.append(f"{where}: {_strip_field_prefix(str(exc))}")
            continue
        batch.records.append(native)
    if batch.count == 0:
        fail(f"{source}: no events")
    return batch


def _strip_field_prefix(message: str) -> str:
    # The codec says "field 'a.b': ..."; the CLI's form is "a.b: ...".
    return re.sub(r"^field '([^']*)': ", r"\1: ", message)


def _report(batch: _Batch, what: str) -> None:
    """Print every problem (up to a limit) and exit 2 if there is any."""
    if not batch.problems:
        return
    for line in batch.problems[:_MAX_REPORTED]:
        typer.echo(scrub_text(line), err=True)
    hidden = len(batch.problems) - _MAX_REPORTED
    if hidden > 0:
        typer.echo(f"... and {hidden} more problems", err=True)
    invalid = batch.count - len(batch.records)
    fail(f"{invalid} of {batch.count} events invalid; {what}")


def validate_command(
    topic_name: str = typer.Argument(..., metavar="TOPIC"),
    source: Path = typer.Argument(..., metavar="FILE", help=_SOURCE_HELP),
) -> None:
    """Check events against the topic's schema without sending them (exit 2 if invalid).

    Each problem is printed as FILE:LINE (or FILE[INDEX]): FIELD.PATH: what is
    wrong. Values are never printed: they may be personal data.
    """
    batch = _check(topic_name, source, codec_from_settings(get_settings()))
    _report(batch, "see the lines above")
    print_json({"topic": topic_name, "valid": len(batch.records)})


def publish_command(
    topic_name: str = typer.Argument(..., metavar="TOPIC"),
    source: Path = typer.Argument(..., metavar="FILE", help=_SOURCE_HELP),
) -> None:
    """Validate events against the topic's schema, then publish them.

    All or nothing: if any event is invalid, nothing is published and the exit
    code is 2. Each problem is printed as FILE:LINE (or FILE[INDEX]):
    FIELD.PATH: what is wrong, never with the value (it may be personal data).

    Exit code 1: the broker failed. Events sent before the failure stay sent;
    publishing the file again is safe (consumers de-duplicate on event_id).
    """
    settings = get_settings()
    codec = codec_from_settings(settings)
    batch = _check(topic_name, source, codec)
    _report(batch, "nothing was published")
    try:
        endpoints = resolve_endpoints(settings)
    except StackError as exc:
        fail(str(exc))
    try:
        publisher = EventPublisher(settings.kafka_client_config(endpoints.kafka), codec)
        for record in batch.records:
            publisher.publish(topic_name, record)
        publisher.flush()
    except Exception as exc:  # librdkafka and the network fail in many ways
        fail(f"publishing failed: {exc}", code=1)
    print_json({"topic": topic_name, "published": len(batch.records)})


def tail_command(
    topic_name: str = typer.Argument(..., metavar="TOPIC"),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep waiting for new events until Ctrl-C."
    ),
    from_beginning: bool | None = typer.Option(
        None,
        "--from-beginning/--from-end",
        help="Where to start \\[default: beginning; with --follow: end].",
        show_default=False,
    ),
    limit: int = typer.Option(0, "--limit", "-n", min=0, help="Stop after N events (0: no limit)."),
    idle: float = typer.Option(
        10.0,
        "--idle",
        min=0.1,
        help="Without --follow: give up when the broker is silent this long.",
    ),
) -> None:
    """Print a topic's events as JSON Lines, personal data masked.

    One JSON object per line: {"partition", "offset", "event"}. A message that
    does not decode is printed as {"partition", "offset", "error"}, not fatal.

    Without --follow, stops at the topic's end; with it, Ctrl-C stops (exit 0).
    """
    _spec(topic_name)
    settings = get_settings()
    try:
        endpoints = resolve_endpoints(settings)
    except StackError as exc:
        fail(str(exc))
    start_at_beginning = (not follow) if from_beginning is None else from_beginning
    results = tail_topic(
        settings.kafka_client_config(endpoints.kafka),
        topic_name,
        codec_from_settings(settings),
        from_beginning=start_at_beginning,
        follow=follow,
        limit=limit or None,
        idle_timeout=idle,
    )
    try:
        with closing(results):
            for result in results:
                sys.stdout.write(orjson.dumps(_console_line(result)).decode() + "\n")
                sys.stdout.flush()
    except KeyboardInterrupt:
        return  # Ctrl-C is how a follow ends; the consumer was closed on the way out
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly. Pointing stdout at /dev/null keeps
        # the interpreter's final flush from raising again (as the Python docs advise).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except Exception as exc:  # the broker is unreachable or the topic is missing
        fail(f"reading {topic_name} failed: {exc}", code=1)


def _console_line(result: ReadResult) -> dict[str, Any]:
    """A result as printed: the event masked, or the decode error scrubbed."""
    line: dict[str, Any] = {"partition": result.partition, "offset": result.offset}
    if result.event is not None:
        line["event"] = _masked(
            to_json_form(None, _withhold_bytes(mask_record(result.event.value)))
        )
    else:
        error = result.error
        line["error"] = {
            "type": error.error_type if error is not None else "unknown",
            "reason": scrub_text(str(error)),
        }
    return line


def _withhold_bytes(value: Any) -> Any:
    """Bytes (dead letters' original messages, photos) are raw input: never on a console."""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes withheld>"
    if isinstance(value, dict):
        return {k: _withhold_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_withhold_bytes(v) for v in value]
    return value


_UUID_OR_HASH = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|[0-9a-f]{64}")


def _masked(value: Any) -> Any:
    """Scrub PII out of free text too (a phone number used as a customer id, say).

    UUIDs and hashes are left alone: a run of digits inside one can look like a card number.
    """
    if isinstance(value, str):
        return value if _UUID_OR_HASH.fullmatch(value) else scrub_text(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value
