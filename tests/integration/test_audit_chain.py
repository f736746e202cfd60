"""The audit chain on the real broker: head recovery, `greencredit audit verify`, tampering."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Producer

from greencredit.infra.audit_head import last_record_hash, read_partition, verify_partition
from greencredit.infra.topic_admin import ensure_topics
from greencredit.streams.audit import GENESIS_HASH
from greencredit.streams.codec import AvroCodec
from greencredit.streams.topics import topic
from tests.unit.test_audit import decision, legacy_sealed

CODEC = AvroCodec()
DECISIONS = "greencredit.decisions"
PARTITION = 2
CHAIN_LENGTH = 20


@pytest.fixture
def audit_topic(stack):
    """A private copy of the decisions topic, so other tests' writes do not join our chain."""
    name = f"{DECISIONS}.audit-test-{uuid.uuid4().hex[:12]}"
    spec = dataclasses.replace(topic(DECISIONS), name=name)
    assert ensure_topics(_config(stack), [spec]) == {name: "created"}
    return name


def _config(stack):
    return {"bootstrap.servers": stack.kafka}


def _produce(stack, topic_name, values):
    producer = Producer(_config(stack))
    for value in values:
        # Encoded as a decision (the copy is not in the registry), written to one partition.
        producer.produce(topic_name, value=value, partition=PARTITION)
    assert producer.flush(30) == 0


def _verify_cli(stack, topic_name):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka, "REDIS_URL": stack.redis}
    return subprocess.run(
        [sys.executable, "-m", "greencredit", "audit", "verify", "--topic", topic_name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sealed_chain(length, first=0, head=GENESIS_HASH):
    """(wire bytes, record_hash) of decisions sealed as the engine seals them."""
    chain = []
    for n in range(first, first + length):
        value, head = CODEC.encode_sealed(DECISIONS, decision(n), head)
        chain.append((value, head))
    return chain


def _values(chain):
    return [value for value, _ in chain]


def test_a_written_chain_verifies_and_a_tampered_record_is_named(stack, audit_topic):
    chain = _sealed_chain(CHAIN_LENGTH)
    _produce(stack, audit_topic, _values(chain))

    ok = _verify_cli(stack, audit_topic)
    assert ok.returncode == 0, ok.stderr
    verdict = json.loads(ok.stdout)[audit_topic]
    assert set(verdict) == {str(p) for p in range(topic(DECISIONS).partitions)}
    mine = verdict[str(PARTITION)]
    assert mine["records"] == CHAIN_LENGTH and mine["ok"] is True
    assert mine["first_broken"] is None and mine["legacy_records"] == 0
    assert mine["head"] == chain[-1][1]
    assert verdict["0"] == {
        "records": 0,
        "ok": True,
        "legacy_records": 0,
        "first_broken": None,
        "first_offset": None,
        "head": None,
    }

    # Valid Avro, correctly linked, but its content no longer matches its hash.
    [(next_value, _)] = _sealed_chain(1, first=CHAIN_LENGTH, head=chain[-1][1])
    forged = {**CODEC.decode(next_value).value, "decision": "DECLINE"}
    _produce(stack, audit_topic, [CODEC.encode(DECISIONS, forged)])
    broken = _verify_cli(stack, audit_topic)
    assert broken.returncode == 1, broken.stderr
    mine = json.loads(broken.stdout)[audit_topic][str(PARTITION)]
    assert mine["ok"] is False and mine["records"] == CHAIN_LENGTH + 1
    assert mine["first_broken"] == {
        "offset": CHAIN_LENGTH,
        "event_id": forged["event_id"],
        "reason": "record_hash mismatch (content changed)",
    }


def test_records_sealed_by_the_legacy_rule_verify_and_are_counted(stack, audit_topic):
    """A partition an earlier version wrote, continued by this one after a restart."""
    head, legacy = GENESIS_HASH, []
    for n in range(3):
        old = legacy_sealed(decision(n), head)
        legacy.append(CODEC.encode(DECISIONS, old))
        head = old["record_hash"]
    _produce(stack, audit_topic, legacy)
    # The restarted writer reads the head from the legacy record's bytes.
    assert last_record_hash(_config(stack), audit_topic, PARTITION, CODEC) == head
    _produce(stack, audit_topic, _values(_sealed_chain(2, first=3, head=head)))

    ok = _verify_cli(stack, audit_topic)
    assert ok.returncode == 0, ok.stderr
    mine = json.loads(ok.stdout)[audit_topic][str(PARTITION)]
    assert mine["records"] == 5 and mine["ok"] is True and mine["legacy_records"] == 3


def test_a_broken_link_is_named_by_offset(stack, audit_topic):
    chain = _sealed_chain(5)
    stray = _sealed_chain(1, first=5)  # restarted at genesis: a forked chain
    _produce(stack, audit_topic, _values(chain + stray))
    report = verify_partition(_config(stack), audit_topic, PARTITION, CODEC).report
    assert report.count == 6
    assert report.first_broken is not None
    assert report.first_broken.offset == 5
    assert report.first_broken.reason == "prev_hash does not link to offset 4"


def test_an_undecodable_message_breaks_the_chain(stack, audit_topic):
    _produce(stack, audit_topic, _values(_sealed_chain(2)))
    producer = Producer(_config(stack))
    producer.produce(audit_topic, value=b"\x00\x00\x00\x00\x07junk", partition=PARTITION)
    assert producer.flush(30) == 0
    report = verify_partition(_config(stack), audit_topic, PARTITION, CODEC).report
    assert report.count == 3
    assert report.first_broken is not None
    assert report.first_broken.offset == 2
    assert report.first_broken.event_id is None


def test_a_restarted_writer_continues_from_the_last_record_hash(stack, audit_topic):
    assert last_record_hash(_config(stack), audit_topic, PARTITION, CODEC) == GENESIS_HASH
    # Three records in one batch: Tansu then reports the partition's end as 1, not 3.
    first = _sealed_chain(3)
    _produce(stack, audit_topic, _values(first))
    head = last_record_hash(_config(stack), audit_topic, PARTITION, CODEC)
    assert head == first[-1][1]

    more = _sealed_chain(3, first=3, head=head)
    _produce(stack, audit_topic, _values(more))
    assert last_record_hash(_config(stack), audit_topic, PARTITION, CODEC) == more[-1][1]
    assert last_record_hash(_config(stack), audit_topic, 0, CODEC) == GENESIS_HASH
    offsets = [
        offset for offset, _ in read_partition(_config(stack), audit_topic, PARTITION, CODEC)
    ]
    assert offsets == list(range(6))
    assert verify_partition(_config(stack), audit_topic, PARTITION, CODEC).report.ok


def test_an_unknown_topic_is_a_usage_error(stack):
    missing = _verify_cli(stack, f"{DECISIONS}.audit-test-missing-{uuid.uuid4().hex[:8]}")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
