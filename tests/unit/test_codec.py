"""The Avro wire-format codec: round trips, evolution, typed errors, PII-free messages."""

from __future__ import annotations

import contextlib
import io
import json
import struct
import uuid
from datetime import UTC, datetime

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.schemas import history_dir
from greencredit.streams.codec import AvroCodec
from greencredit.streams.errors import (
    BadMagicByte,
    CodecError,
    CorruptBody,
    InvalidEvent,
    SchemaMismatch,
    TruncatedBody,
    UnknownSchemaId,
)
from greencredit.streams.jsonform import from_json_form, to_json_form
from tests.conftest import example_events

CODEC = AvroCodec()


def native(topic_name, event):
    spec_schema = CODEC.catalog.reader(_schema_of(topic_name)).raw
    return from_json_form(spec_schema, event)


def _schema_of(topic_name):
    from greencredit.streams.topics import topic

    return topic(topic_name).schema


@pytest.mark.parametrize(
    ("name", "topic_name", "event"), example_events(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_example_round_trips(name, topic_name, event):
    data = CODEC.encode(topic_name, native(topic_name, event))
    assert data[0] == 0
    decoded = CODEC.decode(data, topic_name)
    assert decoded.schema_name == _schema_of(topic_name)
    assert to_json_form(None, decoded.value) == event


def test_header_is_confluent_wire_format():
    _, topic_name, event = example_events()[0]
    data = CODEC.encode(topic_name, native(topic_name, event))
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert CODEC.catalog.by_id[schema_id].name == _schema_of(topic_name)
    # Plain fastavro can read the body with the schema the id points at.
    body = fastavro.schemaless_reader(io.BytesIO(data[5:]), CODEC.catalog.by_id[schema_id].parsed)
    assert body["event_id"] == event["event_id"]


def test_reader_decodes_events_written_with_the_previous_schema_version():
    v1_raw = json.loads((history_dir() / "device_signal.v1.avsc").read_text())
    v1 = fastavro.parse_schema(v1_raw)
    old_event = {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "t1",
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "schema_version": 1,
        "device_id": "d1",
        "fingerprint": "f",
        "customer_id": None,
        "account_id": None,
        "is_emulator": True,
        "is_rooted": False,
        "is_jailbroken": False,
        "vpn_active": True,
        "proxy_active": False,
        "sim_change_age_hours": 3,
        "geo_country": "CN",
        "ip_address": None,
    }
    buffer = io.BytesIO()
    buffer.write(struct.pack(">bI", 0, 3))  # manifest id 3 = DeviceSignal v1
    fastavro.schemaless_writer(buffer, v1, old_event)
    decoded = CODEC.decode(buffer.getvalue(), "greencredit.device-signals")
    assert decoded.writer_version == 1
    assert decoded.value["is_emulator"] is True
    assert decoded.value["app_install_age_hours"] is None  # added in v2 with a default
    assert decoded.value["os"] is None
    assert decoded.value["schema_version"] == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (None, TruncatedBody),
        (b"", TruncatedBody),
        (b"\x00\x00\x00", TruncatedBody),
        (b"\x01\x00\x00\x00\x01abc", BadMagicByte),
        (b'{"json": true}', BadMagicByte),
        (b"\x00\x00\x00\x03\xe7abc", UnknownSchemaId),
    ],
)
def test_bad_bytes_raise_typed_errors(data, error):
    with pytest.raises(error):
        CODEC.decode(data)


def test_truncated_and_trailing_bodies_are_detected():
    _, topic_name, event = example_events()[0]
    data = CODEC.encode(topic_name, native(topic_name, event))
    with pytest.raises((TruncatedBody, CorruptBody)):
        CODEC.decode(data[:-3], topic_name)
    with pytest.raises(CorruptBody):
        CODEC.decode(data + b"\x00\x01", topic_name)


def test_schema_mismatch_with_the_topic():
    events = {name: (t, e) for name, t, e in example_events()}
    topic_name, event = events["repayment"]
    data = CODEC.encode(topic_name, native(topic_name, event))
    with pytest.raises(SchemaMismatch):
        CODEC.decode(data, "greencredit.transactions")


def test_invalid_event_names_the_field_but_never_its_value():
    events = {name: (t, e) for name, t, e in example_events()}
    topic_name, event = events["loan_application"]
    record = native(topic_name, event)
    record["applicant"] = dict(record["applicant"], phone=13812345678)  # int, not string
    with pytest.raises(InvalidEvent) as caught:
        CODEC.encode(topic_name, record)
    message = str(caught.value)
    assert "phone" in message
    assert "13812345678" not in message


def test_envelope_rules():
    events = {name: (t, e) for name, t, e in example_events()}
    topic_name, event = events["transaction"]
    record = native(topic_name, event)
    with pytest.raises(InvalidEvent, match="event_id"):
        CODEC.encode(topic_name, dict(record, event_id="not-a-uuid"))
    with pytest.raises(InvalidEvent, match="naive"):
        CODEC.encode(topic_name, dict(record, occurred_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    with pytest.raises(InvalidEvent, match="tenant_id"):
        CODEC.encode(topic_name, dict(record, tenant_id="  "))


def test_json_timestamps_need_an_offset():
    events = {name: (t, e) for name, t, e in example_events()}
    topic_name, event = events["transaction"]
    with pytest.raises(InvalidEvent, match="offset"):
        native(topic_name, dict(event, occurred_at="2026-11-20T21:42:10"))
    converted = native(topic_name, dict(event, occurred_at="2026-11-20T23:42:10+02:00"))
    assert converted["occurred_at"] == datetime(2026, 11, 20, 21, 42, 10, tzinfo=UTC)


# -- property-based ---------------------------------------------------------------------------
_text = st.text(min_size=1, max_size=40)
_transactions = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str),
        "tenant_id": _text.filter(lambda s: s.strip() != ""),
        "occurred_at": st.datetimes(
            # hypothesis wants naive bounds; `timezones` makes the values aware.
            min_value=datetime(1971, 1, 1),  # noqa: DTZ001
            max_value=datetime(2200, 1, 1),  # noqa: DTZ001
            timezones=st.just(UTC),
        ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
        "schema_version": st.just(1),
        "transaction_id": _text,
        "customer_id": _text,
        "account_id": _text,
        "loan_id": st.none() | _text,
        "card_number": st.from_regex(r"\d{16}", fullmatch=True),
        "amount_minor": st.integers(-(2**63), 2**63 - 1),
        "currency": st.sampled_from(["CNY", "EUR", "USD"]),
        "merchant_id": _text,
        "merchant_name": st.text(max_size=60),
        "mcc": st.from_regex(r"\d{4}", fullmatch=True),
        "channel": st.sampled_from(["POS", "ECOMMERCE", "ATM", "TRANSFER", "MOBILE_APP", "OTHER"]),
        "device_id": st.none() | _text,
        "ip_address": st.none() | _text,
        "ip_country": st.none() | st.sampled_from(["CN", "DE"]),
        "merchant_country": st.none() | st.sampled_from(["CN", "DE"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(_transactions)
def test_property_encode_decode_is_identity(record):
    decoded = CODEC.decode(
        CODEC.encode("greencredit.transactions", record), "greencredit.transactions"
    )
    assert decoded.value == record


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_property_arbitrary_bytes_never_crash_the_decoder(data):
    # Either a decoded event or a typed CodecError; anything else fails the test.
    with contextlib.suppress(CodecError):
        CODEC.decode(data)


@settings(max_examples=200, deadline=None)
@given(_transactions, st.data())
def test_property_any_corruption_is_a_codec_error_or_a_valid_record(record, data):
    encoded = bytearray(CODEC.encode("greencredit.transactions", record))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    try:
        decoded = CODEC.decode(bytes(encoded[:cut]), "greencredit.transactions")
    except CodecError:
        return
    assert decoded.schema_name == "greencredit.v1.Transaction"


def test_unvalidated_encode_still_refuses_wrong_types_without_values():
    events = {name: (t, e) for name, t, e in example_events()}
    topic_name, event = events["transaction"]
    record = native(topic_name, event)
    fast = CODEC.encode(topic_name, record, validate=False)
    assert fast == CODEC.encode(topic_name, record)
    with pytest.raises(InvalidEvent) as caught:
        CODEC.encode(topic_name, dict(record, amount_minor="6222021234567890123"), validate=False)
    assert "6222021234567890123" not in str(caught.value)


@pytest.mark.parametrize(
    "schema_id",
    [
        i
        for i, v in AvroCodec().catalog.by_id.items()
        if v.version < AvroCodec().catalog.reader(v.name).version
    ],
)
def test_every_older_schema_version_still_decodes(schema_id):
    """Events written with any historical version decode with today's reader schema."""
    catalog = CODEC.catalog
    old = catalog.by_id[schema_id]
    current = catalog.reader(old.name)
    name, topic_name, event = next(
        e for e in example_events() if CODEC.catalog.reader(_schema_of(e[1])).name == old.name
    )
    record = native(topic_name, event)
    old_fields = {f["name"] for f in old.raw["fields"]}
    written = {k: v for k, v in record.items() if k in old_fields}
    buffer = io.BytesIO()
    buffer.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buffer, old.parsed, written)
    decoded = CODEC.decode(buffer.getvalue(), topic_name).value
    for field in current.raw["fields"]:
        if field["name"] in old_fields:
            assert decoded[field["name"]] == written[field["name"]], (name, field["name"])
        else:
            assert decoded[field["name"]] == field["default"], (name, field["name"])


@pytest.mark.parametrize(
    ("history_file", "schema_id", "version", "dropped"),
    [
        ("lender_config.v2.avsc", 18, 2, ("face_match_threshold", "proposed_by", "approved_by")),
        ("lender_config.v3.avsc", 21, 3, ("proposed_by", "approved_by")),
    ],
)
def test_lender_configs_written_before_maker_checker_still_read_and_apply(
    history_file, schema_id, version, dropped
):
    """Older LenderConfig versions (no proposed_by / approved_by) decode with the v4 reader."""
    from greencredit.agents.lender_configs import config_from_event
    from tests.factories import example, native

    old = fastavro.parse_schema(json.loads((history_dir() / history_file).read_text()))
    event = native("greencredit.v1.LenderConfig", example("lender_config"))
    old_event = {k: v for k, v in event.items() if k not in dropped}
    old_event["schema_version"] = version
    buffer = io.BytesIO()
    buffer.write(struct.pack(">bI", 0, schema_id))
    fastavro.schemaless_writer(buffer, old, old_event)
    decoded = CODEC.decode(buffer.getvalue(), "greencredit.lender-config")
    assert (decoded.writer_version, decoded.value["schema_version"]) == (version, version)
    assert decoded.value["proposed_by"] is None and decoded.value["approved_by"] is None
    assert config_from_event(decoded.value).version == event["config_version"]
    current = CODEC.decode(CODEC.encode("greencredit.lender-config", event))
    assert current.writer_version == 4
    assert (current.value["proposed_by"], current.value["approved_by"]) == (
        "policy-maker-01",
        "policy-approver-02",
    )


def test_a_lender_config_written_as_v2_still_decodes_and_applies():
    from greencredit.agents.lender_configs import config_from_event
    from tests.factories import example, native

    v2 = fastavro.parse_schema(json.loads((history_dir() / "lender_config.v2.avsc").read_text()))
    event = native("greencredit.v1.LenderConfig", example("lender_config"))
    event.pop("face_match_threshold")
    event["schema_version"] = 2
    buffer = io.BytesIO()
    buffer.write(struct.pack(">bI", 0, 18))  # manifest id 18 = LenderConfig v2
    fastavro.schemaless_writer(buffer, v2, event)
    decoded = CODEC.decode(buffer.getvalue(), "greencredit.lender-config")
    assert decoded.writer_version == 2
    assert decoded.value["face_match_threshold"] is None
    assert config_from_event(decoded.value).face_match_threshold is None
