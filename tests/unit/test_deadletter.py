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


def test_a_huge_original_is_cut_to_a_prefix_that_still_encodes():
    from greencredit.streams.deadletter import MAX_ORIGINAL_BYTES

    big = bytes(range(256)) * (3 * MAX_ORIGINAL_BYTES // 256)
    record = dead_letter_record("t", BadMagicByte("x"), big, b"k" * (MAX_ORIGINAL_BYTES + 1), 0, 5)
    assert record["original_value"] == big[:MAX_ORIGINAL_BYTES]
    assert record["original_key"] == b"k" * MAX_ORIGINAL_BYTES
    assert f"value cut to its first {MAX_ORIGINAL_BYTES} of {len(big)} bytes" in record["reason"]
    assert "original key cut" in record["reason"]
    encoded = AvroCodec().encode("greencredit.dead-letter", record)
    assert len(encoded) < 1_000_000  # librdkafka's default message.max.bytes


def test_an_original_at_the_limit_is_kept_whole():
    from greencredit.streams.deadletter import MAX_ORIGINAL_BYTES

    exact = b"\x01" * MAX_ORIGINAL_BYTES
    record = dead_letter_record("t", BadMagicByte("x"), exact, None, 0, 6)
    assert record["original_value"] == exact and "cut" not in record["reason"]
