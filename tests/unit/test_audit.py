"""The audit chain: hashes survive the Avro codec, and every kind of tampering is located."""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greencredit.infra import audit_head
from greencredit.schemas import examples_dir
from greencredit.streams.audit import (
    GENESIS_HASH,
    ChainHead,
    UnknownChainHead,
    canonical_bytes,
    record_hash,
    seal,
    verify_chain,
)
from greencredit.streams.codec import AvroCodec
from greencredit.streams.jsonform import from_json_form

CODEC = AvroCodec()
TOPIC = "greencredit.decisions"


def decision(n: int = 0) -> dict:
    """The shipped example decision, made distinct by `n`."""
    event = json.loads((examples_dir() / "decision.json").read_text())
    record = from_json_form(CODEC.catalog.reader("greencredit.v1.ApplicationDecision").raw, event)
    record["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"audit-test-{n}"))
    record["occurred_at"] += timedelta(seconds=n)
    record["score"] = 0.1 + n / 100
    return record


def through_codec(record: dict) -> dict:
    return CODEC.decode(CODEC.encode(TOPIC, record), TOPIC).value


def chain(length: int, partition: int = 0) -> list[tuple[int, dict]]:
    """(offset, decoded record) of a chain sealed by ChainHead and sent through the codec."""
    heads = ChainHead()
    heads.set_head(TOPIC, partition, GENESIS_HASH)
    return [
        (offset, through_codec(heads.next(decision(offset), TOPIC, partition)))
        for offset in range(length)
    ]


def test_a_sealed_chain_verifies_after_the_avro_round_trip():
    records = chain(10)
    report = verify_chain(records)
    assert report.ok and report.count == 10
    assert report.first_broken is None
    assert report.head == records[-1][1]["record_hash"]
    assert records[0][1]["prev_hash"] == GENESIS_HASH
    for (_, earlier), (_, later) in itertools.pairwise(records):
        assert later["prev_hash"] == earlier["record_hash"]


def test_seal_links_and_hashes_without_touching_the_input():
    record = decision()
    sealed = seal(record, "ab" * 32)
    assert sealed["prev_hash"] == "ab" * 32
    assert len(sealed["record_hash"]) == 64
    assert sealed["record_hash"] == record_hash(sealed)
    assert record["record_hash"] != sealed["record_hash"]  # the example's placeholder remains
    assert seal(sealed, "ab" * 32) == sealed  # resealing is idempotent


def test_record_hash_is_not_part_of_the_canonical_content():
    record = decision()
    assert canonical_bytes(record) == canonical_bytes({**record, "record_hash": "x"})
    assert b"record_hash" not in canonical_bytes(record)
    assert b"prev_hash" in canonical_bytes(record)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("score", lambda r: r.__setitem__("score", r["score"] + 1e-9)),
        ("decision", lambda r: r.__setitem__("decision", "DECLINE")),
        ("reason", lambda r: r["reasons"][0].__setitem__("contribution", 0.5)),
        ("reason code", lambda r: r["reasons"][1].__setitem__("code", "MANUAL_OVERRIDE")),
        ("indicator", lambda r: r["indicators"].__setitem__("device_risk", 0.0)),
        ("occurred_at", lambda r: r.__setitem__("occurred_at", r["occurred_at"] + timedelta(0, 1))),
    ],
)
def test_tampering_with_a_field_is_found_at_its_offset(field, change):
    records = chain(8)
    tampered = copy.deepcopy(records[5][1])
    change(tampered)
    records[5] = (5, through_codec(tampered))  # still valid Avro, stored hash unchanged
    report = verify_chain(records)
    assert not report.ok and report.count == 8, field
    assert report.first_broken is not None
    assert report.first_broken.offset == 5
    assert report.first_broken.event_id == records[5][1]["event_id"]
    assert report.first_broken.reason == "record_hash mismatch (content changed)"


def test_a_rehashed_forgery_breaks_the_next_link():
    records = chain(6)
    forged = {**records[3][1], "decision": "DECLINE"}
    records[3] = (3, seal(forged, forged["prev_hash"]))
    report = verify_chain(records)
    assert report.first_broken is not None
    assert report.first_broken.offset == 4
    assert report.first_broken.reason == "prev_hash does not link to offset 3"


def test_a_deleted_record_leaves_a_gap():
    records = chain(6)
    del records[2]
    report = verify_chain(records)
    assert report.count == 5
    assert report.first_broken is not None
    assert report.first_broken.offset == 3
    assert report.first_broken.reason == "prev_hash does not link to offset 1"


def test_reordered_records_are_detected():
    records = chain(6)
    (o2, r2), (o3, r3) = records[2], records[3]
    records[2], records[3] = (o2, r3), (o3, r2)
    report = verify_chain(records)
    assert report.first_broken is not None
    assert report.first_broken.offset == 2
    assert report.first_broken.reason == "prev_hash does not link to offset 1"


def test_the_first_record_must_start_at_genesis():
    records = chain(4)[1:]  # as if offset 0 were deleted
    report = verify_chain(records)
    assert report.first_broken is not None
    assert report.first_broken.offset == 1
    assert report.first_broken.reason == "prev_hash does not link to the chain start"


def test_a_chain_whose_start_was_deleted_by_retention_verifies_from_start_hash():
    records = chain(5)
    kept = records[2:]
    assert verify_chain(kept, start_hash=records[1][1]["record_hash"]).ok
    assert not verify_chain(kept, start_hash=records[0][1]["record_hash"]).ok


def test_verify_partition_starts_after_records_deleted_by_retention(monkeypatch):
    records = chain(5)

    def read_from_offset_2(*_args, **_kwargs):
        return iter(records[2:])

    monkeypatch.setattr(audit_head, "read_partition", read_from_offset_2)
    audit = audit_head.verify_partition({}, TOPIC, 0, CODEC)
    assert audit.first_offset == 2
    assert audit.report.ok and audit.report.count == 3

    records[3] = (3, {**records[3][1], "score": 0.99})
    audit = audit_head.verify_partition({}, TOPIC, 0, CODEC)
    assert audit.report.first_broken is not None
    assert audit.report.first_broken.offset == 3


def test_an_undecodable_message_breaks_the_chain():
    records: list = chain(4)
    records[1] = (1, None)
    report = verify_chain(records)
    assert report.first_broken is not None
    assert report.first_broken.offset == 1
    assert report.first_broken.event_id is None
    assert "does not decode" in report.first_broken.reason


def test_an_empty_partition_is_a_valid_chain():
    report = verify_chain([])
    assert report.ok and report.count == 0 and report.head == GENESIS_HASH


def test_microseconds_are_truncated_before_hashing():
    record = decision()
    record["occurred_at"] = datetime(2026, 11, 20, 9, 15, 0, 120_999, tzinfo=UTC)
    sealed = seal(record, GENESIS_HASH)
    decoded = through_codec(sealed)
    assert decoded["occurred_at"].microsecond == 120_000  # Avro kept milliseconds only
    assert record_hash(decoded) == sealed["record_hash"]
    assert verify_chain([(0, decoded)]).ok


def test_an_int_in_a_double_field_hashes_like_the_decoded_float():
    record = decision()
    record["features"] = {**record["features"], "term_months": 24}
    sealed = seal(record, GENESIS_HASH)
    decoded = through_codec(sealed)
    assert isinstance(decoded["features"]["term_months"], float)
    assert record_hash(decoded) == sealed["record_hash"]


@given(
    score=st.floats(allow_nan=False, allow_infinity=False, width=64),
    contribution=st.floats(allow_nan=False, allow_infinity=False),
    millis=st.integers(min_value=0, max_value=4_102_444_800_000),
    micros=st.integers(min_value=0, max_value=999),
)
def test_any_double_and_timestamp_survive_the_codec(score, contribution, millis, micros):
    record = decision()
    record["score"] = score
    record["reasons"][0]["contribution"] = contribution
    record["occurred_at"] = datetime.fromtimestamp(0, UTC) + timedelta(
        milliseconds=millis, microseconds=micros
    )
    sealed = seal(record, GENESIS_HASH)
    assert record_hash(through_codec(sealed)) == sealed["record_hash"]


def test_non_finite_doubles_hash_apart():
    record = decision()
    hashes = {
        record_hash({**record, "score": value})
        for value in (float("nan"), float("inf"), float("-inf"), 0.0)
    }
    assert len(hashes) == 4


def test_chain_heads_are_per_topic_and_partition():
    heads = ChainHead()
    assert not heads.knows(TOPIC, 0)
    with pytest.raises(UnknownChainHead):
        heads.next(decision(), TOPIC, 0)
    heads.set_head(TOPIC, 0, GENESIS_HASH)
    heads.set_head(TOPIC, 1, "f" * 64)
    first = heads.next(decision(1), TOPIC, 0)
    other = heads.next(decision(2), TOPIC, 1)
    assert first["prev_hash"] == GENESIS_HASH
    assert other["prev_hash"] == "f" * 64
    assert heads.head(TOPIC, 0) == first["record_hash"]
    assert heads.next(decision(3), TOPIC, 0)["prev_hash"] == first["record_hash"]
    assert not heads.knows("greencredit.disbursements", 0)


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("decision", "greencredit.v1.ApplicationDecision"),
        ("disbursement", "greencredit.v1.Disbursement"),
    ],
)
def test_shipped_examples_are_sealed_first_records(name, schema):
    from greencredit.schemas import examples_dir
    from greencredit.streams.catalog import SchemaCatalog
    from greencredit.streams.jsonform import from_json_form

    event = json.loads((examples_dir() / f"{name}.json").read_text())
    record = from_json_form(SchemaCatalog().reader(schema).raw, event)
    assert record["prev_hash"] == GENESIS_HASH
    assert record_hash(record) == event["record_hash"]
