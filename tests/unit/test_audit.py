"""The audit chain: the byte rule as documented, every kind of tampering located, legacy kept."""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from greencredit.infra import audit_head
from greencredit.infra.audit_head import entry_of_message
from greencredit.schemas import examples_dir, schema_dir
from greencredit.streams.audit import (
    AVRO_BYTES,
    CANONICAL_JSON,
    GENESIS_HASH,
    ChainEntry,
    ChainHead,
    ChainLayoutError,
    UnknownChainHead,
    canonical_bytes,
    check_chain_layout,
    legacy_record_hash,
    verify_chain,
)
from greencredit.streams.catalog import SchemaCatalog, SchemaVersion
from greencredit.streams.codec import HEADER_SIZE, AvroCodec
from greencredit.streams.errors import InvalidEvent, SchemaMismatch
from greencredit.streams.jsonform import from_json_form

CODEC = AvroCodec()
TOPIC = "greencredit.decisions"
DECISION = "greencredit.v1.ApplicationDecision"


def decision(n: int = 0) -> dict:
    """The shipped example decision, made distinct by `n`."""
    event = json.loads((examples_dir() / "decision.json").read_text())
    record = from_json_form(CODEC.catalog.reader(DECISION).raw, event)
    record["event_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"audit-test-{n}"))
    record["occurred_at"] += timedelta(seconds=n)
    record["score"] = 0.1 + n / 100
    return record


def sealed_values(length: int, head: str = GENESIS_HASH, first: int = 0) -> list[bytes]:
    """Wire bytes of a chain sealed by the codec, as the engine writes it."""
    values = []
    for n in range(first, first + length):
        value, head = CODEC.encode_sealed(TOPIC, decision(n), head)
        values.append(value)
    return values


def entries(values: list[bytes | None], codec: AvroCodec = CODEC) -> list[tuple[int, Any]]:
    return [(offset, entry_of_message(codec, value)) for offset, value in enumerate(values)]


def chain(length: int) -> list[tuple[int, Any]]:
    return entries(sealed_values(length))


def stored(value: bytes) -> dict:
    return CODEC.decode(value, TOPIC).value


def legacy_sealed(record: dict, prev_hash: str) -> dict:
    """A record sealed as earlier versions did: canonical JSON of the record."""
    linked = {**record, "prev_hash": prev_hash}
    return {**linked, "record_hash": legacy_record_hash(linked)}


def test_a_sealed_chain_verifies_and_links_record_to_record():
    values = sealed_values(10)
    report = verify_chain(entries(values))
    assert report.ok and report.count == 10 and report.legacy == 0
    records = [stored(v) for v in values]
    assert report.head == records[-1]["record_hash"]
    assert records[0]["prev_hash"] == GENESIS_HASH
    for earlier, later in itertools.pairwise(records):
        assert later["prev_hash"] == earlier["record_hash"]
    assert {entry.rule for _, entry in entries(values)} == {AVRO_BYTES}


def test_the_documented_rule_reimplemented_from_the_docstring():
    """An institution's check, from the written rule and a generic Avro library only."""
    prev = "ab" * 32
    value, returned = CODEC.encode_sealed(TOPIC, decision(), prev)
    schema_id = int.from_bytes(value[1:5], "big")
    writer = CODEC.ids.writer_schema(schema_id).raw
    body = value[5:]
    assert body[-132:] == b"\x80\x01" + prev.encode() + b"\x80\x01" + returned.encode()
    f = bytes.fromhex(fingerprint(to_parsing_canonical_form(writer), "SHA-256"))
    assert hashlib.sha256(f + body[: len(body) - 66]).hexdigest() == returned
    assert stored(value)["record_hash"] == returned and stored(value)["prev_hash"] == prev


def test_encode_sealed_ignores_chain_fields_in_the_input_and_leaves_it_alone():
    record = decision()
    placeholder = record["record_hash"]
    value, digest = CODEC.encode_sealed(TOPIC, record, "ab" * 32)
    assert record["record_hash"] == placeholder  # the input is not modified
    assert CODEC.encode_sealed(TOPIC, {**record, "record_hash": "x"}, "ab" * 32) == (value, digest)
    # The hash covers the link: another prev_hash, another record_hash.
    assert CODEC.encode_sealed(TOPIC, record, "cd" * 32)[1] != digest


@pytest.mark.parametrize("prev", ["AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "é" * 64])
def test_a_prev_hash_that_is_not_64_lowercase_hex_is_refused(prev):
    with pytest.raises(InvalidEvent, match="prev_hash"):
        CODEC.encode_sealed(TOPIC, decision(), prev)


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
    values = sealed_values(8)
    tampered = copy.deepcopy(stored(values[5]))
    change(tampered)
    values[5] = CODEC.encode(TOPIC, tampered)  # still valid Avro, stored hashes unchanged
    report = verify_chain(entries(values))
    assert not report.ok and report.count == 8, field
    assert report.first_broken is not None
    assert report.first_broken.offset == 5
    assert report.first_broken.event_id == tampered["event_id"]
    assert report.first_broken.reason == "record_hash mismatch (content changed)"


def test_any_flipped_byte_before_the_record_hash_is_found():
    values = sealed_values(3)
    body_length = len(values[1]) - HEADER_SIZE
    # Every byte of the hashed part of the body, skipping the hash field itself.
    for position in range(HEADER_SIZE, HEADER_SIZE + body_length - 66, 7):
        flipped = bytearray(values[1])
        flipped[position] ^= 0x01
        report = verify_chain(entries([values[0], bytes(flipped), values[2]]))
        assert report.first_broken is not None, position
        assert report.first_broken.offset == 1, position


def test_the_hash_binds_the_schema_not_the_schema_id():
    """Re-sent under another id of the same schema it verifies; read as another schema not."""
    value = sealed_values(1)[0]
    other_id = PerSubjectIds(CODEC.catalog)
    codec = AvroCodec(CODEC.catalog, other_id)
    moved = codec.reheader("greencredit.reviews", value)
    assert moved[:HEADER_SIZE] != value[:HEADER_SIZE] and moved[5:] == value[5:]
    assert verify_chain(entries([moved], codec)).ok
    # A schema that reads the same bytes otherwise: the outcome's symbols in another order.
    current = CODEC.catalog.reader(DECISION)
    raw = copy.deepcopy(current.raw)
    outcome = next(f for f in raw["fields"] if f["name"] == "decision")
    outcome["type"]["symbols"] = ["DECLINE", "REVIEW", "APPROVE"]
    flipped = SchemaVersion(DECISION, current.version, raw, fastavro.parse_schema(raw))
    other_id._schemas[4242] = flipped
    relabelled = b"\x00" + (4242).to_bytes(4, "big") + value[5:]
    assert codec.decode(relabelled).value["decision"] != stored(value)["decision"]
    report = verify_chain(entries([relabelled], codec))
    assert report.first_broken is not None
    assert report.first_broken.reason == "record_hash mismatch (content changed)"


def test_reheader_refuses_a_topic_of_another_schema():
    with pytest.raises(SchemaMismatch):
        CODEC.reheader("greencredit.disbursements", sealed_values(1)[0])
    value = sealed_values(1)[0]
    assert CODEC.reheader("greencredit.reviews", value) is value  # manifest ids: same header


def test_a_rehashed_forgery_breaks_the_next_link():
    values = sealed_values(6)
    original = stored(values[3])
    forged = {**original, "decision": "DECLINE"}
    values[3] = CODEC.encode_sealed(TOPIC, forged, original["prev_hash"])[0]
    report = verify_chain(entries(values))
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
    assert verify_chain(kept, start_hash=records[1][1].record_hash).ok
    assert not verify_chain(kept, start_hash=records[0][1].record_hash).ok


def test_verify_partition_starts_after_records_deleted_by_retention(monkeypatch):
    values = sealed_values(5)
    read: list[tuple[int, Any]] = entries(values)[2:]
    monkeypatch.setattr(audit_head, "read_partition", lambda *_args, **_kwargs: iter(read))
    audit = audit_head.verify_partition({}, TOPIC, 0, CODEC)
    assert audit.first_offset == 2
    assert audit.report.ok and audit.report.count == 3

    read[1] = (
        3,
        entry_of_message(CODEC, CODEC.encode(TOPIC, {**stored(values[3]), "score": 0.99})),
    )
    audit = audit_head.verify_partition({}, TOPIC, 0, CODEC)
    assert audit.report.first_broken is not None
    assert audit.report.first_broken.offset == 3


def test_messages_that_are_not_chained_records_break_the_chain():
    values: list[bytes | None] = list(sealed_values(4))
    values[1] = b"\x00\x00\x00\x00\x07junk"
    values[2] = None
    report = verify_chain(entries(values))
    assert report.first_broken is not None
    assert report.first_broken.offset == 1
    assert report.first_broken.event_id is None
    assert "does not decode" in report.first_broken.reason
    assert isinstance(entry_of_message(CODEC, None), str)
    # A record of a schema without the chain fields says so.
    application = CODEC.encode(
        "greencredit.loan-applications",
        from_json_form(
            CODEC.catalog.reader("greencredit.v1.LoanApplication").raw,
            json.loads((examples_dir() / "loan_application.json").read_text()),
        ),
    )
    reason = entry_of_message(CODEC, application)
    assert isinstance(reason, str) and "not a chained record" in reason


def test_an_empty_partition_is_a_valid_chain():
    report = verify_chain([])
    assert report.ok and report.count == 0 and report.head == GENESIS_HASH


# -- records sealed with the legacy canonical-json rule ------------------------------------
def test_legacy_records_still_verify_and_are_counted():
    """A partition written by the old rule, then continued by the new one."""
    head, values = GENESIS_HASH, []
    for n in range(3):
        old = legacy_sealed(decision(n), head)
        values.append(CODEC.encode(TOPIC, old))
        head = old["record_hash"]
    values += sealed_values(4, head=head, first=3)
    found = entries(values)
    report = verify_chain(found)
    assert report.ok and report.count == 7 and report.legacy == 3
    assert [entry.rule for _, entry in found] == [CANONICAL_JSON] * 3 + [AVRO_BYTES] * 4


def test_a_tampered_legacy_record_is_found():
    old = legacy_sealed(decision(), GENESIS_HASH)
    value = CODEC.encode(TOPIC, {**old, "decision": "DECLINE"})
    report = verify_chain(entries([value]))
    assert report.first_broken is not None
    assert report.first_broken.reason == "record_hash mismatch (content changed)"
    assert report.legacy == 0


def test_legacy_v1_records_hash_in_their_writer_shape():
    """v1 decisions lack two fields v2 added: the legacy hash is of what v1 wrote."""
    _, v1 = v1_decision()
    record = {f["name"]: decision()[f["name"]] for f in v1.raw["fields"]}
    old = legacy_sealed(record, GENESIS_HASH)
    report = verify_chain(entries([v1_value(old)]))
    assert report.ok and report.legacy == 1


def test_microseconds_are_truncated_in_the_legacy_form():
    record = decision()
    record["occurred_at"] = datetime(2026, 11, 20, 9, 15, 0, 120_999, tzinfo=UTC)
    old = legacy_sealed(record, GENESIS_HASH)
    decoded = stored(CODEC.encode(TOPIC, old))
    assert decoded["occurred_at"].microsecond == 120_000  # Avro kept milliseconds only
    assert legacy_record_hash(decoded) == old["record_hash"]


def test_an_int_in_a_double_field_has_the_legacy_hash_of_the_decoded_float():
    record = decision()
    record["features"] = {**record["features"], "term_months": 24}
    old = legacy_sealed(record, GENESIS_HASH)
    decoded = stored(CODEC.encode(TOPIC, old))
    assert isinstance(decoded["features"]["term_months"], float)
    assert legacy_record_hash(decoded) == old["record_hash"]


@given(
    score=st.floats(allow_nan=False, allow_infinity=False, width=64),
    contribution=st.floats(allow_nan=False, allow_infinity=False),
    millis=st.integers(min_value=0, max_value=4_102_444_800_000),
    micros=st.integers(min_value=0, max_value=999),
)
def test_any_double_and_timestamp_keep_their_legacy_hash(score, contribution, millis, micros):
    record = decision()
    record["score"] = score
    record["reasons"][0]["contribution"] = contribution
    record["occurred_at"] = datetime.fromtimestamp(0, UTC) + timedelta(
        milliseconds=millis, microseconds=micros
    )
    old = legacy_sealed(record, GENESIS_HASH)
    assert legacy_record_hash(stored(CODEC.encode(TOPIC, old))) == old["record_hash"]


def test_the_legacy_form_leaves_out_record_hash_and_keeps_non_finite_doubles_apart():
    record = decision()
    assert canonical_bytes(record) == canonical_bytes({**record, "record_hash": "x"})
    assert b"record_hash" not in canonical_bytes(record)
    assert b"prev_hash" in canonical_bytes(record)
    hashes = {
        legacy_record_hash({**record, "score": value})
        for value in (float("nan"), float("inf"), float("-inf"), 0.0)
    }
    assert len(hashes) == 4


# -- the layout the rule relies on --------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        [{"name": "prev_hash", "type": "string"}],
        [{"name": "record_hash", "type": "string"}, {"name": "prev_hash", "type": "string"}],
        [
            {"name": "prev_hash", "type": "string"},
            {"name": "record_hash", "type": "string"},
            {"name": "note", "type": "string"},
        ],
        [
            {"name": "prev_hash", "type": "string"},
            {"name": "record_hash", "type": ["null", "string"]},
        ],
        [{"name": "prev_hash", "type": "bytes"}, {"name": "record_hash", "type": "string"}],
    ],
)
def test_a_schema_without_the_chain_fields_last_is_refused(fields):
    schema = {"type": "record", "name": "Decision", "namespace": "x", "fields": fields}
    with pytest.raises(
        ChainLayoutError, match="must end with the fields prev_hash and record_hash"
    ):
        check_chain_layout(schema)


def test_the_codec_refuses_to_load_an_audited_schema_that_breaks_the_layout(tmp_path: Path):
    shutil.copytree(schema_dir(), tmp_path / "schemas")
    path = tmp_path / "schemas" / "disbursement.avsc"
    raw = json.loads(path.read_text())
    raw["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    path.write_text(json.dumps(raw))
    catalog = SchemaCatalog(tmp_path / "schemas" / "manifest.json")
    with pytest.raises(ChainLayoutError, match=r"greencredit\.v1\.Disbursement"):
        AvroCodec(catalog)


def test_every_shipped_audited_schema_keeps_the_layout():
    audited = {DECISION, "greencredit.v1.Disbursement"}
    versions = [v for v in CODEC.catalog.by_id.values() if v.name in audited]
    assert {v.name for v in versions} == audited
    for version in versions:
        check_chain_layout(version.raw)


# -- the writer's heads ------------------------------------------------------------------
def test_chain_heads_are_per_topic_and_partition():
    heads = ChainHead()
    assert not heads.knows(TOPIC, 0)
    with pytest.raises(UnknownChainHead):
        heads.head(TOPIC, 0)
    heads.set_head(TOPIC, 0, GENESIS_HASH)
    heads.set_head(TOPIC, 1, "f" * 64)
    assert heads.head(TOPIC, 0) == GENESIS_HASH and heads.head(TOPIC, 1) == "f" * 64
    assert not heads.knows("greencredit.disbursements", 0)


@pytest.mark.parametrize(
    ("name", "schema", "topic_name"),
    [
        ("decision", DECISION, TOPIC),
        ("disbursement", "greencredit.v1.Disbursement", "greencredit.disbursements"),
    ],
)
def test_shipped_examples_are_sealed_first_records(name, schema, topic_name):
    event = json.loads((examples_dir() / f"{name}.json").read_text())
    record = from_json_form(CODEC.catalog.reader(schema).raw, event)
    assert record["prev_hash"] == GENESIS_HASH
    value, digest = CODEC.encode_sealed(topic_name, record, GENESIS_HASH)
    assert digest == event["record_hash"]
    entry = entry_of_message(CODEC, value)
    assert isinstance(entry, ChainEntry) and entry.rule == AVRO_BYTES


class PerSubjectIds:
    """Schema ids as a registry may hand them out: one id per subject, even for one schema."""

    def __init__(self, catalog: SchemaCatalog) -> None:
        self._catalog = catalog
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, SchemaVersion] = dict(catalog.by_id)

    def id_for(self, subject: str, schema: SchemaVersion) -> int:
        if subject not in self._ids:
            self._ids[subject] = 1000 + len(self._ids)
            self._schemas[self._ids[subject]] = schema
        return self._ids[subject]

    def writer_schema(self, schema_id: int) -> SchemaVersion:
        return self._schemas[schema_id]


def v1_value(record: dict) -> bytes:
    """A decision written with the v1 schema, as a worker of that version wrote it."""
    schema_id, v1 = v1_decision()
    buffer = io.BytesIO()
    buffer.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(buffer, v1.parsed, record)
    return buffer.getvalue()


def v1_decision() -> tuple[int, SchemaVersion]:
    return next(
        (i, v) for i, v in CODEC.catalog.by_id.items() if v.name == DECISION and v.version == 1
    )
