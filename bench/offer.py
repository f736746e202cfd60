"""Offered load: applications at a steady pace, each output matched to its scheduled time.

Latency = the output record's Kafka timestamp (set by the producer of the app under test)
minus the application's scheduled `occurred_at`, which is also its Kafka timestamp. The
generator stamps each event with the time it was due, so a generator that falls behind
adds its lag to the latency instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.harness import PacedRun, Recorder, send_paced
from bench.load import APPLICATIONS, Load, Outgoing
from bench.stats import latency_summary
from greencredit.streams.codec import AvroCodec

__all__ = ["Match", "Offer", "by_decision", "by_value", "measure_loads"]

WARM_UP = 200  # events before the first load: joins, model loading, first batches
# Matches a run's outputs to what was sent: the latencies (ms) of those it recognises.
Match = Callable[[PacedRun, list[tuple[bytes, int]]], list[float]]


class Offer:
    """Offers loads to one consumer and matches its outputs to what was sent.

    `finished(total, timeout)` returns once the consumer finished `total` inputs in all
    (raising when it does not in time).
    """

    def __init__(
        self,
        kafka: str,
        load: Load,
        recorder: Recorder,
        topic: str | None,
        match: Match,
        finished: Callable[[int, float], None],
        first_customer: int = 0,
    ) -> None:
        self.kafka, self.load, self.recorder, self.topic = kafka, load, recorder, topic
        self.match = match
        self.finished = finished
        self.next_n = first_customer
        self.expected = 0

    def _build(self, base: int) -> Callable[[int, datetime], Outgoing]:
        return lambda i, due: self.load.encode(APPLICATIONS, self.load.application(base + i, due))

    def run(self, rate: int, seconds: float) -> tuple[PacedRun, list[tuple[bytes, int]], int]:
        """Offer `rate`/s for `seconds`, then drain; what was sent, its outputs, the count."""
        start = len(self.recorder.messages)
        paced = send_paced(self.kafka, self._build(self.next_n), rate, seconds, self.topic)
        count = len(paced.scheduled_by_id)
        self.next_n += count
        self.expected += count
        # Drain: at most a minute plus the time a slow pipeline (200/s) would need. The app
        # under test's own counter says when; its outputs are read after (see Recorder).
        self.finished(self.expected, 60 + count / 200)
        seen = self.recorder.collect(self.expected, 60)
        return paced, self.recorder.messages[start:seen], count


def measure_loads(offer: Offer, loads: list[int], seconds: float) -> list[dict[str, Any]]:
    """A warm-up at 50/s, then each load in turn: latency percentiles per load."""
    offer.run(50, WARM_UP / 50)
    points = []
    for rate in loads:
        paced, outputs, count = offer.run(rate, seconds)
        latencies = offer.match(paced, outputs)
        points.append(
            {
                "offered_events_per_second": rate,
                "seconds": seconds,
                "generator_events_per_second": round(paced.achieved_rate, 1),
                "generator_max_behind_ms": round(paced.max_behind_ms, 1),
                **latency_summary(latencies, count),
            }
        )
        print(f"  {rate}/s: {points[-1]}", flush=True)
    return points


def by_value(paced: PacedRun, outputs: list[tuple[bytes, int]]) -> list[float]:
    """A passthrough's outputs are its inputs' bytes."""
    return [ts - paced.scheduled_by_value[v] for v, ts in outputs if v in paced.scheduled_by_value]


def by_decision(codec: AvroCodec) -> Match:
    """A worker's decision names the application event it decides."""

    def match(paced: PacedRun, outputs: list[tuple[bytes, int]]) -> list[float]:
        latencies: list[float] = []
        for value, ts in outputs:
            app_id = codec.decode(value).value["application_event_id"]
            if app_id in paced.scheduled_by_id:
                latencies.append(ts - paced.scheduled_by_id[app_id])
        return latencies

    return match
