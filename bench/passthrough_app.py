"""A bare Faust passthrough agent: the ceiling the real pipeline is compared with.

Same broker settings, batching and raw-bytes topics as the engine; it only copies each
application to another topic, so the difference is the cost of the engine's work.
"""

from __future__ import annotations

import os

import faust

from greencredit.agents.kafka_compat import bound_fetch_wait

# The same consumer fetch bound as the engine's workers, for a like-for-like comparison.
bound_fetch_wait(int(os.environ.get("KAFKA_FETCH_MAX_WAIT_MS", "10")))
_SESSION = 6.0
app = faust.App(
    "bench-passthrough",
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="memory://",
    broker_session_timeout=_SESSION,
    broker_heartbeat_interval=1.0,
    consumer_auto_offset_reset="earliest",
    topic_allow_declare=False,
    topic_disable_leader=True,
    producer_acks=-1,
    web_port=int(os.environ.get("WORKER_WEB_PORT", "6067")),
    broker_commit_interval=1.0,
)
source = app.topic(
    "greencredit.loan-applications",
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)
sink = app.topic(
    "bench.passthrough-out",
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)


@app.agent(source)
async def passthrough(stream):
    async for events in stream.take_events(256, within=0.005):
        pending = [
            await sink.send(
                key=e.message.key, value=e.message.value, partition=e.message.partition, force=True
            )
            for e in events
        ]
        for future in pending:
            await future
