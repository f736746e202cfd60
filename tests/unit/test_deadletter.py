"""Dead-letter records: typed reason, original bytes, stable ids, PII scrubbed, encodable."""

from __future__ import annotations

from datetime import UTC, datetime

from greencredit.streams.codec import AvroCodec
from greencredit.streams.deadletter import dead_letter_record
from greencredit.streams.errors import BadMagicByte, CodecError


def test_dead_letter_from_a_codec_error_keeps_bytes_and_reason():
    codec = AvroCodec()
    poison = b"\xffnot avro at all"
    try:
        codec.decode(poison)
    except CodecError as exc:
        error = exc
    record = dead_letter_record(
        "greencredit.transactions", error, poison, b"k", 2, 41, now=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert record["error_type"] == "BadMagicByte"
    assert record["original_value"] == poison
    assert record["source_offset"] == 41
    decoded = codec.decode(
        codec.encode("greencredit.dead-letter", record), "greencredit.dead-letter"
    )
    assert decoded.value["original_value"] == poison


def test_same_position_gives_the_same_event_id():
    error = BadMagicByte("x")
    first = dead_letter_record("t", error, b"a", None, 1, 7)
    again = dead_letter_record("t", error, b"a", None, 1, 7)
    other = dead_letter_record("t", error, b"a", None, 1, 8)
    assert first["event_id"] == again["event_id"] != other["event_id"]


def test_reason_is_scrubbed():
    record = dead_letter_record("t", ValueError("bad phone 13812345678"), b"", None, 0, 0)
    assert "13812345678" not in record["reason"]
    assert record["error_type"] == "ValueError"
