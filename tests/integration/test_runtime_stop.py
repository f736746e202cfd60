"""A worker's agent loop that stops writes the done markers still waiting (real Redis).

Transactions defer their done markers to the next batch's call (or 0.1 s of idle); when
the loop ends there is no next batch, so the loop writes them itself.
"""

from __future__ import annotations

import asyncio
import uuid

from greencredit.agents.engine import Engine
from greencredit.agents.runtime import Runtime
from greencredit.agents.transactions import TransactionDeps, process_transactions
from greencredit.settings import Settings
from greencredit.streams.codec import AvroCodec
from tests.factories import transaction
from tests.faust_stream import FakeStream

TOPIC = "greencredit.transactions"
CODEC = AvroCodec()


class _Sink:
    def produce(self, topic: str, key: bytes, value: bytes, partition: int | None) -> None:
        return None

    async def flush(self) -> None:
        return None


def test_a_stopping_loop_writes_the_waiting_done_markers(stack):
    tenant = f"lender-{uuid.uuid4().hex[:8]}"
    events = [
        transaction(7000 + i, tenant_id=tenant, account_id=f"acct-{tenant}") for i in range(3)
    ]
    ids = [e["event_id"] for e in events]

    async def go() -> tuple[set[str], list[int]]:
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=stack.kafka, REDIS_URL=stack.redis)
        engine = Engine.create(settings)
        await engine.start()
        runtime = Runtime(settings)
        runtime._engine, runtime._sink = engine, _Sink()  # type: ignore[assignment]
        # One batch, then the end of the stream (a stopping worker).
        stream = FakeStream(TOPIC, [[(i, CODEC.encode(TOPIC, e)) for i, e in enumerate(events)]])
        try:
            await runtime.run(
                stream,  # type: ignore[arg-type]
                process_transactions,
                TransactionDeps.of,
                pipelined=True,
            )
            # Read at once: the store's idle flush (0.1 s) has not fired yet.
            done = await engine.resources.state.done_among(ids)
        finally:
            await engine.redis.aclose()
        return done, stream.acked

    done, acked = asyncio.run(go())
    assert acked == [0, 1, 2]
    assert done == set(ids)
