"""Bare Faust apps the real pipeline is compared with: copy, decode then copy, or consume.

Same broker settings, batching and raw-bytes topics as the engine. `BENCH_STAGE` picks
what is done per message: "passthrough" only copies it to the sink topic; "decode" also
decodes its Avro body (the engine's first step), so the gaps between the stages and the
engine are the costs of decoding and of everything after it; "consume" writes nothing,
which is Faust's floor for a path such as transactions that mostly emits nothing.

Like the worker, it settles its heap once it is running (agents/heap.py,
WORKER_GC_YOUNG_THRESHOLD) and serves GET /health/ with `processed_by_topic` (input
messages whose copies the broker acknowledged), so a benchmark can time both the same way.
"""

from __future__ import annotations

import os
from collections import Counter

import faust

from greencredit.agents.heap import settle_heap
from greencredit.agents.kafka_compat import QuietWorker, bound_fetch_wait
from greencredit.settings import get_settings
from greencredit.streams.codec import AvroCodec

STAGE = os.environ.get("BENCH_STAGE", "passthrough")
if STAGE not in ("passthrough", "decode", "consume"):
    raise SystemExit(f"BENCH_STAGE must be passthrough, decode or consume, not {STAGE!r}")
SOURCE = os.environ.get("BENCH_SOURCE_TOPIC", "greencredit.loan-applications")
SINK = os.environ.get("BENCH_SINK_TOPIC", "bench.passthrough-out")

# The same consumer fetch bound as the engine's workers, for a like-for-like comparison.
bound_fetch_wait(int(os.environ.get("KAFKA_FETCH_MAX_WAIT_MS", "10")))
_SESSION = 6.0
app = faust.App(
    os.environ.get("BENCH_APP_ID", f"bench-{STAGE}"),
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
    Worker=QuietWorker,  # as the engine's workers: no spinner, no root logger at DEBUG
)
source = app.topic(
    SOURCE, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
sink = app.topic(
    SINK, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
)
codec = AvroCodec()
processed_by_topic: Counter[str] = Counter()


@app.page("/health/")
async def health(web, request):
    return web.json({"pid": os.getpid(), "processed_by_topic": dict(processed_by_topic)})


@app.agent(source)
async def passthrough(stream):
    # The engine's heap settings too (agents/heap.py), applied where the engine applies
    # them: once, when the first batch arrives.
    settled = False
    async for events in stream.take_events(256, within=0.005):
        if not settled:
            settle_heap(get_settings().worker_gc_young_threshold)
            settled = True
        if STAGE == "decode":
            for e in events:
                codec.decode(e.message.value)
        pending = [
            await sink.send(
                key=e.message.key, value=e.message.value, partition=e.message.partition, force=True
            )
            for e in events
            if STAGE != "consume"
        ]
        for future in pending:
            await future
        processed_by_topic.update(e.message.topic for e in events)
