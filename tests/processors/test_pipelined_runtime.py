"""The agent loop: batch N+1 is processed while batch N waits for its acks, never acked early.

A stand-in for Faust's stream (noack_take + ack), the worker's real runtime and engine on
in-memory stores, and a sink whose acknowledgements the test releases by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from greencredit.agents.batch import BatchResult
from greencredit.agents.engine import Engine
from greencredit.agents.messages import Incoming, dead_letter
from greencredit.agents.runtime import Runtime
from greencredit.infra.memory import MemoryEngineState
from greencredit.streams.errors import InvalidEvent
from tests.faust_stream import FakeStream
from tests.processors.support import CODEC, SETTINGS, memory_worker

TOPIC = "greencredit.loan-applications"


class _GatedSink:
    """Acknowledges a flush only once the test opens its gate (one gate per flush)."""

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.gates: list[asyncio.Event] = []
        self.produced: list[bytes] = []

    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        self.produced.append(value)

    async def flush(self) -> None:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.log.append(("flush", len(self.gates)))
        await gate.wait()
        self.log.append(("acked", len(self.gates)))


def _event_id(message: Incoming) -> str:
    return (message.value or b"").decode()


def _processor(state: MemoryEngineState, log: list[tuple[str, Any]]):
    """Like the application processor: skips events marked done, one output per event."""

    async def process(deps: Any, messages: Sequence[Incoming]) -> BatchResult:
        log.append(("process", [m.offset for m in messages]))
        done = await state.done_among([_event_id(m) for m in messages])
        result = BatchResult()
        for message in messages:
            if _event_id(message) not in done:
                result.outputs.append(dead_letter(message, InvalidEvent("test output")))
                result.done_event_ids.append(_event_id(message))
        return result

    return process


async def _open_gates(sink: _GatedSink, until: asyncio.Task[None]) -> None:
    """Acknowledge each flush a moment after it starts, until the loop ends."""
    while not until.done():
        for gate in sink.gates:
            if not gate.is_set():
                await asyncio.sleep(0.01)
                gate.set()
        await asyncio.sleep(0.001)


def _values(offsets: list[list[int]]) -> list[list[tuple[int, bytes]]]:
    """Batches of distinct events (the value is the event id)."""
    return [[(o, b"event-%d" % o) for o in batch] for batch in offsets]


def _run(
    batches: list[list[tuple[int, bytes]]], *, pipelined: bool
) -> tuple[list[tuple[str, Any]], _GatedSink]:
    log: list[tuple[str, Any]] = []
    worker = memory_worker()

    async def go() -> _GatedSink:
        runtime = Runtime(SETTINGS)
        runtime._engine = Engine(worker.resources, CODEC, redis=None, kafka_config={})  # type: ignore[arg-type]
        runtime._sink = sink = _GatedSink(log)  # type: ignore[assignment]
        loop = asyncio.create_task(
            runtime.run(
                FakeStream(TOPIC, batches, log),  # type: ignore[arg-type]
                _processor(worker.state, log),
                lambda resources: None,
                pipelined=pipelined,
            )
        )
        await asyncio.gather(loop, _open_gates(sink, loop))
        return sink

    sink = asyncio.run(go())
    return log, sink


def _index(log: list[tuple[str, Any]], entry: tuple[str, Any]) -> int:
    return log.index(entry)


def test_the_next_batch_is_processed_while_the_last_waits_for_its_acks() -> None:
    log, _ = _run(_values([[1, 2], [3, 4], [5]]), pipelined=True)
    # Batch 2 was processed before the broker acknowledged batch 1's outputs.
    assert _index(log, ("process", [3, 4])) < _index(log, ("acked", 1))
    # Without pipelining it could not have been: batch 1's acks come first.
    log, _ = _run(_values([[1, 2], [3, 4], [5]]), pipelined=False)
    assert _index(log, ("acked", 1)) < _index(log, ("process", [3, 4]))


def test_offsets_are_acked_only_after_their_outputs_are_acknowledged_and_in_order() -> None:
    log, sink = _run(_values([[1, 2], [3, 4], [5]]), pipelined=True)
    acks = [offset for kind, offset in log if kind == "ack"]
    assert acks == [1, 2, 3, 4, 5]
    for batch, offsets in enumerate([[1, 2], [3, 4], [5]], start=1):
        for offset in offsets:
            assert _index(log, ("acked", batch)) < _index(log, ("ack", offset))
    assert len(sink.produced) == 5


def test_an_event_again_in_the_next_batch_is_sent_once() -> None:
    # Offsets 1 and 2 carry the same event (same id), in consecutive batches.
    log, sink = _run([[(1, b"event-same")], [(2, b"event-same")]], pipelined=True)
    # Processed twice (the second time after the first batch's done marker was written),
    # sent once; both offsets acked.
    assert [entry for entry in log if entry[0] == "process"] == [
        ("process", [1]),
        ("process", [2]),
        ("process", [2]),
    ]
    assert len(sink.produced) == 1
    assert [offset for kind, offset in log if kind == "ack"] == [1, 2]


def test_without_pipelining_a_batch_waits_for_the_last_to_finish() -> None:
    log, _ = _run(_values([[1, 2], [3, 4]]), pipelined=False)
    assert _index(log, ("ack", 2)) < _index(log, ("process", [3, 4]))
