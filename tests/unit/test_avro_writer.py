"""The compiled Avro writers write fastavro's bytes, byte for byte, or leave the datum to it."""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greencredit.streams.avro_writer import Unsupported, compile_writer
from greencredit.streams.catalog import SchemaCatalog
from greencredit.streams.codec import AvroCodec
from greencredit.streams.jsonform import from_json_form
from greencredit.streams.topics import TOPICS, topic
from tests.conftest import example_events
from tests.factories import example, native

CATALOG = SchemaCatalog()
DECISION = CATALOG.reader("greencredit.v1.ApplicationDecision")
DISBURSEMENT = CATALOG.reader("greencredit.v1.Disbursement")
CODEC = AvroCodec()


def fastavro_bytes(parsed: Any, record: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


def compiled_bytes(parsed: Any, record: Any) -> bytes:
    writer = compile_writer(parsed)
    assert writer is not None
    out = bytearray()
    writer(record, out)
    return bytes(out)


def test_every_schema_the_engine_writes_compiles() -> None:
    # A schema left to fastavro would silently lose the speed, not correctness: say so.
    for spec in TOPICS:
        assert compile_writer(CATALOG.reader(spec.schema).parsed) is not None, spec.schema


@pytest.mark.parametrize(("name", "topic_name", "event"), example_events())
def test_every_example_event_encodes_as_fastavro_does(name, topic_name, event) -> None:
    spec = topic(topic_name)
    schema = CATALOG.reader(spec.schema)
    record = from_json_form(schema.raw, event)
    expected = fastavro_bytes(schema.parsed, record)
    assert CODEC.encode(topic_name, record)[5:] == expected, name
    if spec.direction != "input":
        # What the engine writes is built with the schema's exact types: no fallback.
        assert compiled_bytes(schema.parsed, record) == expected, name


def test_unicode_keys_negative_numbers_and_special_doubles() -> None:
    record = _decision(
        features={"é名": math.nan, "b": -0.0, "c": math.inf, "": -1e308},
        indicators={},
        score=-1.0,
        approve_below=None,
        customer_id="客户-7",
        ahp_config_version=-(2**31),
    )
    assert compiled_bytes(DECISION.parsed, record) == fastavro_bytes(DECISION.parsed, record)


def test_a_map_of_doubles_with_other_keys_or_order_uses_its_own_layout() -> None:
    writer = compile_writer(DECISION.parsed)
    assert writer is not None
    for features in ({"a": 1.0, "b": 2.0}, {"b": 2.0, "a": 1.0}, {"a": 1.0}, {"a": 3.5, "b": 0.5}):
        record = _decision(features=features)
        out = bytearray()
        writer(record, out)
        assert bytes(out) == fastavro_bytes(DECISION.parsed, record)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("score", 1),  # an int where the schema says double
        ("ahp_config_version", 2**31),  # outside Avro's int
        ("ahp_config_version", True),  # a bool is an int to Python, not to Avro
        ("occurred_at", datetime(2026, 1, 1)),  # noqa: DTZ001 - naive: fastavro reads it as local time
        ("features", {"a": 1}),
        ("decision", "MAYBE"),  # not a symbol
        ("customer_id", b"bytes"),
    ],
)
def test_anything_but_the_exact_type_is_left_to_fastavro(field: str, value: Any) -> None:
    writer = compile_writer(DECISION.parsed)
    assert writer is not None
    with pytest.raises(Unsupported):
        writer(_decision(**{field: value}), bytearray())


def test_a_missing_field_is_left_to_fastavro() -> None:
    record = _decision()
    del record["applicant_ref"]
    writer = compile_writer(DECISION.parsed)
    assert writer is not None
    with pytest.raises(Unsupported):
        writer(record, bytearray())


def test_the_codec_still_encodes_what_only_fastavro_takes() -> None:
    # An int for a double: the compiled writer declines, fastavro writes it as before.
    record = _decision(score=1)
    encoded = CODEC.encode("greencredit.decisions", record, validate=False)
    assert encoded[5:] == fastavro_bytes(DECISION.parsed, record)
    assert CODEC.decode(encoded).value["score"] == 1.0


_doubles = st.floats(allow_nan=True, allow_infinity=True)
_text = st.text(max_size=12)
_moments = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis adds the zones
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5))]),
)


@settings(max_examples=150, deadline=None)
@given(
    features=st.dictionaries(_text, _doubles, max_size=70),
    indicators=st.dictionaries(_text, _doubles, max_size=8),
    reasons=st.lists(st.fixed_dictionaries({"code": _text, "contribution": _doubles}), max_size=6),
    score=_doubles,
    approve_below=st.none() | _doubles,
    version=st.integers(-(2**31), 2**31 - 1),
    occurred_at=_moments,
    decision=st.sampled_from(["APPROVE", "REVIEW", "DECLINE"]),
)
def test_decisions_encode_as_fastavro_does(
    features, indicators, reasons, score, approve_below, version, occurred_at, decision
) -> None:
    record = _decision(
        features=features,
        indicators=indicators,
        reasons=reasons,
        score=score,
        approve_below=approve_below,
        ahp_config_version=version,
        occurred_at=occurred_at,
        decision=decision,
    )
    assert compiled_bytes(DECISION.parsed, record) == fastavro_bytes(DECISION.parsed, record)


_instalment = st.fixed_dictionaries(
    {
        "number": st.integers(-(2**31), 2**31 - 1),
        "due_date": st.dates(min_value=date(1, 1, 1)) | st.integers(-(2**31), 2**31 - 1),
        "amount_due_minor": st.integers(-(2**63), 2**63 - 1),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    schedule=st.lists(_instalment, max_size=40),
    amount=st.integers(-(2**63), 2**63 - 1),
    funder=st.none() | _text,
    co2e=st.none() | _doubles,
    occurred_at=_moments | st.integers(-(2**63), 2**63 - 1),
)
def test_disbursements_encode_as_fastavro_does(schedule, amount, funder, co2e, occurred_at) -> None:
    record = _disbursement(
        schedule=schedule,
        amount_minor=amount,
        funder_id=funder,
        co2e_avoided_kg=co2e,
        occurred_at=occurred_at,
    )
    assert compiled_bytes(DISBURSEMENT.parsed, record) == fastavro_bytes(
        DISBURSEMENT.parsed, record
    )


def test_varints_at_the_edges_of_the_small_table_and_of_long() -> None:
    for n in (-8193, -8192, -8191, -1, 0, 1, 8191, 8192, 2**31 - 1, 2**62, -(2**63), 2**63 - 1):
        record = _disbursement(amount_minor=n)
        assert compiled_bytes(DISBURSEMENT.parsed, record) == fastavro_bytes(
            DISBURSEMENT.parsed, record
        ), n


def _decision(**changes: Any) -> dict[str, Any]:
    """The shipped example decision (Avro-native), with `changes`."""
    return {**native(DECISION.name, example("decision")), **changes}


def _disbursement(**changes: Any) -> dict[str, Any]:
    """The shipped example disbursement (Avro-native), with `changes`."""
    return {**native(DISBURSEMENT.name, example("disbursement")), **changes}
