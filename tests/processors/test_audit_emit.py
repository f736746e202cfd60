"""Engine.emit seals audited records as it encodes them, on in-memory stores.

No broker: the head a restarted writer reads from Kafka is stubbed, and a sink keeps what
would be produced. The bytes must verify as one chain per partition across batches, and
a review must be the decision's sealed bytes, re-headered when its topic's id differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from greencredit.agents import engine as engine_module
from greencredit.agents.applications import process_applications
from greencredit.agents.engine import Engine
from greencredit.agents.lender_configs import process_lender_configs
from greencredit.agents.messages import Outgoing
from greencredit.infra.audit_head import entry_of_message
from greencredit.streams.audit import (
    AVRO_BYTES,
    GENESIS_HASH,
    ChainEntry,
    ChainReport,
    verify_chain,
)
from greencredit.streams.codec import HEADER_SIZE, AvroCodec
from tests.processors.support import (
    APPLICATIONS,
    CODEC,
    NOW,
    MemoryWorker,
    batch,
    lender_event,
    memory_worker,
    messages,
)
from tests.unit.test_audit import PerSubjectIds

DECISIONS, REVIEWS = "greencredit.decisions", "greencredit.reviews"
DISBURSEMENTS = "greencredit.disbursements"
KNOWN_HEAD = "ab" * 32  # what Kafka holds at the end of decisions[1]


class KeptSink:
    """A Sink that keeps (topic, partition, value) in produce order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int | None, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        self.sent.append((topic, partition, value))

    async def flush(self) -> None:
        return None

    def values(self, topic: str, partition: int | None = None) -> list[bytes]:
        return [v for t, p, v in self.sent if t == topic and (partition is None or p == partition)]


@pytest.fixture
def heads_read(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Stub the head read from Kafka; returns the (topic, partition) reads made."""
    calls: list[tuple[str, int]] = []

    def last_record_hash(_config: Any, topic: str, partition: int, _codec: Any) -> str:
        calls.append((topic, partition))
        return KNOWN_HEAD if (topic, partition) == (DECISIONS, 1) else GENESIS_HASH

    monkeypatch.setattr(engine_module, "last_record_hash", last_record_hash)
    return calls


def memory_engine(per_subject_ids: bool = False) -> tuple[Engine, MemoryWorker]:
    """An engine emitting with the worker's codec, on in-memory stores (no Redis client)."""
    codec = AvroCodec(CODEC.catalog, PerSubjectIds(CODEC.catalog)) if per_subject_ids else CODEC
    worker = memory_worker(codec=codec)
    engine = Engine(worker.resources, codec, redis=None, kafka_config={})  # type: ignore[arg-type]
    return engine, worker


def worker_outputs(worker: MemoryWorker, first: int, count: int) -> list[Outgoing]:
    """What the application processor hands to emit for a mixed batch."""

    async def run() -> list[Outgoing]:
        await process_lender_configs(
            worker.configs, messages("greencredit.lender-config", [lender_event()])
        )
        apps = batch(first + count)[first:]
        result = await process_applications(worker.applications, messages(APPLICATIONS, apps), NOW)
        return result.outputs

    return asyncio.run(run())


def chain_of(values: Sequence[bytes], codec: AvroCodec, start: str = GENESIS_HASH) -> ChainReport:
    return verify_chain(
        [(offset, entry_of_message(codec, v)) for offset, v in enumerate(values)], start
    )


@pytest.mark.parametrize("per_subject_ids", [False, True])
def test_emitted_bytes_verify_as_chains_across_batches(heads_read, per_subject_ids) -> None:
    engine, worker = memory_engine(per_subject_ids)
    sink = KeptSink()
    first, second = worker_outputs(worker, 0, 24), worker_outputs(worker, 100, 24)
    asyncio.run(engine.emit(first, sink))
    asyncio.run(engine.emit(second, sink))

    written = {(o.topic, o.partition) for o in first + second if o.topic != REVIEWS}
    assert {t for t, _ in written} == {DECISIONS, DISBURSEMENTS}
    # Each partition's head was read from Kafka once, not once per batch or record.
    assert sorted(heads_read) == sorted(written)
    for topic, partition in written:
        start = KNOWN_HEAD if (topic, partition) == (DECISIONS, 1) else GENESIS_HASH
        values = sink.values(topic, partition)
        report = chain_of(values, engine.codec, start)
        assert report.ok and report.legacy == 0, (topic, partition, report.first_broken)
        assert report.count == sum(
            1 for o in first + second if (o.topic, o.partition) == (topic, partition)
        )
        assert all(
            isinstance(e, ChainEntry) and e.rule == AVRO_BYTES
            for e in (entry_of_message(engine.codec, v) for v in values)
        )
        # The second batch continued the first one's chain.
        assert engine.chain.head(topic, partition) == report.head


@pytest.mark.parametrize("per_subject_ids", [False, True])
def test_a_review_is_the_sealed_decision_under_its_own_schema_id(heads_read, per_subject_ids):
    engine, worker = memory_engine(per_subject_ids)
    outputs = worker_outputs(worker, 0, 30)
    reviews = [o for o in outputs if o.topic == REVIEWS]
    assert reviews and all(o.same_as is not None for o in reviews)
    sink = KeptSink()
    asyncio.run(engine.emit(outputs, sink))

    sent = dict(zip(map(id, outputs), (v for _, _, v in sink.sent), strict=True))
    for review in reviews:
        assert review.same_as is not None
        decision = sent[id(review.same_as)]
        value = sent[id(review)]
        assert value[HEADER_SIZE:] == decision[HEADER_SIZE:]  # the very same record
        assert (value[:HEADER_SIZE] != decision[:HEADER_SIZE]) is per_subject_ids
        assert engine.codec.decode(value, REVIEWS).value["decision"] == "REVIEW"
        entry = entry_of_message(engine.codec, value)
        assert isinstance(entry, ChainEntry) and entry.rule == AVRO_BYTES


def test_an_audited_output_without_a_partition_is_refused(heads_read) -> None:
    engine, worker = memory_engine()
    [decision, *_] = [o for o in worker_outputs(worker, 0, 6) if o.topic == DECISIONS]
    decision.partition = None
    with pytest.raises(ValueError, match="explicit partition"):
        asyncio.run(engine.emit([decision], KeptSink()))
